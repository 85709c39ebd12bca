"""Real anvil and ganache nodes from npm: start, fund, stop, crash, restart with state, reorg."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account

from pipeline.nodes import (
    DEV_KEYS,
    NODE_KINDS,
    PROJECT_ROOT,
    LocalNode,
    MissingNodeError,
    NodeError,
    reorg,
    rpc,
    start_node,
)

pytestmark = pytest.mark.timeout(30)


def head(node: LocalNode) -> int:
    """The node's latest block number."""
    return int(rpc(node.url, "eth_blockNumber"), 16)


def block_hash(node: LocalNode, number: int) -> str | None:
    """Hash of block `number`, or None if the node has no such block."""
    block = rpc(node.url, "eth_getBlockByNumber", [hex(number), False])
    return None if block is None else block["hash"]


def send_transfer(node: LocalNode, nonce: int) -> str:
    """Send 1 wei from the funded dev account to itself; the transaction hash."""
    account = Account.from_key(node.funded_key)
    tx = {
        "chainId": node.chain_id,
        "nonce": nonce,
        "to": account.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    raw = account.sign_transaction(tx).raw_transaction
    return rpc(node.url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()])


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_gone(pid: int) -> bool:
    """Whether no process has id `pid` any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_for_dump(state_file: Path, after: float) -> None:
    """Wait until anvil has written `state_file` in a dump begun after the wall-clock time `after`."""
    deadline = time.monotonic() + 5
    while not (state_file.exists() and state_file.stat().st_mtime > after + 0.1):
        assert time.monotonic() < deadline, "anvil wrote no state dump within 5 s"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_node_answers_with_its_chain_id_and_funds_the_dev_key(kind):
    with start_node(kind, chain_id=4242) as node:
        assert node.url == f"http://127.0.0.1:{node.port}"
        assert rpc(node.url, "eth_chainId") == hex(4242)
        assert node.funded_key == DEV_KEYS[kind]
        address = Account.from_key(DEV_KEYS[kind]).address
        assert int(rpc(node.url, "eth_getBalance", [address, "latest"]), 16) >= 1000 * 10**18
        tx_hash = send_transfer(node, 0)
        deadline = time.monotonic() + 5
        while (receipt := rpc(node.url, "eth_getTransactionReceipt", [tx_hash])) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert receipt["status"] == "0x1"


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_stop_frees_the_port_and_leaves_no_process(kind):
    node = start_node(kind)
    pid = node.process.pid
    assert node.is_running() and not port_is_free(node.port)
    node.stop()
    assert not node.is_running()
    assert process_gone(pid)
    assert port_is_free(node.port)
    node.stop()


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_graceful_stop_then_restart_keeps_every_block(kind, tmp_path):
    state = tmp_path / ("state.json" if kind == "anvil" else "db")
    with start_node(kind, state_path=state) as node:
        tx_hash = send_transfer(node, 0)
        for _ in range(3):
            rpc(node.url, "evm_mine")
        number = head(node)
        top = block_hash(node, number)
        node.stop()
        node.restart()
        assert head(node) == number and block_hash(node, number) == top
        assert rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_kill_then_restart_on_the_same_port_keeps_saved_blocks(kind, tmp_path):
    state = tmp_path / ("state.json" if kind == "anvil" else "db")
    with start_node(kind, state_path=state) as node:
        port = node.port
        tx_hash = send_transfer(node, 0)
        for _ in range(3):
            rpc(node.url, "evm_mine")
        number = head(node)
        top = block_hash(node, number)
        if kind == "anvil":
            # anvil saves every second (--state-interval 1): blocks mined since the last dump die with it.
            wait_for_dump(state, after=time.time())
        node.kill()
        assert not node.is_running() and port_is_free(port)
        node.restart()
        assert node.port == port and node.is_running()
        assert head(node) == number and block_hash(node, number) == top
        assert rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"
        rpc(node.url, "evm_mine")
        assert head(node) == number + 1


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_restart_without_a_state_path_starts_a_fresh_chain(kind):
    with start_node(kind) as node:
        rpc(node.url, "evm_mine")
        node.kill()
        node.restart()
        assert head(node) == 0


def test_missing_binary_names_make_npm(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVSIM_ANVIL", str(tmp_path / "no-such-anvil"))
    with pytest.raises(MissingNodeError) as failure:
        start_node("anvil")
    message = str(failure.value)
    assert "\n" not in message
    assert "`make npm`" in message and "@foundry-rs/anvil-linux-amd64" in message


def test_a_port_in_use_is_refused():
    with start_node("anvil") as node:
        with pytest.raises(NodeError, match=f"port {node.port} on 127.0.0.1 is in use"):
            start_node("anvil", port=node.port)
        assert rpc(node.url, "eth_chainId") == hex(31337)


def test_a_node_that_fails_to_start_reports_its_last_error_line(tmp_path):
    state = tmp_path / "state.json"
    state.write_text('{"truncated')
    with pytest.raises(NodeError, match="anvil exited with status 2 .*failed to parse json file"):
        start_node("anvil", state_path=state)


def test_rpc_errors_are_one_line_node_errors():
    with start_node("anvil") as node:
        with pytest.raises(NodeError, match=r"^no_such_method on http://127\.0\.0\.1:\d+ failed: "):
            rpc(node.url, "no_such_method")
        node.stop()
        with pytest.raises(NodeError, match="got no JSON-RPC answer"):
            rpc(node.url, "eth_chainId", timeout=1)


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_fractional_block_time_mines_on_its_own(kind):
    with start_node(kind, block_time=0.2) as node:
        first = head(node)
        time.sleep(1.2)
        assert head(node) - first >= 3


def test_reorg_on_anvil_replaces_blocks_and_drops_their_transactions():
    with start_node("anvil") as node:
        for _ in range(3):
            rpc(node.url, "evm_mine")
        tx_hash = send_transfer(node, 0)
        rpc(node.url, "evm_mine")
        number = head(node)
        mined_in = int(rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["blockNumber"], 16)
        before = [block_hash(node, n) for n in range(mined_in, number + 1)]
        assert reorg(node, number - mined_in + 1) == number
        after = [block_hash(node, n) for n in range(mined_in, number + 1)]
        assert all(old != new for old, new in zip(before, after))
        assert block_hash(node, mined_in - 1) is not None
        # The removed block's transaction is gone: not re-mined, not pending, its nonce free again.
        rpc(node.url, "evm_mine")
        assert rpc(node.url, "eth_getTransactionByHash", [tx_hash]) is None
        address = Account.from_key(node.funded_key).address
        assert rpc(node.url, "eth_getTransactionCount", [address, "pending"]) == "0x0"
        assert send_transfer(node, 0) == tx_hash


def test_reorg_on_ganache_needs_a_snapshot_and_replaces_blocks_from_it():
    with start_node("ganache") as node:
        rpc(node.url, "evm_mine")
        with pytest.raises(NodeError, match="ganache cannot rewrite mined blocks"):
            reorg(node, 1)
        snapshot = rpc(node.url, "evm_snapshot")
        tx_hash = send_transfer(node, 0)
        rpc(node.url, "evm_mine")
        number = head(node)
        before = [block_hash(node, n) for n in (number - 1, number)]
        assert reorg(node, 2, snapshot) == number
        assert block_hash(node, number - 1) != before[0] and block_hash(node, number) != before[1]
        assert rpc(node.url, "eth_getTransactionByHash", [tx_hash]) is None
        with pytest.raises(NodeError, match="has no snapshot"):
            reorg(node, 2, snapshot)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_node_does_not_outlive_its_python_process(signum):
    script = (
        "import time\n"
        "from pipeline.nodes import start_node\n"
        "node = start_node('anvil')\n"
        "print(node.process.pid, node.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        pid, port = map(int, parent.stdout.readline().split())
        assert not process_gone(pid)
        parent.send_signal(signum)
        parent.wait(15)
    finally:
        parent.kill()
        parent.wait()
    assert process_gone(pid)
    assert port_is_free(port)
