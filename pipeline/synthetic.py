"""Endless, self-consistent Tectra and Royal event streams (true hashes, signatures, Merkle roots) for load tests."""
from __future__ import annotations

import functools
import io
import math
import random
import tempfile
import time
import uuid
import zlib
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw

from emitter.clock import iso_utc
from emitter.event import Event
from emitter.loaditem import LoadItem

from . import royal_events, tectra_events
from .chain import AnchorReceipt
from .connect import NETWORKS
from .digest import StreamHasher
from .fingerprint import fingerprint
from .merkle import MerkleTree
from .records import Batch, Party, Record, Signer as SignerRecord
from .settings import DEFAULT_SIGNER
from .signing import Signer, signing_message
from .verify import chain_match, phash_match, score, sha256_match, watermark_match

DIALECT_EVENTS = {"tectra": tectra_events.TECTRA_EVENTS, "royal": royal_events.ROYAL_EVENTS}
CHAIN_ID = 31337
NETWORK = NETWORKS[CHAIN_ID]
# Where anvil puts the second contract its first account deploys: the NFT, after the registry.
NFT_ADDRESS = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DEFAULT_BATCH_SIZE = 16
MAX_BATCH = 1024  # records waiting for a batch, and records queued between two Royal steps, at most
RECENT = 1024  # anchored records a content.verified may be about
POOL_SIZE = 8
PICTURE_SIZE = (160, 120)
EXACT_COPY_SHARE = 0.6  # verifications of the registered bytes; the rest are resized or recompressed copies
NEAR_COPY_DISTANCES = (0, 1, 1, 2, 2, 3, 4, 6)  # pHash distances of such copies, as bench_fingerprint measured
NEAR_COPY_BIT_ERRORS = (0, 0, 0, 0, 0, 1, 2)  # watermark payload bit errors of such copies, as bench_watermark measured
ANCHOR_GAS = 69_000
MINT_GAS_PER_TOKEN = 50_600
TAG_KEYWORD = b"provsim-record"
PNG_IEND_LENGTH = 12
JPEG_SEGMENTS_BEFORE_TAG = range(0xE0, 0xF0)  # APP0..APP15 (JFIF, EXIF) stay first
CAMERA_EXIF = {0x010F: "Canon", 0x0110: "Canon EOS R6"}


@dataclass(frozen=True)
class Picture:
    """A pooled image split where a per-record tag goes, with its pHash, media type, origin type and extension."""

    head: bytes
    tail: bytes
    perceptual_hash: str
    mime: str
    origin_type: str
    ext: str

    def content(self, tag: str) -> bytes:
        """The image with `tag` as metadata (a PNG tEXt chunk or a JPEG comment): the same pixels, unique bytes."""
        text = tag.encode()
        if self.mime == "image/png":
            body = b"tEXt" + TAG_KEYWORD + b"\x00" + text
            chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
        else:
            chunk = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
        return self.head + chunk + self.tail


def _split_point(data: bytes, mime: str) -> int:
    """Where a tag goes: before PNG's IEND chunk, or after a JPEG's APPn segments."""
    if mime == "image/png":
        return len(data) - PNG_IEND_LENGTH
    at = 2
    while data[at] == 0xFF and data[at + 1] in JPEG_SEGMENTS_BEFORE_TAG:
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return at


