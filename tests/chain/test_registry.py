"""The committed ProvenanceRegistry artifact loads from package data and is what gets deployed."""

from pipeline.registry import load_artifact


def test_artifact_has_the_registry_interface():
    artifact = load_artifact()
    assert artifact.contract_name == "ProvenanceRegistry"
    entries = {(e["type"], e.get("name")) for e in artifact.abi}
    assert {
        ("function", "anchor"),
        ("function", "anchorOf"),
        ("function", "verify"),
        ("event", "Anchored"),
        ("error", "ZeroRoot"),
        ("error", "ZeroLeafCount"),
        ("error", "AlreadyAnchored"),
    } <= entries
    assert artifact.compiler.startswith("0.8.30+")


def opcodes(code: bytes) -> list[int]:
    """The opcodes of runtime code, skipping PUSH data and the trailing CBOR metadata."""
    end = len(code) - 2 - int.from_bytes(code[-2:], "big")
    ops, pc = [], 0
    while pc < end:
        op = code[pc]
        ops.append(op)
        pc += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops


def test_runtime_bytecode_targets_paris_so_it_has_no_push0():
    artifact = load_artifact()
    assert artifact.bytecode.startswith("0x") and artifact.deployed_bytecode.startswith("0x")
    ops = opcodes(bytes.fromhex(artifact.deployed_bytecode[2:]))
    assert len(ops) > 100
    assert 0x5F not in ops  # PUSH0 arrived with Shanghai; ganache stops at Paris


def test_deployed_code_equals_the_artifact_runtime_bytecode(chain, w3):
    code = w3.eth.get_code(chain.registry_address)
    assert "0x" + code.hex() == load_artifact().deployed_bytecode
