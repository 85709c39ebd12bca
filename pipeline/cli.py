"""The `provsim` command line."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from emitter import outbox, safejson
from emitter.endpoint import Endpoint
from emitter.receiver import run_listener

from . import royal_events, tectra_events
from .chain import ChainError
from .cli_load import load
from .cli_replay import replay
from .cli_trigger import trigger
from .connect import ChainSpec
from .digest import IngestError
from .nodes import NodeError
from .ingest import Caps
from .progress import RunProgress
from .runner import RunReport, deliver_outbox, run_pipeline, storage_error_line
from .service import Service
from .settings import DEFAULT_DATA_DIR, Settings
from .terminal import err, fail, out

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Provenance registration pipeline simulator with Tectra-compatible webhooks.")
endpoint_app = typer.Typer(no_args_is_help=True, help="Webhook endpoints kept in the database.")
signer_app = typer.Typer(no_args_is_help=True, help="The signing key.")
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(signer_app, name="signer")
app.command()(load)
app.command()(trigger)
app.command()(replay)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="PROVSIM_DATA_DIR",
                                       help="State directory (keys, database, downloads).")]
Db = Annotated[Optional[Path], typer.Option("--db", help="SQLite file (default: DATA_DIR/provsim.db).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TimeScale = Annotated[float, typer.Option("--time-scale", min=0.0,
                                          help="Multiply every retry wait (0.001 turns minutes into ms).")]
Endpoints = Annotated[Optional[list[str]], typer.Option("--endpoint", help="Deliver to this URL too (repeatable).")]
Secrets = Annotated[Optional[list[str]], typer.Option("--secret", help="Secret of the --endpoint at the same position.")]
ChainKind = Annotated[str, typer.Option("--chain", help="embedded (in process), anvil or ganache (a local node started for this command).")]
RpcUrl = Annotated[Optional[str], typer.Option("--rpc-url", help="Use the chain at this JSON-RPC URL instead.")]
PrivateKey = Annotated[Optional[str], typer.Option("--private-key", envvar="PROVSIM_PRIVATE_KEY", help="Key that pays for transactions on --rpc-url.")]
Confirmations = Annotated[int, typer.Option("--confirmations", min=1, help="Blocks that must hold an anchor before it counts.")]
MintNfts = Annotated[bool, typer.Option("--nft/--no-nft", help="Mint an ERC-721 per registration after its anchor.")]
BlockTime = Annotated[Optional[float], typer.Option("--block-time", min=0.1, help="Seconds between blocks of a started node (default: a block per transaction).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="A batch closes at this many leaves...")]
BatchInterval = Annotated[float, typer.Option("--batch-interval", min=0.001, help="...or this many seconds after its first leaf.")]
MaxImageMb = Annotated[float, typer.Option("--max-image-mb", min=0.0, help="Size cap for images (Tectra: 50).")]
MaxOtherMb = Annotated[float, typer.Option("--max-other-mb", min=0.0, help="Size cap for other files (Tectra: 500).")]
Dialects = Annotated[Optional[list[str]], typer.Option("--dialect", help="tectra or royal, for the --endpoint at the same position (one applies to all).")]
AllowPrivate = Annotated[bool, typer.Option("--allow-private", help="Let URL downloads reach loopback, private and link-local addresses.")]
Watermark = Annotated[bool, typer.Option("--watermark/--no-watermark", help="Write a watermarked copy of each registered image to marked/ in the data directory.")]
EventFilters = Annotated[Optional[list[str]], typer.Option("--events", help="Comma-separated event filter of the --endpoint at the same position.")]


DIALECT_EVENTS = {"tectra": tectra_events.TECTRA_EVENTS, "royal": royal_events.ROYAL_EVENTS}


def parse_dialect(value: str) -> str:
    """A webhook dialect name."""
    if value not in DIALECT_EVENTS:
        fail(f"unknown dialect {value!r}: choose {', '.join(DIALECT_EVENTS)}")
    return value


def parse_events(value: str | None, dialect: str = "tectra") -> tuple[str, ...] | None:
    """An event filter from 'a,b'; names the dialect does not send are refused."""
    if not value:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    known = DIALECT_EVENTS[dialect]
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"unknown {dialect} event {unknown[0]!r}: choose from {', '.join(known)}")
    return names


def command_endpoints(urls: list[str] | None, secrets: list[str] | None, events: list[str] | None,
                      dialects: list[str] | None = None) -> list[Endpoint]:
    """The endpoints given on one command line, paired by position (one --dialect applies to all)."""
    urls, secrets, events, dialects = urls or [], secrets or [], events or [], dialects or []
    if len(secrets) > len(urls) or len(events) > len(urls) or len(dialects) > max(1, len(urls)):
        fail("each --secret, --events and --dialect belongs to an --endpoint given before it")
    result = []
    for i, url in enumerate(urls):
        dialect = parse_dialect(dialects[i] if i < len(dialects) else (dialects[0] if len(dialects) == 1 else "tectra"))
        try:
            ep = Endpoint.new(url, secret=secrets[i] if i < len(secrets) else None,
                              events=parse_events(events[i] if i < len(events) else None, dialect),
                              dialect=dialect, persistent=False)
        except ValueError as exc:
            fail(str(exc))
        if i >= len(secrets):
            err.print(f"endpoint {url}: generated secret {ep.secret}", highlight=False)
        result.append(ep)
    return result


_opened: list[Path] = []  # the database each command opened, for main()'s one line if a write is refused


def open_service(data_dir: Path, db: Path | None, **overrides) -> Service:
    """Open the service on a data directory, with one-line errors for what can go wrong."""
    try:
        service = Service(Settings(data_dir=data_dir, db_path=db, **overrides))
    except (OSError, ValueError) as exc:
        fail(f"cannot open state in {data_dir}: {exc}")
    _opened.append(service.store.path)
    return service


def chain_spec(kind: str, rpc_url: str | None, private_key: str | None, block_time: float | None,
               confirmations: int) -> ChainSpec:
    """The chain asked for on the command line; a started node gets blocks of its own when K > 1."""
    if confirmations > 1 and block_time is None and kind in ("anvil", "ganache") and not rpc_url:
        block_time = 1.0  # a node that only mines on demand would never reach K confirmations
    try:
        return ChainSpec(kind=kind, rpc_url=rpc_url, private_key=private_key, block_time=block_time)
    except ValueError as exc:
        fail(str(exc))


def pipeline_options(batch_size: int, batch_interval: float, max_image_mb: float, max_other_mb: float,
                     time_scale: float, chain: str, rpc_url: str | None, private_key: str | None,
                     confirmations: int, block_time: float | None, nft: bool, allow_private: bool) -> dict:
    """Settings for a pipeline that registers and anchors (run and serve take the same options)."""
    return dict(
        batch_size=batch_size, batch_interval=batch_interval, time_scale=time_scale,
        caps=Caps(image=int(max_image_mb * 1024**2), other=int(max_other_mb * 1024**2)),
        chain=chain_spec(chain, rpc_url, private_key, block_time, confirmations), confirmations=confirmations,
        mint_nfts=nft, allow_private=allow_private,
    )


def open_chain(service: Service) -> None:
    """Connect to the chain now, so a node that fails to start or answer is one line, not a traceback."""
    try:
        _ = service.chain
    except (NodeError, ChainError, ValueError) as exc:
        service.close()
        fail(str(exc))
    for note in service.notes:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False)


def print_report(report: RunReport, as_json: bool) -> None:
    """The final table of a run (or its JSON)."""
    if as_json:
        out.print_json(json.dumps({
            "items": report.items,
            "registered": [{"record_id": r.id, "file": r.original_filename, "sha256": r.sha256}
                           for r in report.registered],
            "already_registered": [{"record_id": r.id, "file": r.original_filename} for r in report.known],
            "errors": report.errors,
            "watermarked": [{"record_id": record_id, "path": copy.path, "sha256": copy.sha256, "psnr": copy.psnr}
                            for record_id, copy in report.marked.items()],
            "batches": [{"batch_id": b.id, "merkle_root": b.merkle_root, "leaf_count": b.leaf_count,
                         "tx_hash": b.tx_hash, "block_number": b.block_number} for b in report.batches],
            "notes": report.notes,
            "deliveries": report.deliveries,
            "exit_code": report.exit_code,
        }))
        return
    for line in report.errors:
        err.print(f"[red]error:[/red] {line}", highlight=False)
    table = Table(title="provsim run", show_header=False)
    table.add_row("items", str(report.items))
    table.add_row("registered", str(len(report.registered)))
    table.add_row("already registered", str(len(report.known)))
    table.add_row("refused", str(len(report.errors)))
    if report.marked:
        folder = Path(next(iter(report.marked.values())).path).parent.parent
        table.add_row("watermarked", f"{len(report.marked)} copies in {folder}")
    table.add_row("batches anchored", str(len(report.batches)))
    for b in report.batches:
        table.add_row(f"  batch {b.id[:8]}", f"{b.leaf_count} leaves, tx {b.tx_hash} (block {b.block_number})")
    for status, count in sorted(report.deliveries.items()):
        table.add_row(f"deliveries {status}", str(count))
    out.print(table)


@app.command()
def run(
    sources: Annotated[list[str], typer.Argument(help="Files, directories (recursive) and http(s) URLs.")],
    endpoint: Endpoints = None,
    secret: Secrets = None,
    events: EventFilters = None,
    dialect: Dialects = None,
    batch_size: BatchSize = 256,
    batch_interval: BatchInterval = 5.0,
    origin_type: Annotated[Optional[str], typer.Option("--origin-type")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="JSON object attached to every record.")] = None,
    max_image_mb: MaxImageMb = 50,
    max_other_mb: MaxOtherMb = 500,
    time_scale: TimeScale = 1.0,
    chain: ChainKind = "embedded",
    rpc_url: RpcUrl = None,
    private_key: PrivateKey = None,
    confirmations: Confirmations = 1,
    block_time: BlockTime = None,
    nft: MintNfts = True,
    allow_private: AllowPrivate = False,
    watermark: Watermark = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Register media and deliver every event it causes; exit 0 when all was delivered."""
    ctx_obj = parse_context(context)
    eps = command_endpoints(endpoint, secret, events, dialect)
    service = open_service(data_dir, db, watermark=watermark, **pipeline_options(
        batch_size, batch_interval, max_image_mb, max_other_mb, time_scale, chain, rpc_url, private_key,
        confirmations, block_time, nft, allow_private))
    try:
        service.add_transient_endpoints(eps)
        open_chain(service)
        with RunProgress(err, enabled=not as_json) as progress:
            report = asyncio.run(run_pipeline(
                service, sources, origin_type=origin_type, context=ctx_obj, on_item=progress.item,
                on_total=progress.total, on_note=lambda line: err.print(f"[yellow]chain:[/yellow] {line}", highlight=False),
            ))
    finally:
        service.close()
    print_report(report, as_json)
    raise typer.Exit(report.exit_code)


