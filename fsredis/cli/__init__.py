"""The ``fsredis`` command: one sub-command per verb, each in the module of its kind
(:mod:`~fsredis.cli.demo`, :mod:`~fsredis.cli.admin`, :mod:`~fsredis.cli.data`).

Given no Redis URL (``--redis-url`` or ``FSREDIS_REDIS_URL``), ``serve`` and ``demo`` start an
embedded Valkey and say so on their first line; the other commands need a server to talk to.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fsredis import FeatureStoreError, __version__
from fsredis.cli.admin import (
    apply_command, diff_command, info_command, load_functions_command, migrate_command, registry_command,
)
from fsredis.cli.data import compact_command, drain_command, export_history_command, ingest_command, training_set_command
from fsredis.cli.demo import demo_command, serve_command
from fsredis.cli.ops import (
    delete_command, get_command, keys_command, lineage_command, ls_command, put_command, rollback_command, stats_command,
)

__all__ = ["main"]


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
    serve.add_argument("--workers", type=int, help="sidecar processes on the port (default: $FSREDIS_SERVER_WORKERS, "
                                                   "else one per core; 1: a single process)")
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
    compacting = "Merge the small files of an offline history directory (a drainer does it every 100 batches)."
    compact = commands.add_parser("compact", help=compacting, description=compacting)
    compact.add_argument("directory", help="the offline history directory (fsredis drain --out)")
    compact.add_argument("--min-files", type=int, default=16, help="merge a feature's files once it has this many "
                                                                 "small ones (default 16)")
    compact.add_argument("--target-rows", type=int, default=1_000_000, help="rows per merged file (default 1,000,000)")
    compact.add_argument("--grace", type=float, default=3600.0,
                         help="seconds the files of a merge stay beside it, for joins that listed them (default 3600)")
    snapshot = add("export-history", "Write the history Redis keeps now to Parquet files per feature (a snapshot).")
    snapshot.add_argument("--out", required=True, help="a new or empty directory")
    snapshot.add_argument("--type", dest="entity_type", help="only entities of this type")
    snapshot.add_argument("--features", help="comma-separated feature names (default: every feature)")
    snapshot.add_argument("--no-progress", action="store_true", help="no progress bar (also when stderr is not a terminal)")
    get = add("get", "Show the live features of an entity: values, versions, event times, expiries.")
    get.add_argument("entity", help="the entity id, e.g. product:123")
    get.add_argument("names", nargs="*", help="feature names (default: every live feature)")
    get.add_argument("--json", action="store_true", help="JSON for scripts")
    put = add("put", "Write features of an entity: name=value ... (values as JSON when they read as JSON).")
    put.add_argument("entity", help="the entity id")
    put.add_argument("pairs", nargs="*", metavar="name=value", help='e.g. price=949.99 name=iPhone tags=\'["a"]\'')
    put.add_argument("--json", help='the features as one JSON object, e.g. \'{"price": 949.99}\'')
    put.add_argument("--ttl", type=float, help="seconds every feature lives (default: the config's)")
    put.add_argument("--source", default="cli", help="lineage source (default cli)")
    put.add_argument("--event-time", type=float, help="when the values were true, seconds since the epoch")
    put.add_argument("--write-id", help="an idempotency key: the same write applies once")
    put.add_argument("--json-out", action="store_true", help="print the result as JSON")
    lineage = add("lineage", "Show the versions of one feature of an entity, newest first.")
    lineage.add_argument("entity")
    lineage.add_argument("feature")
    lineage.add_argument("--limit", type=int, help="most versions shown (default: max_versions)")
    lineage.add_argument("--json", action="store_true", help="JSON for scripts")
    rollback = add("rollback", "Write an earlier version of a feature again, as a new version.")
    rollback.add_argument("entity")
    rollback.add_argument("feature")
    rollback.add_argument("version", type=int)
    rollback.add_argument("--source", default="rollback", help="lineage source (default rollback)")
    rollback.add_argument("--json", action="store_true", help="JSON for scripts")
    delete = add("delete", "Delete features of an entity (value, history, counter), or the whole entity with --all.")
    delete.add_argument("entity")
    delete.add_argument("names", nargs="*", help="the features to delete")
    delete.add_argument("--all", action="store_true", help="delete the whole entity")
    delete.add_argument("--json", action="store_true", help="JSON for scripts")
    ls = add("ls", "List entity ids of the namespace (SCAN, on every primary of a cluster).")
    ls.add_argument("--type", dest="entity_type", help="only entities of this type")
    ls.add_argument("--match", help="a glob on the id part, e.g. '12*'")
    ls.add_argument("--limit", type=int, default=100, help="most ids listed (default 100)")
    ls.add_argument("--json", action="store_true", help="JSON for scripts")
    stats = add("stats", "Entities and memory per type (sampled), and what the library and registry are on the server.")
    stats.add_argument("--sample", type=int, default=20, help="entities per type sampled for memory (default 20)")
    stats.add_argument("--max-keys", type=int, default=1_000_000, help="stop counting after this many keys")
    stats.add_argument("--sidecar", help="a sidecar's URL: its hit rate and requests from /metrics")
    stats.add_argument("--json", action="store_true", help="JSON for scripts")
    keys = add("keys", "Print the redis-cli calls that read and correct one entity (its key typed out).")
    keys.add_argument("entity", help="the entity id, e.g. product:123")
    keys.add_argument("feature", nargs="?", help="a feature to put in the examples (default price)")
    migrate = add("migrate", "Convert the namespace's entities from storage format 1 (fsredis 0.1) to format 2.")
    migrate.add_argument("--dry-run", action="store_true", help="only count the entities still in format 1")

    args = parser.parse_args(argv)
    run = {
        "serve": serve_command, "demo": demo_command, "load-functions": load_functions_command, "info": info_command,
        "apply": apply_command, "diff": diff_command, "registry": registry_command, "migrate": migrate_command,
        "ingest": ingest_command, "training-set": training_set_command, "drain": drain_command,
        "compact": compact_command,
        "export-history": export_history_command, "keys": keys_command,
        "get": get_command, "put": put_command, "lineage": lineage_command, "rollback": rollback_command,
        "delete": delete_command, "ls": ls_command, "stats": stats_command,
    }[args.command]
    try:
        return run(args)
    except (FeatureStoreError, OSError) as exc:
        print(f"fsredis {args.command}: error: {exc}", file=sys.stderr)
        return 1
