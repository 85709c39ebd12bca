"""The committed contract build artifacts (ABI and bytecode), loaded from package data."""

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

CONTRACT_NAME = "ProvenanceRegistry"
NFT_CONTRACT_NAME = "ProvenanceNFT"


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, creation bytecode and runtime bytecode (0x-hex)."""

    contract_name: str
    abi: list[dict]
    bytecode: str
    deployed_bytecode: str
    compiler: str


@cache
def load_artifact(name: str = CONTRACT_NAME) -> Artifact:
    """Read contracts/build/<name>.json shipped in the pipeline.contracts package."""
    resource = files("pipeline.contracts").joinpath("build", f"{name}.json")
    data = json.loads(resource.read_text(encoding="utf-8"))
    return Artifact(
        contract_name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler=data["compiler"],
    )
