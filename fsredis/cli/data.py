"""Commands that move data in bulk: ``ingest``, ``training-set``, ``export-history``, ``drain``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


from fsredis import (
    FeatureStore,
    ValidationError,
)
from fsredis import export
from fsredis.config import redacted_url
from fsredis.cli.common import config, ingest_progress, require_url, rows_progress


def ingest_command(args: argparse.Namespace) -> int:
    require_url(args)
    features = [name.strip() for name in args.features.split(",") if name.strip()] if args.features else None
    with FeatureStore(config(args)) as fs, ingest_progress(not args.no_progress and sys.stderr.isatty()) as progress:
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
        require_url(args)
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
    with rows_progress(not args.no_progress and sys.stderr.isatty()) as progress:
        options = dict(timestamp_column=when, entity_column=ids, mask=args.mask)
        if args.source:
            from fsredis import offline

            out = offline.get_historical_features(args.source, frame, features, **options)
        else:
            with FeatureStore(config(args)) as fs:
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
    require_url(args)
    export._require("pyarrow")
    features = [name.strip() for name in args.features.split(",") if name.strip()] if args.features else None
    with FeatureStore(config(args)) as fs, rows_progress(not args.no_progress and sys.stderr.isatty(), "entities") as progress:
        report = fs.export_history(args.out, entity_type=args.entity_type, features=features, progress=progress)
    print(f"{report.entities:,} entities, {report.versions:,} rows in {report.files} files in {report.seconds:.1f} s -> {args.out}")
    return 0


def compact_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fsredis.drain import STATE, compact, hold

    if args.min_files < 2 or args.target_rows < 2 or args.grace < 0:
        print("fsredis compact: --min-files and --target-rows must be at least 2, --grace at least 0", file=sys.stderr)
        return 2
    if not Path(args.directory, STATE).exists():
        print(f"fsredis compact: {args.directory} is not an offline history (no _fsredis_drain.json)", file=sys.stderr)
        return 2
    with hold(Path(args.directory)):
        report = compact(args.directory, min_files=args.min_files, target_rows=args.target_rows, grace=args.grace)
    print(f"{report.merged} files merged into {report.written}, {report.deleted} files of earlier merges deleted, "
          f"in {report.seconds:.1f} s")
    for folder, why in report.skipped.items():
        print(f"fsredis compact: {folder} not compacted: {why}", file=sys.stderr)
    return 1 if report.skipped else 0


def drain_command(args: argparse.Namespace) -> int:
    import signal
    import threading

    from fsredis.drain import Drainer

    require_url(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def said(report: Any) -> None:
        print(f"batch {report.batch}: {report.entries:,} entries, {report.rows:,} rows, {report.files} files "
              f"from {report.streams} streams in {report.seconds:.2f} s", flush=True)
        if report.quarantined:
            print(f"batch {report.batch}: {report.quarantined} entries were not change-log entries: set aside in "
                  f"{args.out}/_quarantine/", file=sys.stderr, flush=True)

    with FeatureStore(config(args)) as fs, Drainer(fs, args.out, max_entries=args.max_entries, settle=args.settle) as drainer:
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
