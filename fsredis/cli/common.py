"""What the commands share: the store's config from the arguments, and progress displays."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


from fsredis import (
    FeatureStoreConfig,
)


def config(args: argparse.Namespace, **overrides: Any) -> FeatureStoreConfig:
    if args.namespace:
        overrides["namespace"] = args.namespace
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    return FeatureStoreConfig.from_env(**overrides)


def require_url(args: argparse.Namespace) -> None:
    if not args.redis_url:
        raise SystemExit(f"fsredis {args.command}: give --redis-url (or set FSREDIS_REDIS_URL)")


@contextmanager
def rows_progress(bar: bool, unit: str = "rows") -> Iterator[Any]:
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
def ingest_progress(bar: bool) -> Iterator[Any]:
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


def report_progress(feature: str, checked: int, total: int) -> None:
    """Print, on stderr, how far the check of stored values against a change has come."""
    if checked == total or checked % 10_000 < 500:
        print(f"checking stored values of {feature}: {checked}/{total} entities", file=sys.stderr, flush=True)
