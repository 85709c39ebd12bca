"""The provenance service of one process: store, signing key and chain, and each state change."""
from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import os
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from emitter import outbox
from emitter.clock import iso_utc
from emitter.endpoint import Endpoint
from emitter.event import Event

from . import marking, royal_events, tectra_events, watermark
from .analyze import Analysis, die_with
from .chain import AnchorReceipt, Chain, MintReceipt, SentTx
from .connect import connected
from .journal import StoreJournal
from .marking import MarkedCopy
from .merkle import MerkleTree
from .records import Batch, ChainTx, Party, Record, Signer as SignerRecord
from .settings import Settings
from .signing import Signer, load_or_create_secret
from .store import Store


class StorageError(OSError):
    """The database could not be opened or written (read-only, disk full, damaged); the message is one line."""


class Routes:
    """Who hears about whose records: a tenant's own endpoints, and the operator's (tenant None) about everyone's."""

    def __init__(self, endpoints: Sequence[Endpoint]):
        self._endpoints = list(endpoints)
        self._of: dict[str | None, dict[str, list[Endpoint]]] = {}
        self.any_royal = any(ep.dialect == "royal" for ep in self._endpoints)

    def of(self, tenant: str | None) -> dict[str, list[Endpoint]]:
        """Per dialect, the endpoints that hear about this tenant's records (None: the operator's own)."""
        if tenant not in self._of:
            self._of[tenant] = self._by_dialect(ep for ep in self._endpoints if ep.tenant in (None, tenant))
        return self._of[tenant]

    def own(self, tenant: str) -> dict[str, list[Endpoint]]:
        """Per dialect, the tenant's own endpoints only."""
        return self._by_dialect(ep for ep in self._endpoints if ep.tenant == tenant)

    @staticmethod
    def _by_dialect(endpoints) -> dict[str, list[Endpoint]]:
        """Endpoints grouped by dialect name."""
        grouped: dict[str, list[Endpoint]] = {"tectra": [], "royal": []}
        for ep in endpoints:
            grouped.setdefault(ep.dialect, []).append(ep)
        return grouped


