"""Commands for operators: look at an entity (``get``, ``lineage``), correct it (``put``,
``rollback``, ``delete``), list and size what a namespace holds (``ls``, ``stats``), and ``keys``,
which prints the ``redis-cli`` calls that do the same with the key typed out. Tables for people
(rich), ``--json`` for scripts; exit status 0, 1 for an error, 2 for a usage mistake, 3 when
``get`` or ``lineage`` finds nothing."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from fsredis import FeatureStore, FeatureStoreConfig, codec
from fsredis.cli.common import config, require_url
from fsredis.commands import Policy
from fsredis.keys import EntityIds, entity_keys, entity_of, entity_pattern


def redis_cli(settings: FeatureStoreConfig) -> str:
    """``redis-cli`` with the host and port of the configured server (never its password)."""
    if not settings.redis_url:
        return "redis-cli"
    parts = urlsplit(settings.redis_url.split(",")[0])
    words = ["redis-cli"]
    if parts.scheme == "rediss":
        words.append("--tls")
    if parts.hostname:
        words += ["-h", parts.hostname]
    if parts.port:
        words += ["-p", str(parts.port)]
    if parts.path.strip("/") not in ("", "0"):
        words += ["-n", parts.path.strip("/")]
    if settings.cluster:
        words.append("-c")
    if parts.username or parts.password:
        words += ["--user", parts.username or "default", "--askpass"]
    return " ".join(words)


def _quoted(raw: bytes) -> str:
    """``raw`` as one shell word of exactly those bytes: bash's ``$'...'`` with ``\\xHH`` escapes."""
    return "$'" + "".join(chr(b) if 32 < b < 127 and chr(b) not in "'\\" else f"\\x{b:02x}" for b in raw) + "'"


def keys_command(args: argparse.Namespace) -> int:
    settings = config(args)
    keys = entity_keys(settings.namespace, args.entity)
    key = shlex.quote(keys.entity)
    declared = Policy.from_config(settings).keys_of(keys)  # (a writing call's keys: with the change log, its key too)
    writing = f"{len(declared)} " + " ".join(shlex.quote(k) for k in declared)
    cli = redis_cli(settings)
    feature = args.feature or "price"
    name = shlex.quote(feature)
    put = shlex.quote(json.dumps({feature: 949.99})) + " " + shlex.quote(json.dumps({"source": "ops"}))
    lines = [
        f"# {args.entity} in namespace {settings.namespace!r}: the hash {keys.entity} (slot {keys.slot})"
        + (", and its slot's change log" if settings.change_log else ""),
        "# every live feature, as JSON (values, versions, event times, expiries):",
        f"{cli} FCALL_RO fs_show 1 {key}",
        "# some features:",
        f"{cli} FCALL_RO fs_show 1 {key} {name}",
        "# correct values (JSON; checked and versioned as any write; options: ttl, event_time, source, write_id):",
        f"{cli} FCALL fs_put {writing} {put}",
        "# the versions of a feature (newest first: version, event ms, expiry ms, written ms, write id, meta, value):",
        f"{cli} FCALL_RO fs_lineage 1 {key} {name} 10",
        "# roll a feature back to version 1 (written again as a new version; the options are msgpack: {\"id\": <write id>}):",
        f"{cli} FCALL fs_rollback {writing} {_quoted(codec.pack({'id': 'ops-' + uuid.uuid4().hex[:12]}))} '' {name} 1",
        "# delete a feature (value, history, counter), or the whole entity without a name:",
        f"{cli} FCALL fs_delete {writing} {name}",
        "# the raw fields (binary: heads, indexes, records):",
        f"{cli} HGETALL {key}",
    ]
    print("\n".join(lines))
    return 0


# -- get, put, lineage, rollback, delete, ls, stats ---------------------------------------------