def _draw(rng: random.Random) -> Image.Image:
    """A random picture: a colour gradient with a few shapes on it."""
    width, height = PICTURE_SIZE
    top, bottom = ([rng.randrange(256) for _ in range(3)] for _ in range(2))
    image = Image.new("RGB", PICTURE_SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=tuple(a + (b - a) * y // height for a, b in zip(top, bottom)))
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = [x0, y0, x0 + rng.randint(15, 80), y0 + rng.randint(15, 60)]
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


@functools.lru_cache(maxsize=8)
def picture_pool(seed: int | None = None) -> tuple[Picture, ...]:
    """POOL_SIZE pictures drawn from the seed, each hashed once by fingerprint(): camera JPEGs, plain JPEGs, PNGs."""
    rng = random.Random(seed)
    pool = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(POOL_SIZE):
            image, out = _draw(rng), io.BytesIO()
            ext = "png" if index % 4 == 3 else "jpg"
            if ext == "png":
                image.save(out, "PNG")
            else:
                exif = Image.Exif()
                if index % 2 == 0:
                    exif.update(CAMERA_EXIF)
                image.save(out, "JPEG", quality=85, exif=exif)
            data = out.getvalue()
            path = Path(scratch) / f"{index}.{ext}"
            path.write_bytes(data)
            looks = fingerprint(path)
            at = _split_point(data, looks.mime)
            pool.append(Picture(data[:at], data[at:], looks.perceptual_hash, looks.mime, looks.origin_type, ext))
    return tuple(pool)


def sample_context(record_id: str) -> dict:
    """A context object as Royal's documentation shows one (an internal user id and a reference)."""
    return {"user_id": str(int(record_id[:6], 16) % 100_000), "transaction_ref": "tx_" + record_id[-6:]}


def _resolve(name: str, dialect: str) -> str | None:
    """The dialect's event called `name`, by full name or by its last part ("signed", "hashed"); None if none."""
    for event_type in DIALECT_EVENTS[dialect]:
        if name in (event_type, event_type.rsplit(".", 1)[-1]):
            return event_type
    return None


def _weight(item: str, value: object) -> float:
    """One weight as a float: ValueError naming the item if it is not a finite number or is negative."""
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"mix item {item!r}: weight {value!r} is not a number") from None
    if not math.isfinite(weight):
        raise ValueError(f"mix item {item!r}: weight {value!r} is not a finite number")
    if weight < 0:
        raise ValueError(f"mix item {item!r}: weight {value!r} is negative")
    return weight


def _check_dialect(dialect: str) -> None:
    """ValueError naming the dialects if `dialect` is none of them."""
    if dialect not in DIALECT_EVENTS:
        raise ValueError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECT_EVENTS)}")


def _check_mix(pairs: list[tuple[str, str, object]], dialect: str) -> dict[str, float]:
    """Weights by full event name from (item, name, weight) triples; one-line ValueError on the first bad one."""
    _check_dialect(dialect)
    mix: dict[str, float] = {}
    for item, name, value in pairs:
        event_type = _resolve(name.strip(), dialect)
        if event_type is None:
            known = ", ".join(DIALECT_EVENTS[dialect])
            raise ValueError(f"mix item {item!r}: {name.strip()!r} is not a {dialect} event (use {known})")
        if event_type in mix:
            raise ValueError(f"mix item {item!r}: {event_type} is given twice")
        mix[event_type] = _weight(item, value)
    if not any(mix.values()):
        raise ValueError(f"mix {', '.join(item for item, _, _ in pairs) or '(empty)'}: no event has a positive weight")
    return mix


