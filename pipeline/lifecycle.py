"""Moves closed batches through the chain: submit, confirm after K blocks, mint, survive reorgs and outages."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from .chain import MAX_MINT_BATCH, AlreadyAnchoredError, ChainUnavailableError, NonceTakenError, SentTx
from .records import ChainTx
from .service import Service

REORG_WINDOW = 64  # blocks below the head in which a confirmed transaction is still watched
MAX_BACKOFF = 5.0  # seconds between tries while the chain does not answer


class ChainWorker:
    """Drives every batch from closed to anchored (and its NFTs minted), one step at a time."""

    def __init__(self, service: Service, confirmations: int = 1, poll: float = 0.05, mint: bool = True,
                 on_note: Callable[[str], None] | None = None,
                 on_anchored: Callable[[str, str], None] | None = None,
                 on_events: Callable[[], None] | None = None):
        if confirmations < 1:
            raise ValueError(f"confirmations must be at least 1, got {confirmations}")
        self.service = service
        self.confirmations = confirmations
        self.poll = poll
        self.mint = mint
        self.on_note = on_note or (lambda line: None)
        self.on_anchored = on_anchored or (lambda batch_id, event_id: None)
        self.on_events = on_events or (lambda: None)  # a step queued webhook events: deliver them now
        self._queued = False
        self._wake = asyncio.Event()
        self._outage = False
        self._mint_sweep = mint  # a run stopped between an anchor and its mint leaves records without NFTs
        self.reorgs = 0

    def wake(self) -> None:
        """A batch was closed: look at it now rather than at the next poll."""
        self._wake.set()

    async def run(self, producers_done: asyncio.Event) -> None:
        """Work until the producers are done and no batch or transaction is left waiting."""
        delay = 0.0
        while True:
            self._wake.clear()
            try:
                pending = await self.step()
            except ChainUnavailableError as exc:
                self._outage = True
                self._mint_sweep = self.mint  # the outage may have cut a mint short
                delay = min(MAX_BACKOFF, max(0.2, delay * 2))
                self.on_note(f"waiting for the chain: {exc}; records stay pending, next try in {delay:.1f}s")
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            if not pending and producers_done.is_set():
                return
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except asyncio.TimeoutError:
                pass

    async def step(self) -> bool:
        """One pass: submit closed batches, confirm or re-send submitted transactions, watch for reorgs."""
        chain, store = self.service.chain, self.service.store
        if self._outage:
            await self._after_outage()
        if self._mint_sweep:
            for batch_id in self.service.batches_missing_nfts():
                await self._mint(batch_id)
            self._mint_sweep = False
        for batch in store.batches(status="closed"):
            await self._send("anchor", batch.id, chain.send_anchor,
                             bytes.fromhex(batch.merkle_root[2:]), batch.leaf_count)
        head = await asyncio.to_thread(chain.head)
        waiting_for_depth = False
        for tx in store.txs(status="submitted"):
            waiting_for_depth |= await self._advance(tx, head)
        await self._watch_reorgs(head)
        if waiting_for_depth and chain.network == "embedded":
            await asyncio.to_thread(chain.mine, 1)  # the in-process chain only makes blocks on demand
            self.service.flush_journal()
        if self._queued:
            self._queued = False
            self.on_events()
        return bool(store.txs(status="submitted") or store.batches(status="closed"))

    async def _after_outage(self) -> None:
        """The chain answers again: make sure it is the same chain before trusting anything on it."""
        self._outage = False
        if await asyncio.to_thread(self.service.chain.same_chain):
            self.on_note("chain answering again: carrying on")
            return
        self.on_note("chain answering again, but it was reset (new genesis or contracts gone): redeploying;"
                     " batches anchored before the reset will be anchored again")
        await asyncio.to_thread(self.service.redeploy)

    async def _send(self, kind: str, batch_id: str, send: Callable[..., SentTx], *args) -> None:
        """Send a transaction and store it; one the node may have got before failing is stored too."""
        try:
            sent = await asyncio.to_thread(send, *args)
        except ChainUnavailableError as exc:
            if exc.sent is not None:
                self.service.record_sent(kind, batch_id, exc.sent)
                self._queued = True
            raise
        self.service.record_sent(kind, batch_id, sent)
        self._queued = True

    async def _advance(self, tx: ChainTx, head: int) -> bool:
        """Confirm a submitted transaction once K blocks hold it; re-send it if the node lost it.

        Returns True while it is mined but not yet K blocks deep.
        """
        chain = self.service.chain
        try:
            if tx.kind == "anchor":
                receipt = await asyncio.to_thread(chain.receipt, tx.tx_hash)
            else:
                minted = await asyncio.to_thread(chain.mint_receipt, tx.tx_hash)
                receipt = minted.receipt if minted else None
        except AlreadyAnchoredError:
            await self._adopt_earlier_anchor(tx)
            return False
        if receipt is None:
            if not await asyncio.to_thread(chain.transaction_known, tx.tx_hash):
                await self._resend(tx)
            return False
        if head - receipt.block_number + 1 < self.confirmations:
            return True
        if tx.kind == "anchor":
            event_id = self.service.record_anchor_confirmed(tx, receipt)
            self.on_anchored(tx.batch_id, event_id)
            if self.mint and not self.service.store.live_txs(tx.batch_id, "mint"):
                await self._mint(tx.batch_id)
        else:
            self.service.record_mint_confirmed(tx, minted)
            self._queued = True
        return False

    async def _adopt_earlier_anchor(self, tx: ChainTx) -> None:
        """This anchor reverted because an earlier send of the same root got in first: use that one."""
        batch = self.service.store.batch(tx.batch_id)
        earlier = await asyncio.to_thread(self.service.chain.find_anchor, bytes.fromhex(batch.merkle_root[2:]))
        self.service.record_replaced(tx)
        if earlier is not None:
            event_id = self.service.record_anchor_adopted(tx, earlier)
            self.on_anchored(tx.batch_id, event_id)
            self.on_note(f"batch {batch.id}: root already anchored by {earlier.transaction_hash}; using it")

    async def _resend(self, tx: ChainTx) -> None:
        """Broadcast a lost transaction again, or sign a new one if its nonce went to another."""
        chain = self.service.chain
        try:
            await asyncio.to_thread(chain.rebroadcast, tx.raw_tx)
            self.on_note(f"{tx.kind} {tx.tx_hash}: unknown to the node, broadcast again")
        except NonceTakenError:
            self.service.record_replaced(tx)  # an anchor's batch is closed again: the next pass sends it
            if tx.kind == "mint":
                await self._mint(tx.batch_id)
            self.on_note(f"{tx.kind} {tx.tx_hash}: its nonce was taken, sending it anew")

    async def _mint(self, batch_id: str) -> None:
        """Mint one token per record of an anchored batch that has none, MAX_MINT_BATCH per transaction."""
        store = self.service.store
        records = [r for r in store.batch_records(batch_id) if self.service.needs_nft(r.id)]
        owner = self.service.originator_address
        for start in range(0, len(records), MAX_MINT_BATCH):
            chunk = records[start:start + MAX_MINT_BATCH]
            await self._send("mint", batch_id, self.service.chain.send_mint, [owner] * len(chunk),
                             [bytes.fromhex(r.blake3) for r in chunk])

    async def _watch_reorgs(self, head: int) -> None:
        """A confirmed transaction whose block left the canonical chain goes back to submitted."""
        chain = self.service.chain
        recent = [tx for tx in self.service.store.txs(status="confirmed") if head - tx.block_number < REORG_WINDOW]
        canonical: dict[int, str | None] = {}
        for tx in recent:
            if tx.block_number not in canonical:
                canonical[tx.block_number] = await asyncio.to_thread(chain.block_hash, tx.block_number)
            if canonical[tx.block_number] != tx.block_hash:
                self.reorgs += 1
                self.service.record_removed(tx)
                self._queued = True
                self.on_note(f"reorg: block {tx.block_number} of {tx.kind} {tx.tx_hash} left the chain;"
                             " waiting for it to be mined again")


async def settle(service: Service, confirmations: int = 1) -> None:
    """Anchor every closed batch and wait until nothing is left waiting on the chain."""
    done = asyncio.Event()
    done.set()
    await ChainWorker(service, confirmations=confirmations).run(done)
