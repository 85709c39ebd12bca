// Compiles every contracts/*.sol with the pinned solcjs and writes <outDir>/<Name>.json artifacts.
// Usage: node contracts/compile.js [outDir]   (default: contracts/build)
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACTS_DIR = __dirname;
const NODE_MODULES = path.join(CONTRACTS_DIR, "..", "node_modules");
const OPTIMIZER = { enabled: true, runs: 200 };
// Paris runs everywhere, ganache included. OpenZeppelin 5.7's ERC721 pulls in utils/Bytes.sol, whose
// inline assembly uses MCOPY, so the NFT can only be compiled for Cancun.
const DEFAULT_EVM = "paris";
const EVM_VERSIONS = { "ProvenanceNFT.sol": "cancun" };

function findImport(importPath) {
  for (const base of [CONTRACTS_DIR, NODE_MODULES]) {
    const file = path.join(base, importPath);
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `import not found: ${importPath} (run \`make npm\` to install the pinned packages)` };
}

function settingsFor(sourceName) {
  return { optimizer: OPTIMIZER, evmVersion: EVM_VERSIONS[sourceName] || DEFAULT_EVM };
}

function compile(sourceNames, settings) {
  const sources = {};
  for (const name of sourceNames) {
    sources[name] = { content: fs.readFileSync(path.join(CONTRACTS_DIR, name), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...settings,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length > 0) throw new Error(`solc failed with ${errors.length} error(s)`);
  return output;
}

function main() {
  const outDir = path.resolve(process.argv[2] || path.join(CONTRACTS_DIR, "build"));
  const sourceNames = fs.readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith(".sol")).sort();
  fs.mkdirSync(outDir, { recursive: true });
  for (const sourceName of sourceNames) {
    const settings = settingsFor(sourceName);
    const output = compile([sourceName], settings);
    for (const [contractName, contract] of Object.entries(output.contracts[sourceName] || {})) {
      const artifact = {
        contractName,
        abi: contract.abi,
        bytecode: "0x" + contract.evm.bytecode.object,
        deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
        compiler: solc.version(),
        settings,
      };
      const file = path.join(outDir, `${contractName}.json`);
      fs.writeFileSync(file, JSON.stringify(artifact, null, 2) + "\n");
      console.log(`wrote ${path.relative(process.cwd(), file)}`);
    }
  }
}

main();