NOT_FOUND = 3
"""Exit status of ``get`` and ``lineage`` when there is nothing to show (errors: 1, usage: 2)."""


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Rows for people: a rich table on a terminal, aligned plain text elsewhere (a pipe, a file)."""
    cells = [[_cell(value) for value in row] for row in rows]
    if sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # pragma: no cover - the [ingest] extra brings rich
            pass
        else:
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column)
            for row in cells:
                table.add_row(*row)
            Console().print(table)
            return
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(title)
    for row in [columns, *cells]:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())


def _usage(command: str, message: str) -> int:
    print(f"fsredis {command}: {message}", file=sys.stderr)
    return 2


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and {"dtype", "dim", "norm"} <= set(value):
        head = ", ".join(f"{x:.4g}" for x in value.get("head", [])[:4])
        return f"{value['dtype']}[{value['dim']}] norm {value['norm']:.4g} [{head}, ...]"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def get_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        features = fs.show_features(args.entity, args.names or None)
    if args.json:
        _print_json(features)
    elif not features:
        print(f"{args.entity}: no live features" + (f" named {', '.join(args.names)}" if args.names else ""), file=sys.stderr)
    else:
        _table(f"{args.entity}", ["feature", "value", "version", "event time", "expires"],
               [[name, f["value"], f["version"], f["event_time"], f["expires_at"]] for name, f in sorted(features.items())])
    return 0 if features else NOT_FOUND


def _value(text: str) -> Any:
    """A value typed at the shell: JSON when it reads as JSON (949.99, true, null, ["a"]), else
    the text itself (iPhone)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def put_command(args: argparse.Namespace) -> int:
    require_url(args)
    if args.json is not None:
        try:
            features = json.loads(args.json)
        except ValueError:
            features = None
        if not isinstance(features, dict):
            return _usage("put", "--json takes a JSON object of name -> value")
    else:
        features = {}
        for pair in args.pairs:
            name, equals, text = pair.partition("=")
            if not equals:
                return _usage("put", f"{pair!r} is not name=value")
            features[name] = _value(text)
    if not features:
        return _usage("put", "give name=value pairs or --json")
    with FeatureStore(config(args)) as fs:
        result = fs.write_features(args.entity, features, ttl=args.ttl, source=args.source,
                                   event_time=args.event_time, write_id=args.write_id)
    out = {"applied": result.applied, "versions": result.versions, "history_only": sorted(result.history_only)}
    if args.json_out:
        _print_json(out)
    else:
        _table(f"{args.entity}: {'written' if result.applied else 'already applied (write id)'}", ["feature", "version", "note"],
               [[n, v, "history only (older event)" if n in result.history_only else ""] for n, v in sorted(result.versions.items())])
    return 0


def lineage_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        lineage = fs.get_feature_lineage(args.entity, args.feature, args.limit)
    if args.json:
        _print_json(lineage)
    elif not lineage["versions"]:
        print(f"{args.entity} {args.feature}: no versions", file=sys.stderr)
    else:
        plain = {"version", "value", "timestamp", "event_time", "expires_at", "expired", "current", "write_id"}
        rows = [[v["version"], v["value"], _when(v["event_time"]), _when(v["timestamp"]),
                 "current" if v["current"] else "expired" if v["expired"] else "",
                 ", ".join(f"{k}={v[k]}" for k in sorted(v) if k not in plain and v[k] is not None), v["write_id"]]
                for v in lineage["versions"]]
        _table(f"{args.entity} {args.feature}: version {lineage['current_version']} current, newest first",
               ["version", "value", "event time", "written", "state", "lineage", "write id"], rows)
    return 0 if lineage["versions"] else NOT_FOUND


def _when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rollback_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        version = fs.rollback_feature(args.entity, args.feature, args.version, source=args.source)
    print(json.dumps({"version": version}) if args.json else
          f"{args.entity} {args.feature}: version {args.version} written again as version {version}")
    return 0


