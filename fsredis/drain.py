"""``fsredis drain``: move the change log (:mod:`fsredis.changelog`) to the offline history, a
directory of Parquet files partitioned by feature, with nothing lost and nothing twice.

One pass (a *batch*) reads up to ``max_entries`` entries from the streams that have any, writes
them as one Parquet file per feature into ``_staging/<batch>/``, then commits by replacing the
state file ``_fsredis_drain.json`` (batch number and, per stream, the id of the last entry
drained) atomically; only then are the files moved into ``feature=<name>/`` and the drained
entries trimmed from Redis. So:

* a crash before the commit leaves a staging directory that the next start deletes, and the
  entries still in Redis: they are read again;
* a crash after it leaves files to move (the next start moves them) and entries that Redis still
  holds: the next read starts after each stream's committed id, and trims them;
* Redis losing its last second of writes (AOF ``appendfsync everysec``) cannot leave the offline
  history ahead of it: a pass takes only entries older than ``settle`` seconds (server time).

Readers see ``feature=*/*.parquet``; a file is never rewritten (compaction adds merged files and
later deletes their sources). One drainer per directory (a
lock file says so) and per namespace.

A pass makes one file per feature, so a drainer that runs for days leaves many small files,
which every join must open. :meth:`Drainer.compact` (every ``compact_every`` batches in
:meth:`Drainer.run`, and ``fsredis compact``) merges runs of small files of a feature into
``part-<first batch>-<last batch>.parquet``. Its sources stay for ``grace`` seconds (an hour), so
that a join which listed them can still read them (it sees those versions twice meanwhile, and
the joins count each version once); a later compaction deletes them by name, and only if they
are unchanged (``_fsredis_compacted.json`` lists them).

An entry that is not a change-log entry (something else ``XADD``-ed into a log key, or a field
that cannot be read) does not stop the drain, which would leave the log growing in Redis: it is
*quarantined*, written whole (fields in hex) with the reason to ``_quarantine/part-<batch>.jsonl``
in the same batch, committed and trimmed like the others, and counted
(:attr:`DrainReport.quarantined`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from fsredis.changelog import Rows, fsync, next_id
from fsredis.errors import CorruptValue, FeatureStoreError, StoreUnavailable, translate
from fsredis.keys import log_keys

_PART = re.compile(r"part-(\d{10})(?:-(\d{10}))?\.parquet")
"""A drained file: one batch, or (compacted) a run of batches."""
STATE = "_fsredis_drain.json"
STAGING = "_staging"
COMPACTED = "_fsredis_compacted.json"
QUARANTINE = "_quarantine"
LOCK = ".fsredis_drain.lock"
FORMAT = 1


class DrainError(FeatureStoreError):
    """The offline history cannot be drained into: another drainer holds it, or it belongs to
    another namespace, or its state is unreadable."""


@dataclass
class DrainReport:
    """What one pass did."""

    batch: int
    entries: int = 0
    rows: int = 0
    files: int = 0
    streams: int = 0
    seconds: float = 0.0
    more: bool = False
    """Some stream had more entries than the pass took: pass again at once."""
    quarantined: int = 0
    """Entries that were not change-log entries, set aside in ``_quarantine/`` (and trimmed)."""


@dataclass
class CompactReport:
    """What one compaction did."""

    merged: int = 0
    """Files merged into others (deleted ``grace`` seconds later)."""
    written: int = 0
    """Merged files written."""
    deleted: int = 0
    """Sources of earlier merges deleted (their grace had passed)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Feature folders not compacted, with the reason (a file that cannot be read)."""
    seconds: float = 0.0


def _batches(path: Path) -> tuple[int, int] | None:
    """The batches a drained file holds (first, last), or None for another file (a snapshot)."""
    match = _PART.fullmatch(path.name)
    if match is None:
        return None
    first = int(match.group(1))
    return first, int(match.group(2) or first)


def _stamp(path: Path) -> list[int]:
    """What identifies a file's content here: its size and modification time (ns)."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


