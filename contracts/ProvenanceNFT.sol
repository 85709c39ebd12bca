// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ProvenanceNFT
/// @notice One ERC-721 token per provenance registration, carrying the content hash it attests.
/// @dev Token ids are sequential from 1; only the owner (the deployer) mints, in batches.
/// OpenZeppelin 5.7 needs Cancun to compile, and Cancun code copies strings with MCOPY, which
/// ganache (Shanghai at most) lacks; so name, symbol and tokenURI return their ABI encoding
/// from assembly, and the metadata reads work on every supported chain. One MCOPY is left: a safe
/// transfer to a contract (the onERC721Received call) fails on ganache.
contract ProvenanceNFT is ERC721, Ownable {
    uint256 private _nextTokenId = 1;

    mapping(uint256 tokenId => bytes32) private _contentHashes;

    /// @notice Token `tokenId` was minted to `to` for the content whose hash is `contentHash`.
    event ProvenanceMinted(uint256 indexed tokenId, address indexed to, bytes32 contentHash);

    /// @notice The recipient and content hash lists differ in length.
    error LengthMismatch(uint256 recipients, uint256 contentHashes);
    /// @notice The batch has no entries.
    error EmptyBatch();

    constructor() ERC721("Provsim Provenance", "PROV") Ownable(msg.sender) {}

    /// @notice Mints one token per entry, to `to[i]` for `contentHashes[i]`, with ids counting up.
    function mintBatch(address[] calldata to, bytes32[] calldata contentHashes) external onlyOwner {
        if (to.length != contentHashes.length) revert LengthMismatch(to.length, contentHashes.length);
        if (to.length == 0) revert EmptyBatch();
        uint256 tokenId = _nextTokenId;
        for (uint256 i = 0; i < to.length; ++i) {
            _mint(to[i], tokenId);
            _contentHashes[tokenId] = contentHashes[i];
            emit ProvenanceMinted(tokenId, to[i], contentHashes[i]);
            ++tokenId;
        }
        _nextTokenId = tokenId;
    }

    /// @notice The collection's name.
    function name() public pure override returns (string memory) {
        _returnString("Provsim Provenance", 18);
    }

    /// @notice The collection's symbol.
    function symbol() public pure override returns (string memory) {
        _returnString("PROV", 4);
    }

    /// @notice Empty, as in OpenZeppelin without a base URI; reverts if the token does not exist.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        _returnString("", 0);
    }

    /// @notice The content hash token `tokenId` attests; reverts if the token does not exist.
    function contentHashOf(uint256 tokenId) external view returns (bytes32) {
        _requireOwned(tokenId);
        return _contentHashes[tokenId];
    }

    /// @notice The id the next minted token will get.
    function nextTokenId() external view returns (uint256) {
        return _nextTokenId;
    }

    /// @dev Ends the call, returning the ABI encoding of the first `length` (< 32) bytes of `text`.
    function _returnString(bytes32 text, uint256 length) private pure {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, 0x20)
            mstore(add(p, 0x20), length)
            mstore(add(p, 0x40), text)
            return(p, 0x60)
        }
    }
}
