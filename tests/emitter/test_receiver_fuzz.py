"""Property tests: each dialect's verify_request and identify, and the reference Receiver, survive any request."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
from pathlib import Path
from unittest import mock

import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from rich.console import Console

from emitter.dialects import royal, tectra
from emitter.receiver import Receiver

NOW = 1_750_000_000
TECTRA_SECRET = "whsec_fuzz-tectra-secret"
ROYAL_SECRET = "whsec_" + base64.b64encode(b"fuzz-royal-secret-of-32-bytes!!!").decode()
SECRETS = {"tectra": TECTRA_SECRET, "royal": ROYAL_SECRET}
DIALECTS = {"tectra": tectra, "royal": royal}
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Any character, lone surrogates included (a header str need not be encodable at all).
CHARS = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]))
NAMES = ["X-Tectra-Signature", "x-tectra-signature", "X-Tectra-Event", "X-Tectra-Delivery", "X-Tectra-Timestamp",
         "webhook-id", "Webhook-Timestamp", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
         "SVIX-SIGNATURE", "Content-Type"]
HUGE = st.tuples(st.sampled_from(["", "-", "+"]), st.integers(1, 6000)).map(lambda t: t[0] + "7" * t[1])
STAMPS = st.one_of(HUGE, st.integers(NOW - 10 ** 6, NOW + 10 ** 6).map(str), st.sampled_from(
    ["", " ", "1e9", "nan", "inf", "-0", "+1750000000", "1_750_000_000", " 1750000000", "\u0661\u0667\u0665",
     "1750000000.0", "9" * 4301, "0x68"]))
SIGNATURES = st.lists(st.one_of(st.text(CHARS, max_size=60), st.binary(max_size=40).map(
    lambda raw: "v1," + base64.b64encode(raw).decode())), max_size=40).map(" ".join)
# Console markup and escape sequences: the receiver prints ids and event types it was sent.
MARKUP = st.sampled_from(["[/oops]", "[bold red]signature ok", "\x1b[2J", "[link=file:///]x[/link]", "\udcff"])
VALUES = st.one_of(st.text(CHARS, max_size=80), STAMPS, SIGNATURES, MARKUP, st.just("v1," + "A" * 10_000))
HEADERS = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(CHARS, max_size=24)), VALUES, max_size=10)
# Bodies that once slipped past the nesting check: UTF-16/32 text whose bytes look like a quote or a backslash.
SNEAKY = [('["\u5c00",' + "[" * 5000 + "]" * 5000 + ',"x"]').encode(codec) for codec in
          ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16")] + [b"[" * 100_000, b'{"a":' * 50_000]
BODIES = st.one_of(st.binary(max_size=512), st.text(CHARS, max_size=256).map(
    lambda text: text.encode("utf-8", "surrogatepass")), st.sampled_from(SNEAKY),
    HUGE.map(lambda digits: f'{{"type": {digits}, "event": 1e{digits}}}'.encode()),
    st.text(st.characters(codec="utf-8"), max_size=30).map(
        lambda name: json.dumps({"type": name, "event": name, "data": {}}).encode()))


def royal_headers(secret: str, msg_id: str, stamp: int, body: bytes, extra: list[str], svix: bool) -> dict:
    """Royal headers signed with `secret`, the true signature among `extra` ones, under one family of names."""
    true = royal.signature((secret,), msg_id, stamp, body)
    names = ("svix-id", "svix-timestamp", "svix-signature") if svix else (
        "webhook-id", "webhook-timestamp", "webhook-signature")
    return dict(zip(names, (msg_id, str(stamp), " ".join([*extra, true]))))


def signed(dialect: str, body: bytes) -> dict:
    """Headers a real sender would put on `body` at NOW; {} for Royal and a body that is not UTF-8 (it cannot sign it)."""
    if dialect == "royal" and not _utf8(body):
        return {}
    return DIALECTS[dialect].sign_headers(SECRETS[dialect], "content.signed", "evt_1", "2025-06-14T09:32:00Z",
                                          "dlv_1", body, NOW)


def with_signature(dialect: str, headers: dict, body: bytes) -> dict:
    """`headers` with every variant of the signed header names replaced by a real sender's headers for `body`."""
    good = signed(dialect, body)
    taken = {name.lower() for name in signed(dialect, b"{}")}
    return {**{k: v for k, v in headers.items() if k.lower() not in taken}, **good}


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
@FUZZ
@given(headers=HEADERS, body=BODIES, now=st.one_of(st.just(float(NOW)), st.floats(-1e18, 1e18)))
def test_arbitrary_requests_never_raise_and_never_verify(dialect, headers, body, now):
    module = DIALECTS[dialect]
    assert module.verify_request(SECRETS[dialect], headers, body, now) is False
    delivery_id, event_type = module.identify(headers, body)
    assert delivery_id is None or isinstance(delivery_id, str)
    assert event_type is None or isinstance(event_type, str)


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
@FUZZ
@given(body=BODIES, noise=HEADERS)
def test_arbitrary_headers_beside_a_true_signature_never_raise(dialect, body, noise):
    headers = with_signature(dialect, noise, body)
    result = DIALECTS[dialect].verify_request(SECRETS[dialect], headers, body, NOW)
    assert result is (dialect == "tectra" or _utf8(body)), "signed bodies verify (Royal signs UTF-8 text only)"