class _Merges:
    """The merges whose sources are still on disk (``_fsredis_compacted.json``): each names its
    folder, merged file, time, and sources with their size and mtime. Sources are deleted only
    by name and only while unchanged, ``grace`` seconds after their merged file went in, so a
    join that listed them before has time to read them (meanwhile it sees those versions twice,
    and counts them once)."""

    def __init__(self, root: Path) -> None:
        self.path = root / COMPACTED
        self.root = root
        try:
            self.merges: list[dict[str, Any]] = json.loads(self.path.read_text()) if self.path.exists() else []
        except ValueError as error:
            raise DrainError(f"{self.path} is not a list of merges: {error}") from None

    def pending(self, folder: Path) -> set[str]:
        """The names of ``folder``'s files that are sources of a merge already made."""
        return {name for merge in self.merges if merge["folder"] == folder.name for name in merge["sources"]}

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.merges, sort_keys=True))
        fsync(temporary)
        os.replace(temporary, self.path)
        fsync(self.root)

    def sweep(self, grace: float) -> int:
        """Delete the sources of merges made ``grace`` seconds ago or more (and forget a merge
        whose merged file never went in: a crash before the move); the files deleted."""
        kept, deleted, now = [], 0, time.time()
        for merge in self.merges:
            folder = self.root / merge["folder"]
            if not (folder / merge["merged"]).exists():
                continue  # never moved in: its sources are the only copy, and stay
            if now - merge["at"] < grace:
                kept.append(merge)
                continue
            for name, stamp in merge["sources"].items():
                source = folder / name
                if source.exists() and _stamp(source) == stamp:  # (not a later file of the same name)
                    source.unlink()
                    deleted += 1
            fsync(folder)
        if kept != self.merges:
            self.merges = kept
            self.save()
        return deleted