class Service:
    """Opens the state of one data directory and applies each pipeline step atomically."""

    def __init__(self, settings: Settings, chain: Chain | None = None):
        self.settings = settings
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self.store = Store(settings.db)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot use the database {settings.db}: {exc}") from exc
        self.signer = Signer.load_or_create(settings.data_dir, settings.signer)
        self.watermark_key = load_or_create_secret(settings.data_dir, "watermark")  # keys the marks' layout
        info = self.signer.info()
        self.signer_record = SignerRecord(
            org_name=info["org_name"], org_type=info["org_type"], key_name=info["key_name"],
            key_id=info["key_id"], public_key_hex=info["public_key_hex"],
        )
        self._chain = chain
        self._exit = ExitStack()  # a node started for this service stops when it closes
        self.journal = StoreJournal(self.store)
        self._contracts_ready = False
        self.notes: list[str] = []
        self._pool: ProcessPoolExecutor | None = None
        self.extra_endpoints: list[Endpoint] = []

    # chain -----------------------------------------------------------------------

    @property
    def chain(self) -> Chain:
        """The chain (embedded unless one was given), with the registry and NFT contracts in place."""
        if self._chain is None:
            self._chain = self._exit.enter_context(connected(self.settings.chain, self.journal))
        if not self._contracts_ready:
            self._ensure_contracts(self._chain)
            self._contracts_ready = True
        return self._chain

    def _ensure_contracts(self, chain: Chain) -> None:
        """Reuse the contracts known for this chain (by chain id and genesis hash), or deploy them."""
        for name, ensure in (("ProvenanceRegistry", chain.ensure_registry_verbose),
                             ("ProvenanceNFT", chain.ensure_nft_verbose)):
            known = self.store.deployment(chain.chain_id, chain.genesis_hash, name)
            deployment = ensure(known)
            if known is not None and deployment.deployed:
                self.notes.append(f"{name}: {deployment.reason}; deployed a new one at {deployment.address}"
                                  " (earlier anchors cannot be checked against this chain)")
            with self.store.transaction() as conn:
                self._write_journal(conn)
                self.store.save_deployment(conn, chain.chain_id, chain.genesis_hash, name, deployment.address)

    def redeploy(self) -> None:
        """The chain was reset under us: deploy (or find) the contracts again before the next send."""
        self._ensure_contracts(self.chain)

    @property
    def originator_address(self) -> str:
        """Who receives the registration NFTs: the configured originator, else the chain account."""
        return self.settings.originator_address or self.chain.address

    def flush_journal(self) -> None:
        """Write what the embedded chain did outside any state change (empty blocks mined on demand)."""
        with self.store.transaction() as conn:
            self._write_journal(conn)

    def _write_journal(self, conn) -> None:
        """Persist the embedded chain's newly sent transactions in the current transaction."""
        self.store.append_journal(conn, self.journal.take())

    @property
    def pool(self) -> ProcessPoolExecutor:
        """Worker processes for hashing and perceptual hashing, started on first use and kept."""
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["pipeline.analyze", "pipeline.marking"])
            self._pool = ProcessPoolExecutor(max_workers=self.settings.workers, mp_context=ctx,
                                             initializer=die_with, initargs=(os.getpid(),))
            for _ in range(self.settings.workers):
                self._pool.submit(time.sleep, 0)  # start the workers now, not at the first item
        return self._pool

    # endpoints -----------------------------------------------------------------

    def add_transient_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """Endpoints given for one command: stored (deliveries refer to them), not listed."""
        with self.store.transaction() as conn:
            for ep in endpoints:
                outbox.save_endpoint(conn, ep)
        self.extra_endpoints.extend(endpoints)

    def endpoints(self) -> list[Endpoint]:
        """Where events go now: the persisted endpoints plus this command's own."""
        return outbox.list_endpoints(self.store.conn, persistent_only=True) + self.extra_endpoints

    def routes(self) -> Routes:
        """Who hears about whose records, from the endpoints there are now."""
        return Routes(self.endpoints())

    def _emit(self, conn, event_type: str, data: dict, key: str | None, timestamp: str,
              routes: dict[str, list[Endpoint]]) -> str:
        """Put one event in the outbox for the given endpoints of its dialect (caller's transaction); returns its id."""
        event = Event.new(event_type, data, timestamp=timestamp, idempotency_key=key)
        dialect = "royal" if event_type in royal_events.ROYAL_EVENTS else "tectra"
        outbox.enqueue(conn, event, routes[dialect])
        return event.id

    def _emit_royal(self, conn, routes: Routes, event_type: str, rec: Record, data: dict, key: str) -> None:
        """A Royal event about one registration, if any Royal endpoint hears of it and the record qualifies."""
        heard = routes.of(rec.tenant)
        if heard["royal"] and (rec.extended or event_type in royal_events.STANDARD_EVENTS):
            self._emit(conn, event_type, data, f"{event_type}:{rec.id}:{key}", iso_utc(self._now()), heard)

    # steps -----------------------------------------------------------------------

    def register(self, analysis: Analysis, source: str, filename: str,
                 origin_type: str | None = None, context: dict | None = None) -> tuple[Record, str | None]:
        """Sign and store one analysed item and announce it; returns (record, event id or None if known)."""
        return self.register_many([(analysis, source, filename)], origin_type, context)[0]

    def register_many(self, items: Sequence[tuple[Analysis, str, str]], origin_type: str | None = None,
                      context: dict | None = None, originator: Party | None = None,
                      extended: bool = False, tenant: str | None = None) -> list[tuple[Record, str | None]]:
        """Sign, store and announce analysed items (analysis, source, filename) in one transaction.

        The event id is the record's first announcement: content.signed, or for a record without
        SHA-256 (registered by content hash alone, so Royal's events only) provenance.registration.hashed.
        Content this signer registered before for the same tenant is not registered again: its first
        record comes back with None for the event id.
        """
        results: list[tuple[Record, str | None]] = []
        fresh: dict[str, Record] = {}
        signed_at = iso_utc(self._now())
        routes = self.routes()
        heard = routes.of(tenant)
        with self.store.transaction() as conn:
            for analysis, source, filename in items:
                digest = analysis.digest
                known = (fresh.get(digest.sha256 or digest.blake3)
                         or self.store.registration(digest.sha256, digest.blake3, self.signer.key_id, tenant))
                if known is not None:
                    results.append((known, None))
                    continue
                rec = self._new_record(analysis, source, filename, signed_at, origin_type, context,
                                       originator=originator or self.settings.registrar,
                                       registrar=self.settings.registrar, extended=extended, tenant=tenant)
                fresh[digest.sha256 or digest.blake3] = rec
                self.store.insert_record(conn, rec)
                if rec.sha256 is not None:
                    event_id = self._emit(conn, tectra_events.CONTENT_SIGNED, tectra_events.content_signed(rec),
                                          f"content.signed:{rec.id}", signed_at, heard)
                    self._emit_royal(conn, routes, royal_events.HASHED, rec, royal_events.hashed(rec), "")
                else:
                    event_id = self._emit(conn, royal_events.HASHED, royal_events.hashed(rec),
                                          f"{royal_events.HASHED}:{rec.id}:", signed_at, heard)
                results.append((rec, event_id))
        return results

    def _new_record(self, analysis: Analysis, source: str, filename: str, signed_at: str,
                    origin_type: str | None, context: dict | None, **who) -> Record:
        """A new signed record for analysed content; `who` sets originator, registrar, extended and tenant."""
        fp = analysis.fingerprint
        unsigned = Record(
            id=str(uuid.uuid4()), sha256=analysis.digest.sha256, blake3=analysis.digest.blake3,
            size=analysis.digest.size, perceptual_hash=fp.perceptual_hash, phash_reason=fp.reason,
            mime=fp.mime, original_filename=filename, source=source,
            origin_type=origin_type or fp.origin_type, signed_at=signed_at,
            signature_hex="", signer=self.signer_record,
            context=context, batch_id=None, leaf_index=None, blockchain_status="pending", **who,
        )
        return replace(unsigned, signature_hex=self.signer.sign(unsigned.signed_message()).hex())

    def close_batch(self, record_ids: list[str]) -> Batch:
        """Build the Merkle tree over these records and store the closed batch."""
        records = self.store.records(record_ids)
        tree = MerkleTree.of([r.leaf_values() for r in records])
        batch = Batch(id=str(uuid.uuid4()), merkle_root=tree.root_hex, leaf_count=len(records),
                      status="closed", created_at=iso_utc(self._now()))
        with self.store.transaction() as conn:
            self.store.insert_batch(conn, batch, record_ids)
        return batch

    def record_sent(self, kind: str, batch_id: str, sent: SentTx) -> None:
        """Store a transaction just sent for a batch; an anchor moves the batch to submitted."""
        tx = ChainTx(id=None, kind=kind, batch_id=batch_id, tx_hash=sent.tx_hash, nonce=sent.nonce,
                     raw_tx=sent.raw, status="submitted", chain_id=self.chain.chain_id, submitted_at=self._now())
        routes = self.routes()
        members = self.store.batch_records(batch_id) if kind == "anchor" and routes.any_royal else []
        with self.store.transaction() as conn:
            self._write_journal(conn)
            self.store.insert_tx(conn, tx)
            if kind == "anchor":
                self.store.set_batch_status(conn, batch_id, "submitted")
            for rec in members:
                self._emit_royal(conn, routes, royal_events.SUBMITTED, rec,
                                 royal_events.submitted(rec, sent.tx_hash), sent.tx_hash)

    def record_anchor_confirmed(self, tx: ChainTx, receipt: AnchorReceipt) -> str:
        """Store a confirmed anchor's receipt, mark its records anchored and announce the batch; the operator's event id.

        The operator's endpoints get batch.anchored with every record id; each tenant's endpoints get
        their own batch.anchored listing only that tenant's records (same batch, root and leaf count).
        """
        batch = self.store.batch(tx.batch_id)
        anchored = replace(
            batch, status="anchored", tx_hash=receipt.transaction_hash, block_hash=receipt.block_hash,
            block_number=receipt.block_number, chain_id=receipt.chain_id, log_index=receipt.log_index,
            transaction_index=receipt.transaction_index, network=self.chain.network, gas_used=receipt.gas_used,
        )
        members = self.store.batch_records(batch.id)
        routes = self.routes()
        with self.store.transaction() as conn:
            self.store.set_tx_status(conn, tx.id, "confirmed", self._now(), receipt)
            self.store.mark_anchored(conn, anchored)
            for rec in members:
                self._emit_royal(conn, routes, royal_events.COMPLETE, rec, royal_events.complete(rec, receipt),
                                 f"{receipt.transaction_hash}:{receipt.block_hash}")
            key = f"batch.anchored:{batch.id}:{receipt.transaction_hash}:{receipt.block_hash}"
            now = iso_utc(self._now())
            for tenant in dict.fromkeys(r.tenant for r in members if r.tenant is not None):
                mine = [r.id for r in members if r.tenant == tenant]
                self._emit(conn, tectra_events.BATCH_ANCHORED, tectra_events.batch_anchored(anchored, mine),
                           f"{key}:{tenant}", now, routes.own(tenant))
            return self._emit(conn, tectra_events.BATCH_ANCHORED,
                              tectra_events.batch_anchored(anchored, [r.id for r in members]),
                              key, now, routes.of(None))

    def record_anchor_adopted(self, tx: ChainTx, receipt: AnchorReceipt) -> str:
        """The batch's root was anchored by an earlier transaction: store that one as its anchor."""
        with self.store.transaction() as conn:
            tx_id = self.store.insert_tx(conn, replace(tx, id=None, tx_hash=receipt.transaction_hash, nonce=-1,
                                                        raw_tx=b"", submitted_at=self._now()))
        return self.record_anchor_confirmed(replace(tx, id=tx_id, tx_hash=receipt.transaction_hash), receipt)

    def record_mint_confirmed(self, tx: ChainTx, minted: MintReceipt) -> None:
        """Store the tokens a confirmed mint created, matched in order to the batch's unminted records by content hash."""
        waiting: dict[str, list[Record]] = {}
        for rec in self.store.batch_records(tx.batch_id):
            if self.needs_nft(rec.id):
                waiting.setdefault("0x" + rec.blake3, []).append(rec)
        minted_here = [(waiting[t.content_hash.lower()].pop(0), t) for t in minted.tokens
                       if waiting.get(t.content_hash.lower())]
        routes = self.routes()
        nft_address = self.chain.nft_address
        with self.store.transaction() as conn:
            self.store.set_tx_status(conn, tx.id, "confirmed", self._now(), minted.receipt)
            self.store.insert_nfts(conn, tx.id, nft_address,
                                   [(rec.id, str(t.token_id), t.to, t.log_index) for rec, t in minted_here])
            for rec, t in minted_here:
                self._emit_royal(conn, routes, royal_events.NFT_ADDED, rec,
                                 royal_events.nft_added(rec, minted.receipt, nft_address, str(t.token_id), t.log_index),
                                 f"{minted.receipt.transaction_hash}:{minted.receipt.block_hash}")

    def record_removed(self, tx: ChainTx) -> None:
        """A confirmed transaction's block left the chain: keep the history, wait for it again."""
        routes = self.routes()
        members = self.store.batch_records(tx.batch_id) if tx.kind == "anchor" and routes.any_royal else []
        gone = AnchorReceipt(tx.tx_hash, tx.block_hash, tx.block_number, tx.chain_id, tx.log_index,
                             tx.transaction_index, True, tx.gas_used)
        with self.store.transaction() as conn:
            self.store.set_tx_status(conn, tx.id, "removed", self._now())
            self.store.insert_tx(conn, replace(tx, id=None, status="submitted", submitted_at=self._now()))
            if tx.kind == "anchor":
                self.store.set_batch_status(conn, tx.batch_id, "submitted")
            for rec in members:
                self._emit_royal(conn, routes, royal_events.COMPLETE, rec,
                                 royal_events.complete(rec, gone, removed=True), f"{tx.tx_hash}:{tx.block_hash}:removed")

    def record_replaced(self, tx: ChainTx) -> None:
        """A submitted transaction will never be mined (its nonce went to another): give it up."""
        with self.store.transaction() as conn:
            self.store.set_tx_status(conn, tx.id, "replaced", self._now())
            if tx.kind == "anchor":
                self.store.set_batch_status(conn, tx.batch_id, "closed")

    def needs_mark(self, rec: Record) -> bool:
        """Whether the watermark stage should write this record's marked copy: an image, not marked yet (or the
        copy has gone missing)."""
        if rec.perceptual_hash is None:
            return False
        marked = self.store.watermark(rec.id)
        return marked is None or not Path(marked["path"]).is_file()

    async def write_marked_copy(self, rec: Record, local: str) -> MarkedCopy:
        """Write a registered image's marked copy (from its file at `local`) in a worker and keep it; IngestError
        naming the file if it cannot be marked, sqlite3.Error if it cannot be kept."""
        dest = str(self.settings.marked_dir / marking.copy_name(rec.id, rec.original_filename, rec.mime))
        copy = await asyncio.get_running_loop().run_in_executor(
            self.pool, marking.mark_file, local, dest, watermark.payload_of(rec.signature_hex), self.watermark_key)
        self.record_marked(rec, copy)
        return copy

    def record_marked(self, rec: Record, copy: MarkedCopy) -> None:
        """Keep a record's marked copy: its payload becomes findable, and its SHA-256 matches the record."""
        with self.store.transaction() as conn:
            self.store.save_watermark(conn, rec.id, watermark.payload_of(rec.signature_hex), copy.path,
                                      copy.sha256, copy.size, copy.psnr)

    def needs_nft(self, record_id: str) -> bool:
        """Whether a record has no NFT, or only one from a mint that left the chain (removed) or never got on it."""
        nft = self.store.nft(record_id)
        return nft is None or nft["status"] in ("removed", "replaced")

    def batches_missing_nfts(self) -> list[str]:
        """Anchored batches with records that need an NFT (see needs_nft) and no mint on its way."""
        return [row[0] for row in self.store.conn.execute(
            "SELECT b.id FROM batches b WHERE b.status = 'anchored'"
            " AND EXISTS (SELECT 1 FROM records r LEFT JOIN nfts n ON n.record_id = r.id"
            "             LEFT JOIN chain_txs m ON m.id = n.tx_id WHERE r.batch_id = b.id"
            "             AND (n.record_id IS NULL OR m.status IN ('removed', 'replaced')))"
            " AND NOT EXISTS (SELECT 1 FROM chain_txs t WHERE t.batch_id = b.id AND t.kind = 'mint'"
            "                 AND t.status = 'submitted')"
            " ORDER BY b.rowid")]

    def emit_verified(self, data: dict, tenant: str | None = None) -> str:
        """Announce a verification result to the operator's endpoints and those of the tenant who asked."""
        with self.store.transaction() as conn:
            return self._emit(conn, tectra_events.CONTENT_VERIFIED, data,
                              None, iso_utc(self._now()), self.routes().of(tenant))

    def proof(self, record_id: str) -> dict | None:
        """`{"root", "leaf": {"types", "values"}, "proof"}` for a batched record, else None."""
        rec = self.store.record(record_id)
        if rec is None or rec.batch_id is None:
            return None
        members = self.store.batch_records(rec.batch_id)
        tree = MerkleTree.of([r.leaf_values() for r in members])
        return tree.proof_json(rec.leaf_index)

    def describe(self, record_id: str) -> dict | None:
        """Everything known about a record: hashes, signature, batch and its anchor, NFT; None if unknown."""
        rec = self.store.record(record_id)
        if rec is None:
            return None
        batch = self.store.batch(rec.batch_id) if rec.batch_id else None
        anchor = None
        if batch is not None and batch.status == "anchored":
            anchor = {"transaction_hash": batch.tx_hash, "block_hash": batch.block_hash,
                      "block_number": batch.block_number, "chain_id": batch.chain_id,
                      "log_index": batch.log_index, "transaction_index": batch.transaction_index,
                      "network": batch.network, "removed": False}
        return {
            "record_id": rec.id, "sha256": rec.sha256, "blake3": rec.blake3, "size": rec.size,
            "perceptual_hash": rec.perceptual_hash, "original_filename": rec.original_filename,
            "origin_type": rec.origin_type, "signed_at": rec.signed_at, "signature_hex": rec.signature_hex,
            "signer": {"org_name": rec.signer.org_name, "org_type": rec.signer.org_type,
                       "key_name": rec.signer.key_name, "key_id": rec.signer.key_id},
            "context": rec.context, "blockchain_status": rec.blockchain_status,
            "batch": None if batch is None else {"batch_id": batch.id, "merkle_root": batch.merkle_root,
                                                 "leaf_count": batch.leaf_count, "status": batch.status},
            "anchor": anchor, "proof": self.proof(rec.id), "nft": self.store.nft(rec.id),
            "watermark": self.store.watermark(rec.id),
        }

    def close(self) -> None:
        """Stop the workers and any node started for this service, and close the store."""
        try:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
            self._exit.close()
        finally:
            self.store.close()

    @staticmethod
    def _now() -> float:
        """Wall-clock time for timestamps."""
        return time.time()