def delete_command(args: argparse.Namespace) -> int:
    require_url(args)
    if bool(args.names) == bool(args.all):
        return _usage("delete", "name the features, or give --all (alone) to delete the whole entity")
    with FeatureStore(config(args)) as fs:
        count = fs.delete_features(args.entity, None if args.all else args.names)
    print(json.dumps({"deleted": count}) if args.json else f"{args.entity}: {count} feature(s) deleted")
    return 0


def ls_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        found = EntityIds(fs.config.namespace, args.limit)
        for key in fs.redis.scan_iter(match=entity_pattern(fs.config.namespace, args.entity_type, args.match or "*"),
                                      count=1000):
            if found.add(key):
                break
    if args.json:
        _print_json(found.ids())
    else:
        print("\n".join(found.ids()))
        if not found.complete:
            print(f"# the first {args.limit} found (--limit)", file=sys.stderr)
    return 0


def stats_command(args: argparse.Namespace) -> int:
    require_url(args)
    with FeatureStore(config(args)) as fs:
        namespace = fs.config.namespace
        health = fs.health_check(install=False)
        if not health["redis_connected"]:
            print(f"fsredis stats: error: {health.get('error')}", file=sys.stderr)
            return 1
        per_type: dict[str, list[Any]] = {}
        scanned = 0
        for key in fs.redis.scan_iter(match=entity_pattern(namespace), count=1000):
            text = key.decode() if isinstance(key, bytes) else key
            entity = entity_of(text, namespace)
            if entity is None:
                continue
            kind = entity.rpartition(":")[0] or "(no type)"
            entry = per_type.setdefault(kind, [0, []])
            entry[0] += 1
            if len(entry[1]) < args.sample:
                entry[1].append(text)
            scanned += 1
            if scanned >= args.max_keys:
                break
        types = {}
        for kind, (count, sampled) in sorted(per_type.items()):
            sizes = [fs.redis.memory_usage(key) or 0 for key in sampled]
            mean = sum(sizes) / len(sizes) if sizes else 0
            types[kind] = {"entities": count, "bytes_per_entity": round(mean), "bytes_estimated": round(mean * count)}
        report: dict[str, Any] = {
            "namespace": namespace, "server": health.get("server"), "library_loaded": health.get("library_version"),
            "library_expected": health["library_expected"], "registry_enforced": health.get("registry_version"),
            "lagging_nodes": health.get("lagging_nodes", {}), "types": types,
            "scanned_all": scanned < args.max_keys,
        }
        if args.sidecar:
            report["sidecar"] = _sidecar_rates(args.sidecar)
    if args.json:
        _print_json(report)
        return 0
    print(f"namespace {namespace!r} on {report['server']['name']} {report['server']['version']}: library "
          f"{report['library_loaded'] or 'not loaded'} (this package {report['library_expected']}), registry "
          f"{report['registry_enforced']} enforced" + (f"; behind: {report['lagging_nodes']}" if report["lagging_nodes"] else ""))
    _table("entities per type" + ("" if report["scanned_all"] else f" (the first {args.max_keys} keys scanned)"),
           ["type", "entities", "bytes per entity (sampled)", "bytes (estimated)"],
           [[kind, t["entities"], t["bytes_per_entity"], t["bytes_estimated"]] for kind, t in types.items()])
    if args.sidecar:
        print(f"sidecar {args.sidecar}: {report['sidecar']}")
    return 0


def _sidecar_rates(url: str) -> dict[str, Any]:
    """The hit rate and request count from a sidecar's /metrics (since it started)."""
    from urllib.request import urlopen

    with urlopen(url.rstrip("/") + "/metrics", timeout=5) as response:  # noqa: S310 - an operator's own URL
        text = response.read().decode()

    def total(name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    requested, found = total("fsredis_features_requested_total"), total("fsredis_features_found_total")
    return {"hit_rate": round(found / requested, 4) if requested else None, "features_requested": requested,
            "http_requests": total("fsredis_http_requests_total")}
