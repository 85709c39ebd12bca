// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title ProvenanceRegistry
/// @notice Anchors Merkle roots of provenance batches and checks inclusion proofs against them.
/// @dev Leaves and proofs follow OpenZeppelin's StandardMerkleTree (double-keccak leaves, sorted pairs).
contract ProvenanceRegistry {
    /// @dev One anchored batch; anchorer, timestamp and block number share one storage slot.
    struct Anchor {
        address anchorer;
        uint48 timestamp;
        uint48 blockNumber;
        uint256 leafCount;
    }

    mapping(bytes32 root => Anchor) private _anchors;

    /// @notice A batch root was anchored.
    event Anchored(bytes32 indexed root, uint256 leafCount, address indexed anchorer, uint256 timestamp);

    /// @notice The root is zero.
    error ZeroRoot();
    /// @notice The batch has no leaves.
    error ZeroLeafCount();
    /// @notice The root was anchored before.
    error AlreadyAnchored(bytes32 root);

    /// @notice Anchors `root`, a batch of `leafCount` leaves, at the current block.
    function anchor(bytes32 root, uint256 leafCount) external {
        if (root == bytes32(0)) revert ZeroRoot();
        if (leafCount == 0) revert ZeroLeafCount();
        if (_anchors[root].timestamp != 0) revert AlreadyAnchored(root);
        _anchors[root] = Anchor({
            anchorer: msg.sender,
            timestamp: uint48(block.timestamp),
            blockNumber: uint48(block.number),
            leafCount: leafCount
        });
        emit Anchored(root, leafCount, msg.sender, block.timestamp);
    }

    /// @notice When and how `root` was anchored; all zero if it never was.
    function anchorOf(bytes32 root) external view returns (uint256 timestamp, uint256 blockNumber, uint256 leafCount) {
        Anchor storage a = _anchors[root];
        return (a.timestamp, a.blockNumber, a.leafCount);
    }

    /// @notice The account that anchored `root`; zero if it never was.
    function anchorerOf(bytes32 root) external view returns (address) {
        return _anchors[root].anchorer;
    }

    /// @notice True if `root` is anchored and `proof` proves `leaf` is in its tree.
    function verify(bytes32 root, bytes32[] calldata proof, bytes32 leaf) external view returns (bool) {
        return _anchors[root].timestamp != 0 && MerkleProof.verify(proof, root, leaf);
    }
}