def parse_context(value: str | None) -> dict | None:
    """A --context JSON object."""
    if value is None:
        return None
    if safejson.too_deep(value):
        fail(f"--context nests deeper than {safejson.MAX_DEPTH} levels")
    try:
        parsed = safejson.strict_loads(value)
    except json.JSONDecodeError as exc:
        fail(f"--context is not valid JSON: {exc.msg} at position {exc.pos}")
    except ValueError as exc:
        fail(f"--context: {exc}")
    if not isinstance(parsed, dict):
        fail("--context must be a JSON object")
    where = safejson.unpaired_surrogate_at(parsed, "--context")
    if where is not None:
        fail(f"{where}: holds text that is not Unicode (an unpaired surrogate)")
    return parsed


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="Files to verify.")],
    endpoint: Endpoints = None,
    secret: Secrets = None,
    events: EventFilters = None,
    dialect: Dialects = None,
    time_scale: TimeScale = 1.0,
    rpc_url: RpcUrl = None,
    private_key: PrivateKey = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Verify files against the registry and announce each result as content.verified."""
    from .verify import verify_file

    service = open_service(data_dir, db, time_scale=time_scale,
                           chain=chain_spec("embedded", rpc_url, private_key, None, 1))
    try:
        service.add_transient_endpoints(command_endpoints(endpoint, secret, events, dialect))
        open_chain(service)
        results, code = [], 0
        for f in files:
            try:
                data = verify_file(service, f)
            except IngestError as exc:
                err.print(f"[red]error:[/red] {exc}", highlight=False)
                code = 2
                continue
            service.emit_verified(data)
            results.append({"file": str(f), **data})
        summary = asyncio.run(deliver_outbox(service))
    finally:
        service.close()
    if as_json:
        out.print_json(json.dumps(results if len(files) > 1 else (results[0] if results else None)))
    else:
        table = Table(title="provsim verify")
        for col in ("file", "authentic", "confidence", "record", *("watermark", "sha256", "perceptual_hash", "blockchain")):
            table.add_column(col)
        for r in results:
            table.add_row(r["file"], str(r["authentic"]), f"{r['confidence']:.2f}", r["record_id"] or "-",
                          *(("pass " if c["passed"] else "fail ") + c["details"] for c in r["checks"].values()))
        out.print(table)
    if summary.get("failed"):
        code |= 1
    raise typer.Exit(code)


@app.command()
def proof(
    record_id: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Print a record's Merkle proof: root, leaf types and values, sibling hashes."""
    service = open_service(data_dir, db)
    if service.store.record(record_id) is None:
        fail(f"record {record_id}: not found in {service.store.path}")
    result = service.proof(record_id)
    service.close()
    if result is None:
        fail(f"record {record_id}: not in a batch yet (run the pipeline until its batch closes)")
    if as_json:
        out.print_json(json.dumps(result))
    else:
        out.print(f"root  {result['root']}\nleaf  {result['leaf']['types']} {result['leaf']['values']}")
        for p in result["proof"]:
            out.print(f"proof {p}")