def parse_mix(text: str, dialect: str) -> dict[str, float]:
    """Weights from "content.signed=0.6,batch.anchored=0.1" (an event's last part will do, e.g. "signed=0.6")."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"mix item {item!r}: not of the form EVENT=WEIGHT")
        pairs.append((item, name, value.strip()))
    return _check_mix(pairs, dialect)


def default_mix(dialect: str, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, float]:
    """The natural lifecycle: every record goes through each per-record event once, one batch.anchored per batch."""
    if dialect == "tectra":
        return {tectra_events.CONTENT_SIGNED: batch_size, tectra_events.BATCH_ANCHORED: 1,
                tectra_events.CONTENT_VERIFIED: batch_size}
    return dict.fromkeys(DIALECT_EVENTS[dialect], 1.0)


def _schedule(weights: Mapping[str, float]) -> Iterator[str]:
    """Event types in exactly the ratio of their weights, evenly spread (smooth weighted round robin)."""
    live = {event_type: weight for event_type, weight in weights.items() if weight > 0}
    total = sum(live.values())
    credit = dict.fromkeys(live, 0.0)
    while True:
        for event_type, weight in live.items():
            credit[event_type] += weight
        chosen = max(credit, key=credit.__getitem__)
        credit[chosen] -= total
        yield chosen


class EventStream(Iterator[LoadItem]):
    """An endless LoadItem iterator: seeded records signed in memory (`signer`), and a synthetic chain."""

    def __init__(self, seed: int | None, batch_size: int, weights: Mapping[str, float],
                 context: dict | Callable[[str], dict] | None) -> None:
        """Draw the signing key, the pictures and the chain's starting block from the seed."""
        self.rng = random.Random(seed)
        self.pictures = picture_pool(seed)
        self.batch_size = batch_size
        self.weights = weights
        self.context = context
        self.signer = Signer(Ed25519PrivateKey.from_private_bytes(self.rng.randbytes(32)), DEFAULT_SIGNER)
        identity = self.signer.identity
        self.signer_record = SignerRecord(identity.org_name, identity.org_type, identity.key_name,
                                          self.signer.key_id, self.signer.public_key_hex)
        self.originators = [Party(str(self.rng.randrange(10**6, 10**7)), f"creator{i}") for i in range(8)]
        self.records = 0
        self.block = self.rng.randrange(1, 10_000)
        self.schedule = _schedule(weights)

    def __iter__(self) -> EventStream:
        """The stream is its own iterator."""
        return self

    def __next__(self) -> LoadItem:
        """The next event, of the type the schedule says."""
        return self.emit(next(self.schedule))

    @abstractmethod
    def emit(self, event_type: str) -> LoadItem:
        """The next event of this type, with every step it needs first taken (silently if not its turn)."""

    def record(self) -> Record:
        """A new record: unique bytes of a pooled picture, hashed and signed for real, now."""
        picture = self.pictures[self.records % len(self.pictures)]
        self.records += 1
        record_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        hasher = StreamHasher()
        hasher.update(picture.content(record_id))
        digest = hasher.digest()
        signed_at = iso_utc(time.time())
        message = signing_message(digest.sha256, picture.perceptual_hash, signed_at, self.signer.key_id)
        name = f"{'IMG' if picture.origin_type == 'camera_image' else 'graphic'}_{self.records:06d}.{picture.ext}"
        context = self.context(record_id) if callable(self.context) else self.context
        return Record(
            id=record_id, sha256=digest.sha256, blake3=digest.blake3, size=digest.size,
            perceptual_hash=picture.perceptual_hash, phash_reason=None, mime=picture.mime,
            original_filename=name, source=f"synthetic:{name}", origin_type=picture.origin_type,
            signed_at=signed_at, signature_hex=self.signer.sign(message).hex(), signer=self.signer_record,
            context=context, batch_id=None, leaf_index=None, blockchain_status="pending",
            originator=self.rng.choice(self.originators), extended=True,
        )

    def tx_hash(self) -> str:
        """A fresh 0x-hex transaction (or block) hash."""
        return "0x" + self.rng.randbytes(32).hex()

    def receipt(self, tx_hash: str, first_log: int, gas_used: int) -> AnchorReceipt:
        """The transaction mined a block or few later, behind a few others that each logged one event."""
        self.block += self.rng.randint(1, 3)
        index = self.rng.randrange(4)
        return AnchorReceipt(tx_hash, self.tx_hash(), self.block, CHAIN_ID, index + first_log, index, False, gas_used)