def _utf8(body: bytes) -> bool:
    """Whether the bytes are UTF-8 text."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@FUZZ
@given(body=st.binary(max_size=2048), secret=st.text(CHARS.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF),
                                                        min_size=1, max_size=64))
def test_tectra_verifies_exactly_its_own_signature(body, secret):
    headers = tectra.headers(secret, "content.signed", "dlv_1", "2025-06-14T09:32:00Z", body)
    assert tectra.verify_request(secret, headers, body, NOW)
    assert tectra.verify_request(secret, {k.upper(): v for k, v in headers.items()}, body, NOW)
    assert not tectra.verify_request(secret + "x", headers, body, NOW)


@FUZZ
@given(key=st.binary(min_size=1, max_size=64), msg_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
       .filter(str.strip), body=st.text(st.characters(codec="utf-8"), max_size=400).map(str.encode),
       age=st.integers(-300, 300), extra=st.lists(SIGNATURES, max_size=5), svix=st.booleans())
def test_royal_verifies_a_correct_signature_among_many(key, msg_id, body, age, extra, svix):
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = royal_headers(secret, msg_id, NOW + age, body, extra, svix)
    assert royal.verify_request(secret, headers, body, NOW)
    assert not royal.verify_request("whsec_" + base64.b64encode(key + b"!").decode(), headers, body, NOW)
    assert royal.identify(headers, body)[0] == msg_id


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
@FUZZ
@given(data=st.data())
def test_flipping_any_byte_of_the_body_breaks_the_signature(dialect, data):
    text = data.draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=300), label="text")
    body = text.encode()
    at = data.draw(st.integers(0, len(body) - 1), label="at")
    mask = data.draw(st.integers(1, 255), label="mask")
    headers = signed(dialect, body)
    assert DIALECTS[dialect].verify_request(SECRETS[dialect], headers, body, NOW)
    flipped = body[:at] + bytes([body[at] ^ mask]) + body[at + 1:]
    assert not DIALECTS[dialect].verify_request(SECRETS[dialect], headers, flipped, NOW)


@pytest.mark.parametrize("age, accepted", [(299, True), (300, True), (301, False), (86_400, False)])
def test_royal_window_edges_both_ways(age, accepted):
    body = b'{"type":"provenance.registration.complete","data":{}}'
    for stamp in (NOW - age, NOW + age):
        headers = royal_headers(ROYAL_SECRET, "msg_edge", stamp, body, [], svix=False)
        assert royal.verify_request(ROYAL_SECRET, headers, body, NOW) is accepted, stamp


class FixedClock:
    """A clock stopped at NOW."""

    time_scale = 1.0

    def now(self) -> float:
        """NOW, always."""
        return float(NOW)


async def _handle(receiver: Receiver, headers: dict, body: bytes) -> int:
    """Pass one request through the receiver's handler as aiohttp builds it, and return the status."""
    payload = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request("POST", "/hooks", headers=CIMultiDict(headers), payload=payload)
    return (await receiver._handle(request)).status


def logging_receivers(dump: Path) -> dict[str, Receiver]:
    """A receiver per dialect, clock at NOW, printing through a rich console (markup on) and dumping to a file."""
    console = Console(file=io.StringIO(), width=200)
    return {name: Receiver(SECRETS[name], dialect=name, clock=FixedClock(), dump_path=dump,
                           on_event=lambda line: console.print(line, highlight=False)) for name in DIALECTS}


@pytest.fixture(scope="module")
def receivers(tmp_path_factory):
    """Logging receivers driven through their handler."""
    return logging_receivers(tmp_path_factory.mktemp("fuzz") / "dump.jsonl")


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
@FUZZ
@given(headers=HEADERS, body=BODIES, sign=st.booleans())
def test_the_receiver_answers_every_request_with_200_400_or_401(receivers, dialect, headers, body, sign):
    receiver = receivers[dialect]
    if sign:
        headers = with_signature(dialect, headers, body)
    headers = {k: v for k, v in headers.items() if _sendable(k) and _sendable(v)}
    status = asyncio.run(_handle(receiver, headers, body))
    verified = receiver.received[-1].verified
    assert status in ((200, 400) if verified else (401,))
    assert verified is (sign and (dialect == "tectra" or _utf8(body)))
    del receiver.received[:]


def _sendable(text: str) -> bool:
    """Whether make_mocked_request takes this header name or value (UTF-8 text on one line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Logging receivers listening on 127.0.0.1, served by a loop in a thread; their ports by dialect."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = logging_receivers(tmp_path_factory.mktemp("live") / "dump.jsonl")
    ports = {name: asyncio.run_coroutine_threadsafe(rx.start("127.0.0.1", 0), loop).result(10)
             for name, rx in started.items()}
    yield ports
    for rx in started.values():
        asyncio.run_coroutine_threadsafe(rx.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _raw_post(port: int, header_lines: list[bytes], body: bytes) -> int:
    """POST raw header bytes and a body to 127.0.0.1:port over a plain socket; the answer's status."""
    head = b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + b"".join(
        line + b"\r\n" for line in header_lines) + b"Content-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


RAW_BYTES = st.binary(max_size=120).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
@settings(max_examples=40, deadline=None, database=None)
@given(names=st.lists(st.one_of(st.sampled_from(NAMES).map(str.encode), RAW_BYTES), max_size=6),
       values=st.lists(st.one_of(RAW_BYTES, HUGE.map(str.encode)), min_size=6, max_size=6),
       body=BODIES)
def test_the_listening_receiver_never_answers_5xx(live, dialect, names, values, body):
    lines = [name + b": " + value for name, value in zip(names, values)]
    assert _raw_post(live[dialect], lines, body) in (400, 401)
    good = signed(dialect, b'{"ok":true}')
    assert _raw_post(live[dialect], [f"{k}: {v}".encode() for k, v in good.items()], b'{"ok":true}') == 200
