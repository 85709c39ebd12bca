"""pipeline.merkle against OpenZeppelin's StandardMerkleTree vectors and the on-chain MerkleProof."""

import json
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import keccak

from pipeline.merkle import LEAF_TYPES, MerkleTree, hash_pair, leaf_hash, verify_proof

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "oz-standard-merkle-tree.json").read_text()
)["trees"]


def leaves(count: int) -> list[list[str]]:
    """`count` distinct provenance leaves (three bytes32 values each) as 0x-hex strings."""
    return [
        ["0x" + keccak(text=f"{i}:{part}").hex() for part in ("sha256", "blake3", "sig")]
        for i in range(count)
    ]


def hexes(nodes: list[bytes]) -> list[str]:
    """Lowercase 0x-hex of each node."""
    return ["0x" + n.hex() for n in nodes]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{len(v['leaves'])}x{'-'.join(v['types'])}")
def test_oz_vector_root_leaf_hashes_and_proofs(vector):
    tree = MerkleTree.of([leaf["values"] for leaf in vector["leaves"]], types=vector["types"])
    assert tree.root_hex == vector["root"]
    for index, leaf in enumerate(vector["leaves"]):
        assert "0x" + tree.leaf(index).hex() == leaf["leaf_hash"]
        assert "0x" + leaf_hash(vector["types"], leaf["values"]).hex() == leaf["leaf_hash"]
        assert hexes(tree.proof(index)) == leaf["proof"]
        assert verify_proof(tree.root, tree.leaf(index), tree.proof(index))


def test_vectors_cover_the_provenance_leaf_and_odd_counts():
    counts = {len(v["leaves"]) for v in VECTORS if tuple(v["types"]) == LEAF_TYPES}
    assert {1, 3, 5, 13} <= counts


def test_leaf_is_double_keccak_of_abi_encoding_and_takes_bytes_or_hex():
    values = leaves(1)[0]
    raw = [bytes.fromhex(v[2:]) for v in values]
    expected = keccak(keccak(encode(list(LEAF_TYPES), raw)))
    assert leaf_hash(LEAF_TYPES, values) == expected
    assert leaf_hash(LEAF_TYPES, raw) == expected
    assert leaf_hash(LEAF_TYPES, [v.upper().replace("0X", "0x") for v in values]) == expected


def test_leaf_with_wrong_value_count_is_rejected():
    with pytest.raises(ValueError, match="2 values for 3 types"):
        leaf_hash(LEAF_TYPES, leaves(1)[0][:2])


def test_one_leaf_tree_root_is_the_leaf_and_proof_is_empty():
    tree = MerkleTree.of(leaves(1))
    assert len(tree) == 1
    assert tree.root == tree.leaf(0) == leaf_hash(LEAF_TYPES, leaves(1)[0])
    assert tree.proof(0) == []
    assert verify_proof(tree.root, tree.leaf(0), [])


def test_empty_tree_is_rejected():
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree.of([])


@pytest.mark.parametrize("count", [2, 3, 5, 7, 16, 33])
def test_every_proof_verifies_for_odd_and_even_counts(count):
    tree = MerkleTree.of(leaves(count))
    assert len(tree.nodes) == 2 * count - 1
    for index in range(count):
        assert tree.leaf(index) == leaf_hash(LEAF_TYPES, leaves(count)[index])
        assert verify_proof(tree.root, tree.leaf(index), tree.proof(index))


def test_index_is_the_input_position_not_the_sorted_position():
    values = leaves(5)
    tree = MerkleTree.of(values)
    reversed_tree = MerkleTree.of(values[::-1])
    assert tree.root == reversed_tree.root
    assert tree.leaf(0) == reversed_tree.leaf(4) == leaf_hash(LEAF_TYPES, values[0])


def test_unsorted_tree_keeps_input_order():
    values = leaves(4)
    unsorted = MerkleTree.of(values, sort_leaves=False)
    hashes = [leaf_hash(LEAF_TYPES, v) for v in values]
    # OZ lays leaves out from the end of the array: the first input is the last node.
    assert list(unsorted.nodes[3:]) == hashes[::-1]
    assert unsorted.root == hash_pair(hash_pair(hashes[3], hashes[2]), hash_pair(hashes[1], hashes[0]))
    assert sorted(hashes) != hashes and unsorted.root != MerkleTree.of(values).root


def test_tampered_proof_fails():
    tree = MerkleTree.of(leaves(6))
    proof = tree.proof(2)
    tampered = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert not verify_proof(tree.root, tree.leaf(2), tampered)


def test_proof_of_another_leaf_or_root_fails():
    tree = MerkleTree.of(leaves(6))
    assert not verify_proof(tree.root, tree.leaf(2), tree.proof(3))
    assert not verify_proof(MerkleTree.of(leaves(5)).root, tree.leaf(2), tree.proof(2))
    assert not verify_proof(tree.root, tree.leaf(2), tree.proof(2)[:-1])


def test_proof_json_is_self_contained():
    values = leaves(3)
    tree = MerkleTree.of(values)
    doc = tree.proof_json(1)
    assert doc == {
        "root": tree.root_hex,
        "leaf": {"types": list(LEAF_TYPES), "values": values[1]},
        "proof": hexes(tree.proof(1)),
    }
    json.dumps(doc)
    rebuilt = leaf_hash(doc["leaf"]["types"], doc["leaf"]["values"])
    assert verify_proof(bytes.fromhex(doc["root"][2:]), rebuilt, [bytes.fromhex(p[2:]) for p in doc["proof"]])


def test_proof_json_writes_bytes_values_as_lowercase_hex_and_keeps_others():
    raw = [[bytes.fromhex(v[2:]) for v in leaf] for leaf in leaves(2)]
    assert MerkleTree.of(raw).proof_json(0)["leaf"]["values"] == leaves(2)[0]
    upper = [[v.upper().replace("0X", "0x") for v in leaf] for leaf in leaves(2)]
    assert MerkleTree.of(upper).proof_json(1)["leaf"]["values"] == leaves(2)[1]
    named = MerkleTree.of([["0xAB.jpg", 1], ["b.png", 2]], types=["string", "uint256"])
    assert named.proof_json(0)["leaf"]["values"] == ["0xAB.jpg", 1]


def test_contract_verify_accepts_our_proofs_and_rejects_tampered(chain):
    tree = MerkleTree.of(leaves(11))
    chain.anchor(tree.root, len(tree))
    for index in range(len(tree)):
        assert chain.verify_proof(tree.root, tree.proof(index), tree.leaf(index)) is True
    proof = tree.proof(4)
    tampered = [proof[0], bytes(32), *proof[2:]]
    assert chain.verify_proof(tree.root, tampered, tree.leaf(4)) is False
    assert chain.verify_proof(tree.root, tree.proof(4), tree.leaf(5)) is False


def test_contract_verify_accepts_the_oz_library_proofs(chain):
    vector = max((v for v in VECTORS if tuple(v["types"]) == LEAF_TYPES), key=lambda v: len(v["leaves"]))
    root = bytes.fromhex(vector["root"][2:])
    chain.anchor(root, len(vector["leaves"]))
    for leaf in vector["leaves"]:
        proof = [bytes.fromhex(p[2:]) for p in leaf["proof"]]
        assert chain.verify_proof(root, proof, bytes.fromhex(leaf["leaf_hash"][2:])) is True