class _TectraStream(EventStream):
    """Tectra's lifecycle: content.signed, then the batch.anchored listing the record, then content.verified."""

    # Records wait for the next batch.anchored, which lists all of them (a batch of batch_size silent
    # records when none waits). Without batch.anchored in the mix they are anchored silently every
    # batch_size records; MAX_BATCH waiting ones are anchored silently too, so memory stays bounded
    # (or forgotten, when no content.verified in the mix could be about them).

    def __init__(self, *args) -> None:
        """No record waiting, none anchored yet."""
        super().__init__(*args)
        self.waiting: list[Record] = []
        self.anchored: deque[tuple[Record, Batch]] = deque(maxlen=RECENT)
        self.limit = MAX_BATCH if self.weights.get(tectra_events.BATCH_ANCHORED) else self.batch_size
        self.verifies = bool(self.weights.get(tectra_events.CONTENT_VERIFIED))

    def emit(self, event_type: str) -> LoadItem:
        """The next event of this type, grouped by record id (batch.anchored: by batch id)."""
        if event_type == tectra_events.CONTENT_SIGNED:
            rec = self.sign()
            return LoadItem(Event.new(event_type, tectra_events.content_signed(rec), rec.signed_at), rec.id)
        if event_type == tectra_events.BATCH_ANCHORED:
            waiting, self.waiting = self.waiting, []
            batch, members = self.anchor(waiting or [self.record() for _ in range(self.batch_size)])
            return LoadItem(Event.new(event_type, tectra_events.batch_anchored(batch, members)), batch.id,
                            follows=tuple(members))
        rec, data = self.verification()
        return LoadItem(Event.new(event_type, data), rec.id)

    def sign(self) -> Record:
        """A new record waiting for its batch; a full wait anchors silently (or is dropped if none is verified)."""
        if len(self.waiting) >= self.limit:
            if self.verifies:
                self.anchor(self.waiting)
            self.waiting = []
        rec = self.record()
        self.waiting.append(rec)
        return rec

    def anchor(self, records: list[Record]) -> tuple[Batch, list[str]]:
        """Close a batch over these records, build its true Merkle root and mine it; returns it and its ids."""
        tree = MerkleTree.of([rec.leaf_values() for rec in records])
        receipt = self.receipt(self.tx_hash(), 0, ANCHOR_GAS)
        batch = Batch(
            id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), merkle_root=tree.root_hex,
            leaf_count=len(records), status="anchored", created_at=iso_utc(time.time()),
            tx_hash=receipt.transaction_hash, block_hash=receipt.block_hash, block_number=receipt.block_number,
            chain_id=CHAIN_ID, log_index=receipt.log_index, transaction_index=receipt.transaction_index,
            network=NETWORK, gas_used=receipt.gas_used,
        )
        self.anchored.extend((rec, batch) for rec in records)
        return batch, [rec.id for rec in records]

    def verification(self) -> tuple[Record, dict]:
        """A verification of an anchored record: its exact bytes, or a resized or recompressed copy."""
        if not self.anchored:
            self.anchor([self.record() for _ in range(self.batch_size)])
        rec, batch = self.rng.choice(self.anchored)
        exact = self.rng.random() < EXACT_COPY_SHARE
        distance = 0 if exact else self.rng.choice(NEAR_COPY_DISTANCES)
        checks = {
            "watermark": watermark_match(0 if exact else self.rng.choice(NEAR_COPY_BIT_ERRORS)),
            "sha256": sha256_match("Exact match" if exact else None),
            "perceptual_hash": phash_match(distance),
            "blockchain": chain_match(batch.block_number),
        }
        authentic, confidence = score(checks)
        signer = {"org_name": rec.signer.org_name, "org_type": rec.signer.org_type}
        return rec, tectra_events.content_verified(authentic, confidence, rec.id, checks, signer)


class _RoyalBatch:
    """One Royal batch on the synthetic chain: its anchor transaction, and receipts once mined."""

    def __init__(self, tx_hash: str) -> None:
        """A batch whose anchor transaction `tx_hash` is sent, not yet mined."""
        self.tx_hash = tx_hash
        self.anchor: AnchorReceipt | None = None
        self.mint: AnchorReceipt | None = None
        self.minted = 0


