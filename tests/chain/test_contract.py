"""ProvenanceRegistry.sol on a real py-evm chain: storage, event, custom errors and verify."""

from eth_abi import encode
from eth_utils import keccak

from pipeline.merkle import MerkleTree

ROOT = bytes.fromhex("ab" * 32)
OTHER_ROOT = bytes.fromhex("cd" * 32)


def selector(signature: str) -> bytes:
    """First four bytes of keccak256 of an error signature."""
    return keccak(text=signature)[:4]


def test_anchor_stores_block_time_number_count_and_sender(chain, registry, send_raw, w3):
    receipt = send_raw(registry.address, registry.encode_abi("anchor", args=[ROOT, 7]))
    assert receipt["status"] == 1
    block = w3.eth.get_block(receipt["blockNumber"])
    assert registry.functions.anchorOf(ROOT).call() == [block["timestamp"], block["number"], 7]
    assert registry.functions.anchorerOf(ROOT).call() == chain.address


def test_anchor_emits_anchored_with_indexed_root_and_anchorer(chain, registry, send_raw, w3):
    receipt = send_raw(registry.address, registry.encode_abi("anchor", args=[ROOT, 3]))
    (event,) = registry.events.Anchored().process_receipt(receipt)
    assert dict(event["args"]) == {
        "root": ROOT,
        "leafCount": 3,
        "anchorer": chain.address,
        "timestamp": w3.eth.get_block(receipt["blockNumber"])["timestamp"],
    }
    assert receipt["logs"][0]["topics"][1] == ROOT


def test_unknown_root_reads_as_zeros(registry):
    assert registry.functions.anchorOf(OTHER_ROOT).call() == [0, 0, 0]
    assert registry.functions.anchorerOf(OTHER_ROOT).call() == "0x" + "00" * 20


def test_zero_root_reverts_with_zero_root(registry, send_raw, revert_data):
    data = registry.encode_abi("anchor", args=[b"\x00" * 32, 1])
    assert revert_data(registry.address, data) == selector("ZeroRoot()")
    assert send_raw(registry.address, data)["status"] == 0


def test_zero_leaf_count_reverts_with_zero_leaf_count(registry, send_raw, revert_data):
    data = registry.encode_abi("anchor", args=[ROOT, 0])
    assert revert_data(registry.address, data) == selector("ZeroLeafCount()")
    assert send_raw(registry.address, data)["status"] == 0
    assert registry.functions.anchorOf(ROOT).call() == [0, 0, 0]


def test_second_anchor_of_a_root_reverts_with_already_anchored(registry, send_raw, revert_data):
    data = registry.encode_abi("anchor", args=[ROOT, 2])
    first = send_raw(registry.address, data)
    expected = selector("AlreadyAnchored(bytes32)") + encode(["bytes32"], [ROOT])
    assert revert_data(registry.address, registry.encode_abi("anchor", args=[ROOT, 5])) == expected
    assert send_raw(registry.address, data)["status"] == 0
    assert registry.functions.anchorOf(ROOT).call()[1] == first["blockNumber"]


def test_verify_needs_the_root_anchored(registry, send_raw):
    tree = MerkleTree.of([["0x" + "11" * 32, "0x" + "22" * 32, "0x" + "33" * 32]])
    assert tree.proof(0) == [] and tree.leaf(0) == tree.root
    assert registry.functions.verify(tree.root, [], tree.leaf(0)).call() is False
    send_raw(registry.address, registry.encode_abi("anchor", args=[tree.root, 1]))
    assert registry.functions.verify(tree.root, [], tree.leaf(0)).call() is True
