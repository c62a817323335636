"""Moving an existing store from storage format 1 to format 2 (``fsredis migrate``).

Format 1 (fsredis 0.1) kept four keys per entity (``…:v``, ``:x``, ``:h``, ``:w``); format 2
keeps one hash (``…:e``, docs/storage_format.md). The Lua function ``fs_migrate`` converts one
entity atomically — values, expiries, kept history, counters, write ids — and deletes its
format-1 keys; this module finds the entities (SCAN, on every primary of a cluster) and calls it
for each, a chunk at a time. Running it again is harmless: a converted entity has no format-1
key left. Clients of this version read and write format 2 only, so migrate before they write:
an entity that already has format-2 data is left alone and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsredis.commands import Call, KeyScan, Operation
from fsredis.errors import FeatureStoreError, RegistryConflict

MIGRATE_CHUNK = 200
"""Entities converted per pipeline."""


@dataclass
class MigrationReport:
    """What ``migrate`` found and did."""

    entities: int = 0
    """Entities with format-1 data found."""
    migrated: int = 0
    """Entities converted (0 on a dry run)."""
    features: int = 0
    """Features converted."""
    conflicts: list[str] = field(default_factory=list)
    """Entity keys left alone: they also have format-2 data (written since the upgrade)."""
    errors: dict[str, str] = field(default_factory=dict)
    """Entity keys whose format-1 data could not be read (left alone), and why."""


class MigrationOperations:
    """``migrate``, mixed into the stores (fsredis/client.py)."""

    if TYPE_CHECKING:
        config: Any

        def _run(self, operation: str, steps: Operation) -> Any: ...

        def _send_many(self, calls: list[Call]) -> Operation: ...

        def _plain(self, request: Any) -> Operation: ...

    def migrate(self, *, dry_run: bool = False, progress: Callable[[int, int], None] | None = None) -> Any:
        """Convert every entity of this namespace still in storage format 1 to format 2. With
        ``dry_run`` only count them. ``progress(done, total)`` is called after each chunk.
        Returns a :class:`MigrationReport`."""
        return self._run("migrate", self._migrate(dry_run, progress))

    def _migrate(self, dry_run: bool, progress: Callable[[int, int], None] | None) -> Operation:
        keys = yield from self._plain(KeyScan(f"{self.config.namespace}:*{{*}}:[vh]"))
        bases = sorted({key[:-1].decode(errors="replace") for key in keys})
        report = MigrationReport(entities=len(bases))
        if dry_run:
            return report
        for start in range(0, len(bases), MIGRATE_CHUNK):
            chunk = bases[start : start + MIGRATE_CHUNK]
            calls = [Call("fs_migrate", tuple(base + suffix for suffix in "vxhwe"), ()) for base in chunk]
            for base, reply in zip(chunk, (yield from self._send_many(calls))):
                if isinstance(reply, RegistryConflict):
                    report.conflicts.append(base + "e")
                elif isinstance(reply, FeatureStoreError):
                    report.errors[base + "e"] = str(reply)
                else:
                    report.migrated += 1
                    report.features += int(reply)
            if progress is not None:
                progress(min(start + MIGRATE_CHUNK, len(bases)), len(bases))
        return report