class _RoyalStream(EventStream):
    """Royal's lifecycle per registration: hashed, submitted, complete, nft_added; batches on chain."""

    # Each step takes the oldest record the step before finished; when there is none, that step runs
    # silently first. A batch is batch_size records: the oldest hashed ones waiting, topped up with
    # silent ones. Queues hold MAX_BATCH records at most: beyond that the oldest stop where they are.

    def __init__(self, *args) -> None:
        """Every queue empty, no token minted yet."""
        super().__init__(*args)
        self.waiting: deque[Record] = deque(maxlen=MAX_BATCH)
        self.to_submit: deque[tuple[Record, _RoyalBatch]] = deque(maxlen=MAX_BATCH)
        self.to_complete: deque[tuple[Record, _RoyalBatch]] = deque(maxlen=MAX_BATCH)
        self.to_mint: deque[tuple[Record, _RoyalBatch]] = deque(maxlen=MAX_BATCH)
        self.token_id = 0

    def emit(self, event_type: str) -> LoadItem:
        """The next event of this type, grouped by record id."""
        if event_type == royal_events.HASHED:
            rec = self.record()
            self.waiting.append(rec)
            data = royal_events.hashed(rec)
        elif event_type == royal_events.SUBMITTED:
            rec, batch = self.submitted()
            data = royal_events.submitted(rec, batch.tx_hash)
        elif event_type == royal_events.COMPLETE:
            rec, batch = self.completed()
            data = royal_events.complete(rec, batch.anchor)
        else:
            rec, data = self.minted()
        return LoadItem(Event.new(event_type, data), rec.id)

    def submitted(self) -> tuple[Record, _RoyalBatch]:
        """The next record whose batch's anchor transaction is sent, closing a batch if none is open."""
        if not self.to_submit:
            batch = _RoyalBatch(self.tx_hash())
            members = [self.waiting.popleft() for _ in range(min(len(self.waiting), self.batch_size))]
            members += [self.record() for _ in range(self.batch_size - len(members))]
            self.to_submit.extend((rec, batch) for rec in members)
        item = self.to_submit.popleft()
        self.to_complete.append(item)
        return item

    def completed(self) -> tuple[Record, _RoyalBatch]:
        """The next record whose anchor is confirmed; the batch's anchor is mined when its first record gets here."""
        if not self.to_complete:
            self.submitted()
        rec, batch = self.to_complete.popleft()
        if batch.anchor is None:
            batch.anchor = self.receipt(batch.tx_hash, 0, ANCHOR_GAS)
        self.to_mint.append((rec, batch))
        return rec, batch

    def minted(self) -> tuple[Record, dict]:
        """The next record's NFT: one mint per batch after its anchor, increasing token ids, distinct logs."""
        if not self.to_mint:
            self.completed()
        rec, batch = self.to_mint.popleft()
        if batch.mint is None:
            # A mint logs Transfer then ProvenanceMinted per token: the first ProvenanceMinted is the second log.
            batch.mint = self.receipt(self.tx_hash(), 1, MINT_GAS_PER_TOKEN * self.batch_size)
        self.token_id += 1
        log_index = batch.mint.log_index + 2 * batch.minted
        batch.minted += 1
        return rec, royal_events.nft_added(rec, batch.mint, NFT_ADDRESS, str(self.token_id), log_index)


_STREAMS = {"tectra": _TectraStream, "royal": _RoyalStream}

# Groups: a per-record event's group is its record id. batch.anchored covers several records, so its
# group is its own batch id and it `follows` the groups of the records it lists: it comes after their
# content.signed and before their content.verified. Event types missing from the mix (or weighted 0)
# happen silently where a later step needs them, so causal order holds for whatever is emitted.


def events(dialect: str, mix: Mapping[str, float] | None = None, seed: int | None = None, *,
           batch_size: int = DEFAULT_BATCH_SIZE,
           context: dict | Callable[[str], dict] | None = None) -> EventStream:
    """Endless valid events of a dialect in the ratio of `mix` (None: default_mix); context: a dict or f(record id)."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}")
    _check_dialect(dialect)
    if mix is None:
        weights = default_mix(dialect, batch_size)
    else:
        weights = _check_mix([(f"{name}={value}", name, value) for name, value in mix.items()], dialect)
    return _STREAMS[dialect](seed, batch_size, weights, context)