@app.command()
def schema(
    event: Annotated[Optional[str], typer.Argument(help="An event name; without one, the names are listed.")] = None,
) -> None:
    """Print the JSON Schema of one event's webhook body (either dialect), or list the events."""
    from .event_schemas import DIALECT_OF, json_schema
    if event is None:
        for name, dialect in DIALECT_OF.items():
            out.print(f"{name}  ({dialect})", highlight=False)
        return
    try:
        document = json_schema(event)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(json.dumps(document, indent=2))


@app.command()
def record(
    record_id: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Show a record: hashes, signature, batch, anchor receipt, NFT, watermarked copy."""
    service = open_service(data_dir, db)
    try:
        shown = service.describe(record_id)
    finally:
        service.close()
    if shown is None:
        fail(f"record {record_id}: not found")
    if as_json:
        out.print_json(json.dumps(shown))
    else:
        for key, value in shown.items():
            out.print(f"{key:18} {json.dumps(value) if isinstance(value, (dict, list)) else value}", highlight=False)


@signer_app.command("show")
def signer_show(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Show the signing key: key id, algorithm, public key."""
    from .settings import DEFAULT_SIGNER
    from .signing import Signer

    info = Signer.load_or_create(data_dir, DEFAULT_SIGNER).info()
    if as_json:
        out.print_json(json.dumps(info))
    else:
        for k, v in info.items():
            out.print(f"{k:16} {v}", highlight=False)


@endpoint_app.command("add")
def endpoint_add(
    url: str,
    secret: Annotated[Optional[str], typer.Option("--secret")] = None,
    events: Annotated[Optional[str], typer.Option("--events", help="Comma-separated event filter.")] = None,
    dialect: Annotated[str, typer.Option("--dialect", help="tectra (X-Tectra-* HMAC) or royal (Standard Webhooks / Svix).")] = "tectra",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Register an endpoint; a generated secret is printed this once."""
    dialect = parse_dialect(dialect)
    try:
        ep = Endpoint.new(url, secret=secret, events=parse_events(events, dialect), dialect=dialect)
    except ValueError as exc:
        fail(str(exc))
    service = open_service(data_dir, db)
    with service.store.transaction() as conn:
        outbox.save_endpoint(conn, ep)
    service.close()
    shown = {"id": ep.id, "url": ep.url, "events": list(ep.events or DIALECT_EVENTS[dialect]),
             "dialect": ep.dialect, "secret": ep.secret, "created_at": ep.created_at}
    if as_json:
        out.print_json(json.dumps(shown))
    else:
        out.print(f"endpoint {ep.id} -> {ep.url}\nsecret   {ep.secret}  (shown once: save it)", highlight=False)


@endpoint_app.command("list")
def endpoint_list(data_dir: DataDir = DEFAULT_DATA_DIR, db: Db = None, as_json: AsJson = False) -> None:
    """List the registered endpoints (secrets are not shown)."""
    service = open_service(data_dir, db)
    eps = outbox.list_endpoints(service.store.conn, persistent_only=True)
    service.close()
    rows = [{"id": e.id, "url": e.url, "dialect": e.dialect, "events": list(e.events or DIALECT_EVENTS[e.dialect]),
             "created_at": e.created_at} for e in eps]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "url", "dialect", "events", "created_at", title="endpoints")
    for r in rows:
        table.add_row(r["id"], r["url"], r["dialect"], ",".join(r["events"]), r["created_at"])
    out.print(table)


@endpoint_app.command("remove")
def endpoint_remove(endpoint_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, db: Db = None) -> None:
    """Remove an endpoint; its deliveries still waiting are marked failed (retry sends them)."""
    service = open_service(data_dir, db)
    with service.store.transaction() as conn:
        removed = outbox.remove_endpoint(conn, endpoint_id)
    service.close()
    if not removed:
        fail(f"endpoint {endpoint_id}: not found")
    out.print(f"removed {endpoint_id}")


@app.command()
def deliveries(
    status: Annotated[Optional[str], typer.Option("--status", help="pending, delivering, delivered or failed.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """List deliveries with their attempt log."""
    if status not in (None, "pending", "delivering", "delivered", "failed"):
        fail(f"unknown status {status!r}: choose pending, delivering, delivered or failed")
    service = open_service(data_dir, db)
    rows = outbox.list_deliveries(service.store.conn, status=status)
    service.close()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("delivery", "event", "url", "status", "attempts", "last", title="deliveries")
    for r in rows:
        last = r["attempts"][-1] if r["attempts"] else None
        last_s = "-" if last is None else (str(last["status_code"]) if last["status_code"] else last["error"])
        table.add_row(r["id"], r["event_type"], r["url"], r["status"], str(len(r["attempts"])), last_s)
    out.print(table)


@app.command()
def retry(
    delivery_id: str,
    time_scale: TimeScale = 1.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
) -> None:
    """Send a delivery again now (same delivery id), and wait for the outcome."""
    service = open_service(data_dir, db, time_scale=time_scale)
    with service.store.transaction() as conn:
        found = outbox.retry_delivery(conn, delivery_id)
    if not found:
        service.close()
        fail(f"delivery {delivery_id}: not found")
    asyncio.run(deliver_outbox(service))
    row = outbox.list_deliveries(service.store.conn, delivery_ids=[delivery_id])[0]
    service.close()
    out.print(f"{delivery_id}: {row['status']}", highlight=False)
    raise typer.Exit(0 if row["status"] == "delivered" else 1)


@app.command()
def listen(
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8787,
    secret: Annotated[str, typer.Option("--secret", help="The endpoint's whsec_ secret.")] = ...,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    dump: Annotated[Optional[Path], typer.Option("--dump", help="Append each delivery as a JSON line.")] = None,
    dialect: Annotated[str, typer.Option("--dialect", help="tectra or royal (Standard Webhooks, 5-minute tolerance).")] = "tectra",
) -> None:
    """Reference receiver: verify every delivery, print one line per event, 401 on a bad signature."""
    run_listener(port, secret, dump=dump, host=host, printer=lambda line: out.print(line, highlight=False),
                 dialect=parse_dialect(dialect))


@app.command()
def demo(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Keep the demo's state here (default: a temporary directory).")] = None,
    media: Annotated[Optional[Path], typer.Option("--media", help="Media directory (default: sample_media/).")] = None,
    chain: ChainKind = "embedded",
    rpc_url: RpcUrl = None,
    private_key: PrivateKey = None,
    confirmations: Confirmations = 1,
    block_time: BlockTime = None,
    watermark: Watermark = True,
) -> None:
    """Run the pipeline over the sample media, delivering to a built-in receiver (embedded chain by default)."""
    from .demo import run_demo

    spec = chain_spec(chain, rpc_url, private_key, block_time, confirmations)
    raise typer.Exit(run_demo(out, err, data_dir=data_dir, media=media, chain=spec, confirmations=confirmations,
                              watermark=watermark))


apikey_app = typer.Typer(no_args_is_help=True, help="API keys of `provsim serve`.")
app.add_typer(apikey_app, name="apikey")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    batch_size: BatchSize = 256,
    batch_interval: BatchInterval = 5.0,
    max_image_mb: MaxImageMb = 50,
    max_other_mb: MaxOtherMb = 500,
    time_scale: TimeScale = 1.0,
    chain: ChainKind = "embedded",
    rpc_url: RpcUrl = None,
    private_key: PrivateKey = None,
    confirmations: Confirmations = 1,
    block_time: BlockTime = None,
    nft: MintNfts = True,
    allow_private: AllowPrivate = False,
    watermark: Watermark = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
) -> None:
    """Serve the HTTP API (Tectra's and Royal's shapes) until Ctrl-C; keys come from `provsim apikey create`."""
    from .api import run_server

    settings = Settings(data_dir=data_dir, db_path=db, watermark=watermark, **pipeline_options(
        batch_size, batch_interval, max_image_mb, max_other_mb, time_scale, chain, rpc_url, private_key,
        confirmations, block_time, nft, allow_private))
    run_server(settings, host=host, port=port)


@apikey_app.command("create")
def apikey_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Who the key belongs to: letters, digits, '.', '_', '-'.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: Db = None,
) -> None:
    """Make an API key for a tenant and print it this once (only its SHA-256 is kept)."""
    from .api_auth import create_api_key

    service = open_service(data_dir, db)
    try:
        key = create_api_key(service, tenant)
    except ValueError as exc:
        fail(str(exc))
    finally:
        service.close()
    out.print(key, highlight=False)


chain_app = typer.Typer(no_args_is_help=True, help="Local chains for demos and other tools.")
app.add_typer(chain_app, name="chain")


@chain_app.command("up")
def chain_up(
    kind: Annotated[str, typer.Option("--kind", help="anvil or ganache.")] = "anvil",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")] = 8545,
    block_time: BlockTime = None,
    state: Annotated[Optional[Path], typer.Option("--state", help="Keep the chain's state here across restarts.")] = None,
) -> None:
    """Start a local node on 127.0.0.1 and keep it running until Ctrl-C; use it with --rpc-url."""
    from .connect import LOCAL_CHAIN_IDS
    from .nodes import NODE_KINDS, start_node

    if kind not in NODE_KINDS:
        fail(f"unknown node kind {kind!r}: choose {', '.join(NODE_KINDS)}")
    try:
        node = start_node(kind, port=port or None, chain_id=LOCAL_CHAIN_IDS[kind], block_time=block_time,
                          state_path=state)
    except NodeError as exc:
        fail(str(exc))
    out.print(f"{kind} running at {node.url} (chain id {LOCAL_CHAIN_IDS[kind]})\n"
              f"funded key: {node.funded_key}\n"
              f"use: provsim run ... --rpc-url {node.url} --private-key {node.funded_key}\n"
              "Ctrl-C stops it.", highlight=False)
    try:
        node.process.wait()
        fail(f"{kind} exited with status {node.process.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


def main() -> None:
    """Console-script entry point: a write the database refuses (disk full, read-only) is one line and exit 3."""
    try:
        app()
    except sqlite3.Error as exc:
        where = _opened[-1] if _opened else Path("(unknown)")
        err.print(f"[red]error:[/red] {storage_error_line(where, exc, 'the command')}", highlight=False)
        sys.exit(3)


if __name__ == "__main__":
    sys.exit(main())
