"""Commands about the library and the registry: ``load-functions``, ``info``, ``migrate``,
``apply``, ``diff``, ``registry``."""

from __future__ import annotations

import argparse
import sys
import time

from fsredis.lazy import numpy as np

from fsredis import (
    FeatureStore,
    Registry,
)
from fsredis.config import redacted_url
from fsredis.keys import entity_pattern, registry_keys
from fsredis.cli.common import config, report_progress, require_url


def load_functions_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        version = fs.load_library()
        print(f"loaded fsredis library {version} on {redacted_url(args.redis_url)}")
    return 0


def info_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
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
        for key in client.scan_iter(match=entity_pattern(namespace), count=1000):
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


def migrate_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
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


def apply_command(args: argparse.Namespace) -> int:
    require_url(args)
    desired = Registry.load(args.file)
    with FeatureStore(config(args)) as fs:
        changes = fs.apply_registry(desired, force=args.force, author=args.author, sample=args.sample,
                                    progress=report_progress)
        if not changes:
            print(f"registry of namespace {fs.config.namespace!r} already matches {args.file}")
            return 0
        for change in changes:
            print(change)
        version = fs.get_registry().version
        print(f"applied {len(changes)} change(s): namespace {fs.config.namespace!r} is at registry version {version}")
    return 0


def diff_command(args: argparse.Namespace) -> int:
    require_url(args)
    desired = Registry.load(args.file)
    with FeatureStore(config(args)) as fs:
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
    require_url(args)
    with FeatureStore(config(args)) as fs:
        registry = fs.get_registry()
        print(f"# namespace {fs.config.namespace!r}, registry version {registry.version}")
        print(registry.to_yaml(), end="")
        for entry in fs.registry_history(args.history) if args.history else []:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["at"]))
            print(f"# v{entry['version']} at {at}Z by {entry['by']}: {len(entry['changes'])} change(s)")
    return 0