def compact(directory: str | os.PathLike[str], *, min_files: int = 16, target_rows: int = 1_000_000,
            grace: float = 3600.0) -> CompactReport:
    """Merge each feature's runs of small drained files (under half ``target_rows`` rows) into
    files of up to ``target_rows`` rows, when a feature has at least ``min_files`` of them; delete
    the sources of earlier merges ``grace`` seconds after them (:class:`_Merges`). A feature whose
    files cannot be read is skipped and named in the report. The caller holds the directory (a
    :class:`Drainer`, or ``fsredis compact``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started, report = time.monotonic(), CompactReport()
    root = Path(directory)
    merges = _Merges(root)
    report.deleted = merges.sweep(grace)
    for folder in sorted(root.glob("feature=*")):
        merged_already = merges.pending(folder)
        try:
            # Runs of small files next to each other in batch order (a large file ends a run).
            runs: list[list[Path]] = [[]]
            total = small = 0
            drained = (p for p in folder.glob("part-*.parquet") if _batches(p) and p.name not in merged_already)
            for path in sorted(drained, key=_batches):  # type: ignore[arg-type]
                rows = pq.ParquetFile(path).metadata.num_rows
                if rows >= target_rows // 2 or (runs[-1] and total + rows > target_rows):
                    runs.append([])
                    total = 0
                if rows < target_rows // 2:
                    runs[-1].append(path)
                    total += rows
                    small += 1
            if small < min_files:
                continue
            for run in (run for run in runs if len(run) >= 2):
                first, last = _batches(run[0])[0], _batches(run[-1])[1]  # type: ignore[index]
                if (folder / f"part-{first:010d}-{last:010d}.parquet").exists():  # (never over a file)
                    continue
                staged = root / STAGING / "compact" / folder.name
                staged.mkdir(parents=True, exist_ok=True)
                merged = staged / f"part-{first:010d}-{last:010d}.parquet"
                pq.write_table(pa.concat_tables([pq.read_table(p) for p in run]), merged, compression="zstd")
                fsync(merged)
                # Recorded first, then moved in: a crash between leaves a record that the sweep
                # forgets (no merged file) and the sources, the only copy, untouched.
                merges.merges.append({"folder": folder.name, "merged": merged.name, "at": time.time(),
                                      "sources": {p.name: _stamp(p) for p in run}})
                merges.save()
                os.replace(merged, folder / merged.name)
                fsync(folder)
                report.merged += len(run)
                report.written += 1
        except (OSError, ValueError) as error:  # (pyarrow's errors are these) a damaged file: the rest goes on
            report.skipped[folder.name] = f"{type(error).__name__}: {error}"
    shutil.rmtree(root / STAGING / "compact", ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


def hold(directory: Path) -> Any:
    """The lock of an offline history directory (created when missing), as an open file to close
    when done; DrainError when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = open(directory / LOCK, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DrainError(f"another drainer is writing to {directory}") from None
    return lock


def waiting(redis: Any, namespace: str) -> dict[str, int]:
    """The change-log streams of ``namespace`` that hold entries, and how many: one pipeline of
    ``XLEN`` over the 16,384 streams (on a cluster, each to its slot's node)."""
    keys = log_keys(namespace)
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.xlen(key)
    return {key: length for key, length in zip(keys, pipe.execute()) if length}


def _quarantined(stream: str, entry_id: bytes, fields: dict[bytes, bytes], error: Exception) -> dict[str, Any]:
    """A line of ``_quarantine/``: where the entry was, why it was set aside, and its fields (names
    as text, values in hex: they are whatever was written)."""
    return {"stream": stream, "id": entry_id.decode(), "error": str(error),
            "fields": {name.decode("utf-8", "backslashreplace"): value.hex() for name, value in fields.items()}}


class Drainer:
    """Drains one store's change log into ``directory`` (created when missing)."""

    def __init__(self, store: Any, directory: str | os.PathLike[str], *, max_entries: int = 100_000,
                 settle: float = 2.0) -> None:
        if max_entries < 1 or settle < 0:
            raise ValueError("max_entries must be >= 1 and settle >= 0 seconds")
        self.store, self.max_entries, self.settle = store, max_entries, settle
        self.namespace = store.config.namespace
        self.dir = Path(directory)
        self._lock = hold(self.dir)
        try:
            self.state = self._recover()
        except BaseException:
            self._lock.close()
            raise

    def close(self) -> None:
        self._lock.close()

    def __enter__(self) -> Drainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state --------------------------------------------------------------------------------

    def _recover(self) -> dict[str, Any]:
        """The committed state; a batch staged after it is deleted, one staged before it (a crash
        between commit and move) is moved into place."""
        path = self.dir / STATE
        if path.exists():
            try:
                state = json.loads(path.read_text())
                batch, streams = int(state["batch"]), dict(state["streams"])
            except (ValueError, KeyError, TypeError) as error:
                raise DrainError(f"{path} is not a drain state: {error}") from None
            if state.get("namespace") != self.namespace:
                raise DrainError(f"{self.dir} holds the history of namespace {state.get('namespace')!r}, not {self.namespace!r}")
        else:
            batch, streams = 0, {}
        staging = self.dir / STAGING
        for staged in sorted(staging.iterdir()) if staging.exists() else ():
            if staged.name.isdigit() and int(staged.name) <= batch:
                self._publish(staged)
            else:
                shutil.rmtree(staged)
        return {"format": FORMAT, "namespace": self.namespace, "batch": batch, "streams": streams}

    def _commit(self, state: dict[str, Any]) -> None:
        path, temporary = self.dir / STATE, self.dir / (STATE + ".tmp")
        temporary.write_text(json.dumps(state, sort_keys=True))
        fsync(temporary)
        os.replace(temporary, path)
        fsync(self.dir)
        self.state = state

    def _publish(self, staged: Path) -> None:
        """Move a committed batch's files into ``feature=<name>/`` (and ``_quarantine/``)."""
        for part in sorted([*staged.glob("feature=*/*.parquet"), *staged.glob(QUARANTINE + "/*.jsonl")]):
            target = self.dir / part.parent.name / part.name
            target.parent.mkdir(exist_ok=True)
            os.replace(part, target)
            fsync(target.parent)
        shutil.rmtree(staged)

    # -- one pass -----------------------------------------------------------------------------

    def drain_once(self) -> DrainReport:
        """Drain what the log holds now (at most about ``max_entries`` entries); return what it
        did. Raises StoreUnavailable when Redis cannot be reached (nothing is lost: the pass is
        done again)."""
        try:
            return self._pass()
        except redis.RedisError as error:
            raise translate(error) from error

    def _pass(self) -> DrainReport:
        started = time.monotonic()
        client = self.store.redis
        report = DrainReport(batch=self.state["batch"])
        busy = list(waiting(client, self.namespace))
        if not busy:
            return report
        seconds, micros = client.time()
        horizon = seconds * 1000 + micros // 1000 - int(self.settle * 1000)
        streams = self.state["streams"]
        per_stream = max(100, self.max_entries // len(busy))
        pipe = client.pipeline(transaction=False)
        for key in busy:
            pipe.xrange(key, f"({streams[key]}" if key in streams else "-", "+", count=per_stream)
        rows, last, quarantined = Rows(self.namespace), {}, []
        for key, entries in zip(busy, pipe.execute()):
            for entry_id, fields in entries:
                if int(entry_id.split(b"-")[0]) > horizon:  # too young: the next pass takes it
                    break
                try:
                    rows.add(entry_id, fields)
                except CorruptValue as error:
                    quarantined.append(_quarantined(key, entry_id, fields, error))
                last[key] = entry_id.decode()
                report.entries += 1
            else:
                report.more = report.more or len(entries) == per_stream
        if last:
            report.batch, report.rows, report.quarantined = self.state["batch"] + 1, rows.count, len(quarantined)
            report.files = self._write(report.batch, rows, quarantined)
            self._commit({**self.state, "batch": report.batch, "streams": {**streams, **last}})
            self._publish(self.dir / STAGING / str(report.batch))
        self._trim(busy)
        report.streams = len(last)
        report.seconds = time.monotonic() - started
        return report

    def _write(self, batch: int, rows: Rows, quarantined: list[dict[str, Any]]) -> int:
        staged = self.dir / STAGING / str(batch)
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir(parents=True)
        if quarantined:
            folder = staged / QUARANTINE
            folder.mkdir()
            path = folder / f"part-{batch:010d}.jsonl"
            path.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in quarantined))
            fsync(path)
            fsync(folder)
        return rows.write(staged, f"part-{batch:010d}.parquet")

    def _trim(self, keys: list[str]) -> None:
        """Trim the committed entries of ``keys`` from Redis (again, after a crash)."""
        streams = self.state["streams"]
        pipe = self.store.redis.pipeline(transaction=False)
        for key in keys:
            if key in streams:
                pipe.xtrim(key, minid=next_id(streams[key]))
        pipe.execute()

    def compact(self, *, min_files: int = 16, target_rows: int = 1_000_000, grace: float = 3600.0) -> CompactReport:
        """:func:`compact` this drainer's directory (it holds the lock)."""
        return compact(self.dir, min_files=min_files, target_rows=target_rows, grace=grace)

    def run(self, interval: float = 5.0, *, stop: Any = None, on_batch: Any = None, on_error: Any = None,
            on_pass: Any = None, compact_every: int = 100) -> None:
        """Drain until ``stop()`` is true (``stop``: a callable, e.g. ``threading.Event.is_set``):
        at once while passes leave entries behind, else every ``interval`` seconds. After a pass,
        ``on_batch(report)`` when it drained something and ``on_pass()``. While Redis is
        unreachable, ``on_error(error)`` is called and the pass tried again after ``interval``.
        Every ``compact_every`` batches (0: never) the small files are merged (:meth:`compact`)."""
        compacted = self.state["batch"]
        while not (stop and stop()):
            try:
                report = self.drain_once()
            except StoreUnavailable as error:
                if on_error:
                    on_error(error)
                report = DrainReport(batch=self.state["batch"])
            else:
                if on_pass:
                    on_pass()
            if on_batch and report.entries:
                on_batch(report)
            if compact_every and self.state["batch"] - compacted >= compact_every:
                compacted = self.state["batch"]
                try:
                    compacted_now = self.compact()
                except (OSError, DrainError) as error:  # (housekeeping: the draining goes on)
                    if on_error:
                        on_error(error)
                else:
                    if on_error:
                        for folder, why in compacted_now.skipped.items():
                            on_error(DrainError(f"{folder} not compacted: {why}"))
            if not report.more:
                deadline = time.monotonic() + interval
                while time.monotonic() < deadline and not (stop and stop()):
                    time.sleep(min(0.2, interval))
