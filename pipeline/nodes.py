"""Start, stop, crash and restart real local EVM nodes (anvil, ganache from npm) on 127.0.0.1."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

NODE_KINDS = ("anvil", "ganache")
NPM_PACKAGES = {"anvil": "@foundry-rs/anvil-linux-amd64", "ganache": "ganache"}
# Account 0 of each node as started here: anvil's default mnemonic ("test test ... junk") and
# `ganache --wallet.deterministic` ("myth like bonus scare ..."); each holds 10,000 / 1,000 ether.
DEV_KEYS: dict[str, str] = {
    "anvil": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "ganache": "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d",
}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
RPC_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05

_live: set[LocalNode] = set()
_hooks_lock = threading.Lock()
_hooks_installed = False
_log_dir: Path | None = None


class NodeError(Exception):
    """A node could not be found, started or asked; the message says why, in one line."""


class MissingNodeError(NodeError):
    """The node's binary is not installed where provsim looks for it."""


@dataclass(eq=False)
class LocalNode:
    """One node process started by start_node; `with` stops it, restart() brings it back."""

    kind: str
    port: int
    url: str
    process: subprocess.Popen
    state_path: Path | None
    funded_key: str
    command: list[str] = field(repr=False)
    chain_id: int = 31337
    timeout: float = 30.0
    log_path: Path | None = None

    def is_running(self) -> bool:
        """Whether the node process is still alive."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, SIGKILL after 10 s) so the node saves its state; idempotent."""
        _stop_process(self.process)
        _live.discard(self)

    def kill(self) -> None:
        """Kill the node at once with SIGKILL, as a crash would; idempotent."""
        if self.is_running():
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
        _live.discard(self)

    def restart(self) -> None:
        """Start the node again (stopping it first if alive) on the same port, state and options."""
        self.stop()
        self.process = _launch(
            self.kind, self.command, self.port, self.chain_id, self.timeout, self.log_path
        )
        _live.add(self)

    def __enter__(self) -> LocalNode:
        """The node itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the node on the way out of the `with` block."""
        self.stop()


def find_binary(kind: str) -> str:
    """The node's executable: $PROVSIM_ANVIL / $PROVSIM_GANACHE, else node_modules/.bin, else PATH."""
    if kind not in NODE_KINDS:
        raise ValueError(f"unknown node kind {kind!r}: choose one of {', '.join(NODE_KINDS)}")
    hint = f"run `make npm` to install the pinned npm package {NPM_PACKAGES[kind]}"
    variable = f"PROVSIM_{kind.upper()}"
    override = os.environ.get(variable)
    if override:
        found = shutil.which(override)
        if found is None:
            raise MissingNodeError(f"{kind} not found at {variable}={override}: unset {variable} or {hint}")
        return found
    local = PROJECT_ROOT / "node_modules" / ".bin" / kind
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(kind)
    if found is None:
        raise MissingNodeError(f"{kind} not found: {hint}")
    return found


def start_node(
    kind: str,
    port: int | None = None,
    *,
    block_time: float | None = None,
    chain_id: int = 31337,
    state_path: str | Path | None = None,
    quiet: bool = True,
    timeout: float = 30.0,
) -> LocalNode:
    """Start an anvil or ganache node on 127.0.0.1 and return it once it answers eth_chainId."""
    binary = find_binary(kind)
    port = _free_port() if port is None else port
    state = None if state_path is None else Path(state_path).absolute()
    if kind == "anvil":
        # --state loads the file if it exists and dumps to it every second and on SIGTERM.
        command = [binary, "--host", HOST, "--port", str(port), "--chain-id", str(chain_id)]
        if block_time is not None:
            command += ["--block-time", str(block_time)]
        if state is not None:
            _make_dir(state.parent)
            command += ["--state", str(state), "--state-interval", "1"]
    else:
        command = [binary, "--server.host", HOST, "--server.port", str(port),
                   "--chain.chainId", str(chain_id), "--wallet.deterministic"]
        if quiet:
            command.append("--logging.quiet")
        if block_time is not None:
            command += ["--miner.blockTime", str(block_time)]
        if state is not None:
            _make_dir(state)
            command += ["--database.dbPath", str(state)]
    # quiet: the node's output goes to a log file of its own; otherwise to this process's terminal.
    log_path = _logs() / f"{kind}-{port}.log" if quiet else None
    process = _launch(kind, command, port, chain_id, timeout, log_path)
    node = LocalNode(kind=kind, port=port, url=f"http://{HOST}:{port}", process=process, state_path=state,
                     funded_key=DEV_KEYS[kind], command=command, chain_id=chain_id, timeout=timeout,
                     log_path=log_path)
    _live.add(node)
    return node


def stop_all() -> None:
    """Stop every node this process started; a program with its own SIGTERM handler calls this there."""
    for node in list(_live):
        node.stop()


