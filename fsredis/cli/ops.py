"""Commands for operators: ``fsredis keys`` prints the ``redis-cli`` calls that read and correct
one entity, with its key typed out, so that nobody has to know the key layout."""

from __future__ import annotations

import argparse
import json
import shlex
import uuid
from urllib.parse import urlsplit

from fsredis import FeatureStoreConfig, codec
from fsredis.cli.common import config
from fsredis.keys import entity_keys, log_key


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
    writing = f"2 {key} {shlex.quote(log_key(settings.namespace, keys.slot))}" if settings.change_log else f"1 {key}"
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
