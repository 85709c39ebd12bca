"""Solidity sources and their committed build artifacts, shipped as package data."""
