"""``export_history``: a one-off snapshot of the history Redis keeps now, as Parquet files in the
layout of the offline history (:mod:`fsredis.changelog`), so that training sets can be joined
over it with DuckDB (``get_historical_features(source=...)``) and other tools can read it.

Entities are found by ``SCAN`` (on every primary of a cluster), 500 at a time; their features by
``HKEYS`` unless named; each feature's kept versions by ``fs_lineage``, which resolves every
version's value, write time, write id and lineage. Rows are written every ``FLUSH_ROWS`` rows, so
memory holds one chunk. Unlike the change log, a snapshot holds only what is kept (``max_versions``)
and no deletions, and where Redis trimmed versions, a ``cut`` row with the newest event time it
trimmed (from ``fs_get_history``): a join over the snapshot says *beyond retention* where an
as-of read would. Taken into a drained history's directory right after the change log was turned
on, it gives that history its past.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsredis import commands, history, limits
from fsredis.changelog import SEQUENCE_SPAN, Rows
from fsredis.commands import Call, KeyScan, Operation
from fsredis.errors import FeatureStoreError
from fsredis.keys import entity_keys, entity_of, entity_pattern

CHUNK = 500
"""Entities read per round trip."""
FLUSH_ROWS = 200_000
"""Rows held before they are written out."""


@dataclass
class SnapshotReport:
    """What ``export_history`` wrote."""

    entities: int = 0
    versions: int = 0
    files: int = 0
    seconds: float = 0.0


def _ours(path: Path) -> bool:
    """Whether ``path`` (in the target directory) belongs to an offline history."""
    return path.name.startswith(("feature=", "_fsredis_drain", "_staging", ".fsredis_drain"))


class SnapshotOperations:
    """``export_history``, mixed into the stores (fsredis/client.py)."""

    if TYPE_CHECKING:
        config: Any

        def _run(self, operation: str, steps: Operation) -> Any: ...

        def _send_many(self, calls: list[Call]) -> Operation: ...

        def _plain(self, request: Any) -> Operation: ...

    def export_history(
        self, directory: str | os.PathLike[str], *, entity_type: str | None = None,
        features: Sequence[str] | None = None, progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """Write the history this namespace keeps now (every kept version of every feature, or of
        ``features``; of every entity, or of ``entity_type``'s) to ``directory`` as Parquet, one
        folder per feature (``feature=<name>/snapshot-<time>-<n>.parquet``), in a new directory or
        one that holds an offline history: with the change log on, a snapshot taken into the
        directory ``fsredis drain`` fills makes that history start with what Redis kept (the
        join counts a version the log and the snapshot both hold once).
        ``progress(entities done, entities)`` is called after each chunk. Returns a
        :class:`SnapshotReport`. Needs pyarrow (``pip install 'fsredis[export]'``)."""
        return self._run("export_history", self._export_history(directory, entity_type, features, progress))

    def _export_history(self, directory: Any, entity_type: str | None, features: Sequence[str] | None,
                        progress: Callable[[int, int], None] | None) -> Operation:
        started = time.monotonic()
        root = Path(directory)
        strays = [p.name for p in root.iterdir() if not _ours(p)] if root.exists() else []
        if strays:
            raise FeatureStoreError(f"{root} holds other files than an offline history: {sorted(strays)[:5]}")
        names = None if features is None else commands.check_names(list(features))
        namespace = self.config.namespace
        scan = KeyScan(entity_pattern(namespace, entity_type))
        keys = sorted({key.decode() if isinstance(key, bytes) else key for key in (yield from self._plain(scan))})
        ids = [entity for entity in (entity_of(key, namespace) for key in keys) if entity is not None]
        report = SnapshotReport(entities=len(ids))
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        taken = int(time.time() * 1000) * SEQUENCE_SPAN  # (a cut's change: a later deletion erases it)
        rows = Rows(namespace)
        for start in range(0, len(ids), CHUNK):
            entities = ids[start : start + CHUNK]
            chunk = [entity_keys(namespace, entity) for entity in entities]
            if names is None:
                listed = yield from self._plain([("HKEYS", k.entity) for k in chunk])
                wanted = [history.feature_names(fields) for fields in listed]
            else:
                wanted = [names] * len(chunk)
            pairs = [(entity, keys, name) for entity, keys, own in zip(entities, chunk, wanted) for name in own]
            calls = [commands.lineage(keys, name, limits.MAX_VERSIONS) for _, keys, name in pairs]
            # Where Redis trimmed versions: the newest event time it cut (fs_get_history's first item).
            calls += [history.get_history([keys], own) for keys, own in zip(chunk, wanted) if own]
            replies = (yield from self._send_many(calls)) if calls else []
            for (entity, _, name), reply in zip(pairs, replies):
                if isinstance(reply, FeatureStoreError):
                    raise commands.naming(reply, entity)
                for version in reply[3:]:
                    rows.add_version(entity, name, version, int(version[3]) * SEQUENCE_SPAN)
            cuts = iter(replies[len(pairs) :])
            for entity, own in zip(entities, wanted):
                if own:
                    reply = next(cuts)
                    if isinstance(reply, FeatureStoreError):
                        raise commands.naming(reply, entity)
                    for name, item in zip(own, reply[0]):
                        if item[0] is not None:
                            rows.add_cut(entity, name, int(item[0]), taken)
            if rows.count >= FLUSH_ROWS:
                report.versions += rows.count
                report.files += rows.write(root, f"snapshot-{stamp}-{start:09d}.parquet")
                rows = Rows(namespace)
            if progress is not None:
                progress(min(start + CHUNK, len(ids)), len(ids))
        if rows.count:
            report.versions += rows.count
            report.files += rows.write(root, f"snapshot-{stamp}-{len(ids):09d}.parquet")
        report.seconds = time.monotonic() - started
        return report