def rpc(url: str, method: str, params: Sequence[Any] = (), *, timeout: float = RPC_TIMEOUT) -> Any:
    """Call one JSON-RPC method over HTTP and return its result; NodeError on any failure."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    try:
        reply = httpx.post(url, json=body, timeout=timeout, trust_env=False).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise NodeError(f"{method} on {url} got no JSON-RPC answer: {_one_line(exc)}") from exc
    if "error" in reply:
        error = reply["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise NodeError(f"{method} on {url} failed: {_one_line(message)}")
    return reply.get("result")


# anvil rewrites its own history: anvil_reorg replaces the top `depth` blocks with new empty ones.
# ganache cannot touch a block once mined; it can only go back to an evm_snapshot taken earlier
# (evm_revert, which also forgets that snapshot and every later one) and mine anew. So on ganache
# `snapshot` is required, taken when the head was `depth` blocks lower; the replacement blocks get
# the replaced ones' timestamps + 1 so that even empty blocks change hash (with --miner.blockTime,
# interval mining may add blocks meanwhile). On both nodes the transactions of the removed blocks
# are gone: not re-mined, not pending, their nonces free again.
def reorg(node: LocalNode, depth: int, snapshot: str | None = None) -> int:
    """Replace the top `depth` blocks with new empty ones (ganache: from `snapshot`); return the head."""
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    if not 1 <= depth <= head:
        raise NodeError(f"cannot reorg {depth} blocks of {node.kind} at {node.url}: the head is block {head}")
    if node.kind == "anvil":
        rpc(node.url, "anvil_reorg", [depth, []])
        return int(rpc(node.url, "eth_blockNumber"), 16)
    if snapshot is None:
        raise NodeError("ganache cannot rewrite mined blocks: take rpc(url, 'evm_snapshot') at the fork point"
                        " and pass it as snapshot")
    replaced = [rpc(node.url, "eth_getBlockByNumber", [hex(number), False])
                for number in range(head - depth + 1, head + 1)]
    if not rpc(node.url, "evm_revert", [snapshot]):
        raise NodeError(f"ganache at {node.url} has no snapshot {snapshot}: evm_revert uses snapshots up")
    fork_point = int(rpc(node.url, "eth_blockNumber"), 16)
    if fork_point != head - depth:
        raise NodeError(f"snapshot {snapshot} was taken at block {fork_point}, {head - fork_point} blocks"
                        f" below the head, not {depth}: ganache is back at block {fork_point} now")
    for block in replaced:
        rpc(node.url, "evm_mine", [{"timestamp": int(block["timestamp"], 16) + 1}])
    return int(rpc(node.url, "eth_blockNumber"), 16)


def _launch(
    kind: str, command: list[str], port: int, chain_id: int, timeout: float, log_path: Path | None
) -> subprocess.Popen:
    """Spawn the node in its own process group and wait until it answers with `chain_id`."""
    if not _port_free(port):
        raise NodeError(f"port {port} on {HOST} is in use: stop what listens there or pick another port")
    _install_exit_hooks()
    log = None if log_path is None else open(log_path, "ab")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=None if log is None else subprocess.STDOUT,
            process_group=0,
        )
    finally:
        if log is not None:
            log.close()
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise NodeError(f"{kind} exited with status {process.returncode} before answering on {url}:"
                            f" {_last_line(log_path)}")
        try:
            answer = rpc(url, "eth_chainId", timeout=max(0.1, min(RPC_TIMEOUT, deadline - time.monotonic())))
        except NodeError:
            answer = None
        if answer is not None and process.poll() is None:
            if int(answer, 16) == chain_id:
                return process
            _stop_process(process)
            raise NodeError(
                f"{url} answers with chain id {int(answer, 16)}, not {chain_id}: another node is there"
            )
        if time.monotonic() > deadline:
            _stop_process(process)
            raise NodeError(f"{kind} did not answer eth_chainId on {url} within {timeout:g} s:"
                            f" {_last_line(log_path)}")
        time.sleep(POLL_INTERVAL)


def _stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the process group, wait up to STOP_TIMEOUT, then SIGKILL it."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the process group led by `process` (not yet reaped, so the id is still ours)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _make_dir(path: Path) -> None:
    """Make the state directory `path` (and its parents) or raise NodeError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeError(f"cannot keep node state in {path}: {exc.strerror}") from exc


def _free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    """Whether a listener could bind `port` on the loopback address."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _logs() -> Path:
    """This process's directory of node logs, made on first use and removed at exit."""
    global _log_dir
    if _log_dir is None:
        _log_dir = Path(tempfile.mkdtemp(prefix="provsim-nodes-"))
    return _log_dir


def _last_line(log_path: Path | None) -> str:
    """The node's last error line (or last line) from its log, for a one-line message."""
    if log_path is None:
        return "see its output above"
    try:
        tail = log_path.read_bytes()[-8192:].decode(errors="replace")
    except OSError:
        return "it left no log"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["it printed nothing"])[-1]


def _one_line(value: object) -> str:
    """`value` as text on one line."""
    return " ".join(str(value).split())


def _install_exit_hooks() -> None:
    """Stop every node at exit, Ctrl-C included, and on SIGTERM if no one else handles it."""
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_shutdown)
    # Only the main thread may set handlers; a handler someone set is kept (they call stop_all()).
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _shutdown() -> None:
    """Stop every node and remove the log directory."""
    stop_all()
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


def _on_sigterm(signum: int, frame: object) -> None:
    """Stop every node, then die of SIGTERM as the default action would have."""
    _shutdown()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
