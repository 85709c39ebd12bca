"""Merkle batches compatible with OpenZeppelin's StandardMerkleTree and MerkleProof (pure, no I/O).

A leaf is keccak256(keccak256(abi.encode(types, values))); inner nodes hash the sorted pair of
their children; the tree is one array laid out as `@openzeppelin/merkle-tree` lays it out, with the
leaves sorted by hash unless asked otherwise, so roots and proofs match that library byte for byte.

Provenance leaves use LEAF_TYPES, three bytes32 values in this order: the SHA-256 of the content,
the BLAKE3-256 of the content, and the keccak256 of the Ed25519 signature over the record.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak

LEAF_TYPES: tuple[str, ...] = ("bytes32", "bytes32", "bytes32")


def _abi_value(abi_type: str, value: Any) -> Any:
    """A value as eth_abi expects it: hex strings to bytes, decimal strings to ints (as in OZ dumps)."""
    if isinstance(value, str) and abi_type.startswith("bytes"):
        return bytes.fromhex(value.removeprefix("0x"))
    if isinstance(value, str) and abi_type.startswith(("uint", "int")):
        return int(value, 0)
    return value


def _json_value(abi_type: str, value: Any) -> Any:
    """A value as it goes into JSON: values of the bytes types become lowercase 0x-hex."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and abi_type.startswith("bytes"):
        return "0x" + value.removeprefix("0x").lower()
    return value


def leaf_hash(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """OZ StandardMerkleTree leaf: keccak256(keccak256(abi.encode(types, values)))."""
    if len(types) != len(values):
        raise ValueError(f"leaf has {len(values)} values for {len(types)} types")
    encoded = encode(list(types), [_abi_value(t, v) for t, v in zip(types, values)])
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two nodes concatenated in ascending order (OZ commutative hash)."""
    return keccak(a + b if a <= b else b + a)


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """True if folding `proof` into the leaf hash `leaf` with sorted pairs gives `root`."""
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


@dataclass(frozen=True)
class MerkleTree:
    """A built tree: `nodes` in OZ array layout (root first), and each input's position in it."""

    types: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    nodes: tuple[bytes, ...]
    tree_index: tuple[int, ...]

    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        types: Sequence[str] = LEAF_TYPES,
        sort_leaves: bool = True,
    ) -> "MerkleTree":
        """Build the tree over `values` (one sequence per leaf) as StandardMerkleTree.of does."""
        if not values:
            raise ValueError("a Merkle tree needs at least one leaf")
        hashes = [leaf_hash(types, v) for v in values]
        order = list(range(len(values)))
        if sort_leaves:
            order.sort(key=lambda i: hashes[i])
        size = 2 * len(values) - 1
        nodes: list[bytes] = [b""] * size
        tree_index = [0] * len(values)
        for position, value_index in enumerate(order):
            tree_index[value_index] = size - 1 - position
            nodes[size - 1 - position] = hashes[value_index]
        for i in range(size - 1 - len(values), -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(
            types=tuple(types),
            values=tuple(tuple(v) for v in values),
            nodes=tuple(nodes),
            tree_index=tuple(tree_index),
        )

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self.nodes[0]

    @property
    def root_hex(self) -> str:
        """The root as lowercase 0x-hex."""
        return "0x" + self.root.hex()

    def __len__(self) -> int:
        """Number of leaves."""
        return len(self.values)

    def leaf(self, index: int) -> bytes:
        """Leaf hash of the `index`-th input value."""
        return self.nodes[self.tree_index[index]]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from the `index`-th input's leaf up to the root."""
        node = self.tree_index[index]
        proof = []
        while node > 0:
            sibling = node + 1 if node % 2 else node - 1
            proof.append(self.nodes[sibling])
            node = (node - 1) // 2
        return proof

    def proof_json(self, index: int) -> dict:
        """A self-contained proof for the `index`-th input, in JSON-ready form."""
        return {
            "root": self.root_hex,
            "leaf": {
                "types": list(self.types),
                "values": [_json_value(t, v) for t, v in zip(self.types, self.values[index])],
            },
            "proof": ["0x" + p.hex() for p in self.proof(index)],
        }
