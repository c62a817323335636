"""The ``fsredis`` command: ``serve``, ``demo``, ``load-functions``, ``info``, ``apply``, ``diff``,
``registry``.

Given no Redis URL (``--redis-url`` or ``FSREDIS_REDIS_URL``), ``serve`` and ``demo`` start an
embedded Valkey and say so on their first line; the other commands need a server to talk to.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from fsredis import (
    FeatureStore,
    FeatureStoreConfig,
    FeatureStoreError,
    MissingDependency,
    NotFound,
    Registry,
    ValidationError,
    __version__,
)
from fsredis import export
from fsredis.config import redacted_url
from fsredis.embedded import EmbeddedServer
from fsredis.keys import registry_keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fsredis", description="A Redis-native feature store.")
    parser.add_argument("--version", action="version", version=f"fsredis {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--redis-url", default=os.environ.get("FSREDIS_REDIS_URL"),
                         help="redis://, rediss:// or redis+sentinel:// URL (default: $FSREDIS_REDIS_URL)")
        sub.add_argument("--namespace", default=None, help="key prefix (default: $FSREDIS_NAMESPACE or 'fs')")
        return sub

    serve = add("serve", "Run the HTTP sidecar (on an embedded Valkey unless --redis-url is given).")
    serve.add_argument("--host", help="address to listen on (default: $FSREDIS_SERVER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $FSREDIS_SERVER_PORT or 8080)")
    serve.add_argument("--token-file", help="file holding the bearer token for writes (or $FSREDIS_SERVER_TOKEN)")
    serve.add_argument("--data-dir", help="keep the embedded server's data (AOF) in this directory")
    demo = add("demo", "Run the product-features walkthrough (on an embedded Valkey unless --redis-url is given).")
    demo.add_argument("--data-dir", help="keep the embedded server's data (AOF) in this directory")
    add("load-functions", "Install or upgrade the fsredis Lua library (Redis Functions) on a server.")
    info = add("info", "Show the loaded library, entity counts and sampled memory per entity.")
    info.add_argument("--sample", type=int, default=50, help="entities to sample for memory (default 50)")
    apply = add("apply", "Make the namespace's schema registry equal to a features.yaml file.")
    apply.add_argument("file", help="the registry file (YAML)")
    apply.add_argument("--force", action="store_true",
                       help="apply changes that stored values break, and dtype changes of features with data")
    apply.add_argument("--sample", type=int, default=None,
                       help="check the stored values of at most this many entities per changed feature")
    apply.add_argument("--author", help="recorded with the change (default: user@host)")
    diff = add("diff", "Show what `fsredis apply FILE` would change, without changing anything.")
    diff.add_argument("file", help="the registry file (YAML)")
    diff.add_argument("--exit-code", action="store_true", help="exit with 2 when there are changes")
    registry = add("registry", "Print the namespace's registry as YAML (a features.yaml to start from).")
    registry.add_argument("--history", type=int, default=0, metavar="N", help="also print the last N changes")
    ingest = add("ingest", "Load a Parquet or CSV file (or a directory of them) of feature rows.")
    ingest.add_argument("file", help="a .parquet, .csv (or .csv.gz) file, or a directory of Parquet files")
    ingest.add_argument("--entity-column", required=True, help="the column of entity ids")
    ingest.add_argument("--type", dest="entity_type", help="entity type prefixed to each id (product -> product:<id>)")
    ingest.add_argument("--event-time-column", help="the column of event times (timestamps or epoch seconds)")
    ingest.add_argument("--features", help="comma-separated columns to load (default: every other column)")
    ingest.add_argument("--source", help="lineage source and name of the load in write ids (default: the file path)")
    ingest.add_argument("--reject-file", help="write refused rows here (NDJSON: row, entity_id, error)")
    ingest.add_argument("--stop-on-error", action="store_true", help="stop at the first refused row (exit 1)")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar (also when stderr is not a terminal)")
    training = add("training-set", "Join a file of labelled rows with the features as they were at each row's time.")
    training.add_argument("labels", help="a .parquet or .csv file of rows: an entity id and a timestamp each")
    training.add_argument("--features", required=True, help="comma-separated feature names")
    training.add_argument("--out", required=True, help="where to write the training set (.parquet or .csv)")
    training.add_argument("--entity-column", default="entity_id", help="the column of entity ids (default entity_id)")
    training.add_argument("--timestamp-column", default="event_timestamp",
                          help="the column of times: timestamps with a time zone, or epoch seconds (default event_timestamp)")
    training.add_argument("--type", dest="entity_type", help="entity type prefixed to each id (product -> product:<id>)")
    training.add_argument("--mask", action="store_true", help="add <feature>__beyond_retention columns")
    training.add_argument("--no-progress", action="store_true", help="no progress bar (also when stderr is not a terminal)")
    training.add_argument("--source", help="join over this offline history directory (fsredis drain) with DuckDB, not Redis")
    training.add_argument("--fill-from", help="answer the cells beyond online retention from this offline history directory")
    drain = add("drain", "Move the change log (change_log=True) to the offline history: Parquet files per feature.")
    drain.add_argument("--out", required=True, help="the offline history directory (created when missing)")
    drain.add_argument("--once", action="store_true", help="drain what the log holds now, then exit")
    drain.add_argument("--interval", type=float, default=5.0, help="seconds between passes when the log is short (default 5)")
    drain.add_argument("--settle", type=float, default=2.0,
                       help="leave entries younger than this many seconds (server time) for the next pass, so an "
                            "AOF with appendfsync everysec has them on disk first (default 2; 0 with appendfsync always)")
    drain.add_argument("--max-entries", type=int, default=100_000, help="log entries per batch (default 100,000)")
    snapshot = add("export-history", "Write the history Redis keeps now to Parquet files per feature (a snapshot).")
    snapshot.add_argument("--out", required=True, help="a new or empty directory")
    snapshot.add_argument("--type", dest="entity_type", help="only entities of this type")
    snapshot.add_argument("--features", help="comma-separated feature names (default: every feature)")
    snapshot.add_argument("--no-progress", action="store_true", help="no progress bar (also when stderr is not a terminal)")
    migrate = add("migrate", "Convert the namespace's entities from storage format 1 (fsredis 0.1) to format 2.")
    migrate.add_argument("--dry-run", action="store_true", help="only count the entities still in format 1")

    args = parser.parse_args(argv)
    run = {
        "serve": serve_command, "demo": demo_command, "load-functions": load_functions_command, "info": info_command,
        "apply": apply_command, "diff": diff_command, "registry": registry_command, "migrate": migrate_command,
        "ingest": ingest_command, "training-set": training_set_command, "drain": drain_command,
        "export-history": export_history_command,
    }[args.command]
    try:
        return run(args)
    except (FeatureStoreError, OSError) as exc:
        print(f"fsredis {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _config(args: argparse.Namespace, **overrides: Any) -> FeatureStoreConfig:
    if args.namespace:
        overrides["namespace"] = args.namespace
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    return FeatureStoreConfig.from_env(**overrides)


def _require_url(args: argparse.Namespace) -> None:
    if not args.redis_url:
        raise SystemExit(f"fsredis {args.command}: give --redis-url (or set FSREDIS_REDIS_URL)")


@contextmanager
def _demo_store(args: argparse.Namespace) -> Iterator[FeatureStore]:
    if args.redis_url:
        store = FeatureStore(_config(args))
        print(f"fsredis demo: using the server at {redacted_url(args.redis_url)}", flush=True)
    else:
        server = EmbeddedServer(data_dir=args.data_dir).start()
        print(
            f"fsredis demo: started an embedded {server.version().split(' v=')[0].split()[0]} "
            f"at {server.url} (data in {server.data_dir}); it stops when the demo ends",
            flush=True,
        )
        store = FeatureStore(_config(args, redis_url=server.url), server=server)
    with store:
        yield store


DEMO_DEFINITIONS: list[dict[str, Any]] = [
    {"name": "price", "dtype": "float", "min": 0, "description": "List price in EUR", "owner": "pricing"},
    {"name": "category", "dtype": "string", "allowed": ["books", "toys", "garden", "electronics", "sports"]},
    {"name": "rating", "dtype": "float", "min": 1, "max": 5},
    {"name": "in_stock", "dtype": "bool"},
    {"name": "text_embedding", "dtype": "embedding", "dim": 64},
]


def serve_command(args: argparse.Namespace) -> int:
    try:
        from fsredis_server.command import serve_command as serve
    except ImportError as exc:
        raise MissingDependency(f"the sidecar needs the server extra: pip install 'fsredis[server]' ({exc})") from None
    return serve(args)


def _section(title: str) -> None:
    print(f"\n== {title}")


def demo_command(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(7)
    with _demo_store(args) as fs:
        print(f"library {fs.load_library(only_if_changed=True)} loaded ({fs.config.transport})")

        _section("write product features with an embedding (one atomic, versioned write)")
        product = {
            "price": 999.99,
            "category": "electronics",
            "brand": "Acme",
            "in_stock": True,
            "rating": 4.6,
            "text_embedding": rng.random(64),
        }
        started = time.perf_counter()
        fs.write_features("product:123", product, source="catalog-import")
        print(f"wrote {len(product)} features of product:123 in {(time.perf_counter() - started) * 1000:.2f} ms")

        started = time.perf_counter()
        got = fs.get_features("product:123", ["price", "category", "in_stock", "text_embedding"])
        elapsed = (time.perf_counter() - started) * 1000
        embedding = got.pop("text_embedding")
        print(f"read back in {elapsed:.2f} ms: {got}, text_embedding {embedding.dtype}{embedding.shape}")

        _section("batch: 100 products x 5 features")
        fs.write_features_batch(
            {f"product:{i}": {"price": round(float(rng.uniform(5, 500)), 2), "category": ["books", "toys", "garden"][i % 3],
                              "rating": round(float(rng.uniform(1, 5)), 1), "in_stock": bool(i % 4),
                              "text_embedding": rng.random(64)} for i in range(100)},
            source="catalog-import",
        )
        ids = [f"product:{i}" for i in range(100)]
        started = time.perf_counter()
        batch = fs.get_features_batch(ids, ["price", "category", "rating", "in_stock", "text_embedding"])
        elapsed = (time.perf_counter() - started) * 1000
        print(f"read {sum(len(v) for v in batch.values())} features of {len(batch)} products in {elapsed:.2f} ms")

        _section("lineage and rollback")
        for price in (949.99, 899.99):
            fs.write_features("product:123", {"price": price}, source="pricing-service",
                              lineage={"producer": "repricer", "inputs": ["competitor_prices"]})
        lineage = fs.get_feature_lineage("product:123", "price")
        for entry in lineage["versions"]:
            print(f"  v{entry['version']}: {entry['value']:>8}  source={entry['source']}  "
                  f"at {time.strftime('%H:%M:%S', time.gmtime(entry['timestamp']))}Z")
        new_version = fs.rollback_feature("product:123", "price", 1)
        print(f"rolled price back to v1 as v{new_version}: {fs.get_features('product:123', ['price'])}")
        try:
            fs.rollback_feature("product:123", "price", 42)
        except NotFound as exc:
            print(f"rollback to v42 refused: {exc}")

        _section("TTL per feature")
        fs.write_features("session:9", {"last_click": "shoes", "lifetime_value": 120.0},
                          ttl={"last_click": 0.5, "lifetime_value": 3600})
        print(f"now:        {fs.get_features('session:9')}")
        time.sleep(0.6)
        print(f"after 0.6s: {fs.get_features('session:9')} (last_click expired, its sibling lives)")

        _section("schema registry: definitions checked inside Redis, for every writer")
        fs.register_features("product", DEMO_DEFINITIONS, author="demo")
        registry = fs.get_registry()
        print(f"{len(registry.definitions('product'))} product features registered; registry version {registry.version}")
        for bad in ({"price": -5.0, "rating": 4.0}, {"category": "cars"}, {"rating": float("nan")}):
            try:
                fs.write_features("product:123", bad)
            except FeatureStoreError as exc:
                print(f"refused whole: {type(exc).__name__}: {exc}")
        print(f"price still {fs.get_features('product:123', ['price'])['price']}")

        _section("computed features: transforms on raw data, one atomic write with lineage")
        raw = {"name": "Trail running shoe", "description": "A light trail running shoe with a grippy sole",
               "category": " Sports ", "price": 89.5}
        fs.compute_and_store_features("product:456", raw)
        computed = fs.get_features("product:456")
        vector = computed.pop("text_embedding")
        print(f"from {sorted(raw)}: {computed}, text_embedding {vector.dtype}{vector.shape}")
        entry = fs.get_feature_lineage("product:456", "price_log")["versions"][0]
        print(f"price_log v{entry['version']} by transform {entry['transform']}@{entry['transform_version']} "
              f"from {entry['inputs']}")

        _section("export to a DataFrame")
        try:
            frame = fs.export_features(ids[:5], ["price", "category", "rating", "in_stock"], format="pandas")
            print(frame.to_string())
        except FeatureStoreError as exc:
            print(f"skipped: {exc}")

        _section("training data: labels joined point in time")
        day = 86_400.0
        start = float(int(time.time() - 30 * day))
        for week, (price, clicks) in enumerate([(20.0, 3), (18.0, 7), (25.0, 2)]):  # backfilled, in event time
            fs.write_features("product:777", {"price": price, "clicks_7d": clicks}, event_time=start + week * 7 * day,
                              source="backfill")
        print(f"as of day 10: {dict(fs.get_features('product:777', ['price', 'clicks_7d'], as_of=start + 10 * day))}")
        try:
            pd = export._require("pandas")
            labels = pd.DataFrame({
                "entity_id": ["product:777"] * 3 + ["product:123"],
                "event_timestamp": pd.to_datetime([start + 1 * day, start + 8 * day, start + 20 * day, int(time.time())],
                                                  unit="s", utc=True),
                "purchased": [0, 1, 0, 1],
            })
            print(fs.get_historical_features(labels, ["price", "clicks_7d"]).to_string())
            print("each label row sees the values of its own time, not today's")
            with tempfile.TemporaryDirectory(prefix="fsredis-demo-") as offline:
                report = fs.export_history(offline + "/history", entity_type="product", features=["price", "clicks_7d"])
                same = fs.get_historical_features(labels, ["price", "clicks_7d"], source=offline + "/history")
                print(f"export_history: {report.versions} versions of {report.entities} products as Parquet; "
                      f"the same join there with DuckDB gives the same frame: {same.equals(fs.get_historical_features(labels, ['price', 'clicks_7d']))}")
        except FeatureStoreError as exc:
            print(f"skipped: {exc}")

        _section("health and metrics")
        health = fs.health_check()
        print({k: health[k] for k in ("status", "redis_connected", "server", "library_version", "ping_ms")})
        metrics = fs.get_performance_metrics()
        print(f"cache_hit_rate={metrics['cache_hit_rate']:.2%}  "
              f"average_computation_time={metrics['average_computation_time']:.3f} ms")
        for name, op in metrics["operations"].items():
            print(f"  {name:<22} calls={op['calls']:<4} p50={op['p50_ms']:.3f} ms  p99={op['p99_ms']:.3f} ms")
        print("\nkey format for redis-cli: FCALL_RO fs_get 1 '<ns>:<type>:{<id>}:e' <feature>...")
    return 0


def load_functions_command(args: argparse.Namespace) -> int:
    _require_url(args)
    with FeatureStore(_config(args)) as fs:
        version = fs.load_library()
        print(f"loaded fsredis library {version} on {redacted_url(args.redis_url)}")
    return 0


def info_command(args: argparse.Namespace) -> int:
    _require_url(args)
    with FeatureStore(_config(args)) as fs:
        health = fs.health_check(install=False)  # (only looks: a missing library is said, not installed)
        if not health["redis_connected"]:
            print(f"fsredis info: error: {redacted_url(args.redis_url)}: {health.get('error')}", file=sys.stderr)
            return 1
        client = fs.redis
        namespace = fs.config.namespace
        server = health["server"]
        print(f"server:   {server['name']} {server['version']}  ping {health['ping_ms']:.2f} ms")
        stored = Registry.from_hash(client.hgetall(registry_keys(namespace).definitions), tolerant=True).version
        if health["library_version"] is None:
            print(f"library:  not loaded (this package has {health['library_expected']}): run `fsredis load-functions`")
            print(f"registry: version {stored} stored, not enforced until the library is loaded")
        else:
            print(f"library:  loaded {health['library_version']}, this package {health['library_expected']}")
            print(f"registry: version {stored} stored, {health.get('registry_version')} enforced")
        entities, sampled = 0, list[bytes]()
        for key in client.scan_iter(match=f"{namespace}:*{{*}}:e", count=1000):
            entities += 1
            if len(sampled) < args.sample:
                sampled.append(key)
        print(f"entities: {entities} in namespace {namespace!r}")
        from fsredis.drain import waiting

        logs = waiting(client, namespace)
        if logs or fs.config.change_log:
            print(f"log:      {sum(logs.values())} change-log entries waiting for fsredis drain in {len(logs)} streams")
        old = sum(1 for _ in client.scan_iter(match=f"{namespace}:*{{*}}:v", count=1000))
        if old:
            print(f"format 1: {old} entities still in storage format 1 (fsredis 0.1): run `fsredis migrate`")
        if sampled:
            sizes = [client.memory_usage(key) or 0 for key in sampled]
            print(f"memory:   {np.mean(sizes):.0f} bytes per entity on average over {len(sizes)} sampled "
                  f"(history included)")
    return 0


def ingest_command(args: argparse.Namespace) -> int:
    _require_url(args)
    features = [name.strip() for name in args.features.split(",") if name.strip()] if args.features else None
    with FeatureStore(_config(args)) as fs, _ingest_progress(not args.no_progress and sys.stderr.isatty()) as progress:
        report = fs.ingest(
            args.file, entity_column=args.entity_column, entity_type=args.entity_type,
            event_time_column=args.event_time_column, features=features, source=args.source,
            on_error="raise" if args.stop_on_error else "collect", reject_file=args.reject_file, progress=progress,
        )
    print(f"{report.rows} rows in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s, "
          f"{report.features_per_second:,.0f} features/s): {report.written} written ({report.features} values, "
          f"{report.history_only} older than the current value: history only), {report.already_applied} "
          f"already applied, {report.empty} empty, {report.rejected} refused")
    for row, entity, why in report.examples:
        print(f"  refused row {row} ({entity}): {why}", file=sys.stderr)
    if report.reject_file and report.rejected:
        print(f"  all refused rows: {report.reject_file}", file=sys.stderr)
    return 0


def training_set_command(args: argparse.Namespace) -> int:
    pd = export._require("pandas")
    csv = (".csv", ".csv.gz")
    if not args.source:
        _require_url(args)
    if not args.labels.endswith(csv) or not args.out.endswith(csv):
        export._require("pyarrow")  # Parquet: a clean MissingDependency rather than pandas' ImportError
    reader = pd.read_csv if args.labels.endswith(csv) else pd.read_parquet
    labels = reader(args.labels)
    ids, when = args.entity_column, args.timestamp_column
    if when in labels and pd.api.types.is_string_dtype(labels[when].dtype):  # text (CSV): ISO 8601; without an offset it is refused
        try:
            labels[when] = pd.to_datetime(labels[when], format="ISO8601")
        except ValueError:  # several offsets make no one time zone: as UTC, if every text has its offset
            if not labels[when].str.contains(r"(?:[zZ]|[+-]\d\d:?\d\d)$").all():
                raise ValidationError(when, "as_of", "timestamps must be timezone-aware: a time lacks its offset") from None
            labels[when] = pd.to_datetime(labels[when], format="ISO8601", utc=True)
    frame = labels if not args.entity_type or ids not in labels else labels.assign(
        **{ids: args.entity_type + ":" + labels[ids].astype(str)})
    features = [name.strip() for name in args.features.split(",") if name.strip()]
    started = time.perf_counter()
    with _rows_progress(not args.no_progress and sys.stderr.isatty()) as progress:
        options = dict(timestamp_column=when, entity_column=ids, mask=args.mask)
        if args.source:
            from fsredis import offline

            out = offline.get_historical_features(args.source, frame, features, **options)
        else:
            with FeatureStore(_config(args)) as fs:
                out = fs.get_historical_features(frame, features, progress=progress, fill_from=args.fill_from, **options)
    if frame is not labels:
        out[ids] = labels[ids]
    if args.out.endswith(csv):
        out.to_csv(args.out, index=False)
    else:
        out.to_parquet(args.out, index=False)
    seconds = time.perf_counter() - started
    beyond = {name: count for name, count in out.attrs["beyond_retention"].items() if count}
    print(f"{len(out):,} rows x {len(features)} features in {seconds:.1f} s ({len(out) / max(seconds, 1e-9):,.0f} rows/s) "
          f"-> {args.out}; beyond retention: {beyond or 'none'}")
    return 0


def export_history_command(args: argparse.Namespace) -> int:
    _require_url(args)
    export._require("pyarrow")
    features = [name.strip() for name in args.features.split(",") if name.strip()] if args.features else None
    with FeatureStore(_config(args)) as fs, _rows_progress(not args.no_progress and sys.stderr.isatty(), "entities") as progress:
        report = fs.export_history(args.out, entity_type=args.entity_type, features=features, progress=progress)
    print(f"{report.entities:,} entities, {report.versions:,} rows in {report.files} files in {report.seconds:.1f} s -> {args.out}")
    return 0


def drain_command(args: argparse.Namespace) -> int:
    import signal
    import threading

    from fsredis.drain import Drainer

    _require_url(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def said(report: Any) -> None:
        print(f"batch {report.batch}: {report.entries:,} entries, {report.rows:,} rows, {report.files} files "
              f"from {report.streams} streams in {report.seconds:.2f} s", flush=True)

    with FeatureStore(_config(args)) as fs, Drainer(fs, args.out, max_entries=args.max_entries, settle=args.settle) as drainer:
        print(f"fsredis drain: {redacted_url(fs.config.redis_url or '')} namespace {fs.config.namespace} -> {args.out}", flush=True)
        if args.once:
            while True:  # until a pass leaves nothing behind
                report = drainer.drain_once()
                if report.entries:
                    said(report)
                if not report.more:
                    break
        else:
            drainer.run(args.interval, stop=stop.is_set, on_batch=said,
                        on_error=lambda error: print(f"fsredis drain: {error}; trying again", file=sys.stderr, flush=True))
    return 0


@contextmanager
def _rows_progress(bar: bool, unit: str = "rows") -> Iterator[Any]:
    """A progress callback(done, total) for a training set or a snapshot: a rich progress bar on
    a terminal, else a line on stderr per chunk."""
    if not bar:
        yield lambda done, total: print(f"{done:,} of {total:,} {unit}", file=sys.stderr, flush=True)
        return
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:  # pragma: no cover - the [ingest] extra brings rich
        yield None
        return
    with Progress(TextColumn(unit), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as view:
        task = view.add_task(unit, total=None)
        yield lambda done, total: view.update(task, completed=done, total=total)


@contextmanager
def _ingest_progress(bar: bool) -> Iterator[Any]:
    """A progress callback for ingest: a rich progress bar (rows/s, ETA) on a terminal, else a
    line on stderr every 100,000 rows."""
    if not bar:
        printed = [0]

        def line(p: Any) -> None:
            if p.rows - printed[0] >= 100_000:
                printed[0] = p.rows
                print(f"{p.rows:,} rows ({p.rows_per_second:,.0f}/s), {p.rejected} refused", file=sys.stderr, flush=True)

        yield line
        return
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:  # pragma: no cover - the [ingest] extra brings rich
        yield None
        return
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
               TextColumn("{task.fields[rejected]} refused"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar_view:
        task = bar_view.add_task("ingest", total=None, rate="0", rejected=0)

        def update(p: Any) -> None:
            bar_view.update(task, completed=p.rows, total=p.total, rate=f"{p.rows_per_second:,.0f}", rejected=p.rejected)

        yield update


def migrate_command(args: argparse.Namespace) -> int:
    _require_url(args)
    with FeatureStore(_config(args)) as fs:
        def progress(done: int, total: int) -> None:
            print(f"migrated {done}/{total} entities", file=sys.stderr, flush=True)

        report = fs.migrate(dry_run=args.dry_run, progress=progress)
        namespace = fs.config.namespace
    if args.dry_run:
        print(f"{report.entities} entities of namespace {namespace!r} are in storage format 1")
        return 0
    print(f"migrated {report.migrated} of {report.entities} entities ({report.features} features) "
          f"of namespace {namespace!r} to storage format 2")
    for key in report.conflicts:
        print(f"left alone (it has format-2 data too): {key}", file=sys.stderr)
    for key, why in report.errors.items():
        print(f"left alone (unreadable format-1 data): {key}: {why}", file=sys.stderr)
    return 1 if report.conflicts or report.errors else 0


def _report_progress(feature: str, checked: int, total: int) -> None:
    """Print, on stderr, how far the check of stored values against a change has come."""
    if checked == total or checked % 10_000 < 500:
        print(f"checking stored values of {feature}: {checked}/{total} entities", file=sys.stderr, flush=True)


def apply_command(args: argparse.Namespace) -> int:
    _require_url(args)
    desired = Registry.load(args.file)
    with FeatureStore(_config(args)) as fs:
        changes = fs.apply_registry(desired, force=args.force, author=args.author, sample=args.sample,
                                    progress=_report_progress)
        if not changes:
            print(f"registry of namespace {fs.config.namespace!r} already matches {args.file}")
            return 0
        for change in changes:
            print(change)
        version = fs.get_registry().version
        print(f"applied {len(changes)} change(s): namespace {fs.config.namespace!r} is at registry version {version}")
    return 0


def diff_command(args: argparse.Namespace) -> int:
    _require_url(args)
    desired = Registry.load(args.file)
    with FeatureStore(_config(args)) as fs:
        changes = fs.diff_registry(desired)
    for change in changes:
        print(change)
    if not changes:
        print(f"no changes: the registry matches {args.file}")
        return 0
    breaking = sum(1 for c in changes if c.breaking)
    print(f"{len(changes)} change(s), {breaking} breaking (refused by apply if the feature has data, unless --force)")
    return 2 if args.exit_code else 0


def registry_command(args: argparse.Namespace) -> int:
    _require_url(args)
    with FeatureStore(_config(args)) as fs:
        registry = fs.get_registry()
        print(f"# namespace {fs.config.namespace!r}, registry version {registry.version}")
        print(registry.to_yaml(), end="")
        for entry in fs.registry_history(args.history) if args.history else []:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["at"]))
            print(f"# v{entry['version']} at {at}Z by {entry['by']}: {len(entry['changes'])} change(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
