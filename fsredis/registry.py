"""The schema registry operations of the stores: read, change, diff and apply the registry.

Mixed into the stores' shared operations (fsredis/client.py): each public method runs a generator
of requests through the store's executor, as every operation does there. A change is read, diffed
(fsredis/schema.py), refused when it would break stored data, stored by ``fs_registry_put`` (an
optimistic version check makes concurrent changes safe), and compiled into the Lua library, which
is reloaded so that every writer obeys it at once.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fsredis import codec, commands, schema
from fsredis.commands import Call, Command, KeyScan, Operation
from fsredis.config import FeatureStoreConfig
from fsredis.errors import NotFound, RegistryConflict, SchemaError, ValidationError
from fsredis.keys import REGISTRY_INDEX, EntityKeys, check_group, entity_pattern, registry_keys
from fsredis.schema import Change, FeatureDefinition, Registry

REGISTRY_ATTEMPTS = 5
VIOLATION_CHUNK = 500
"""Entities read per call when checking a registry change against stored values."""
Progress = Callable[[str, int, int], None]
"""``progress(feature, checked, total)``: called as stored values are checked against a change."""
"""Times a registry change or library load is redone when the registry changed meanwhile."""


def default_author() -> str:
    """Who a registry change is recorded as, unless told: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class RegistryOperations:
    """The registry methods of FeatureStore and AsyncFeatureStore."""

    config: FeatureStoreConfig

    if TYPE_CHECKING:  # provided by the stores' shared operations (fsredis/client.py)

        def _run(self, operation: str, steps: Operation) -> Any: ...

        def _send(self, request: Call | Command) -> Operation: ...

        def _send_many(self, calls: list[Call]) -> Operation: ...

        def _plain(self, request: Any) -> Operation: ...

        def _load_library(self, only_if_changed: bool = False) -> Operation: ...

    def get_registry(self) -> Any:
        """This namespace's :class:`~fsredis.schema.Registry` as stored in Redis; stored
        definitions that cannot be read are in its ``broken`` (writes of them are refused)."""
        return self._run("get_registry", self._registry(tolerant=True))

    def _registry(self, tolerant: bool = False, send: Any = None) -> Operation:
        raw = yield from (send or self._send)(Command(("HGETALL", registry_keys(self.config.namespace).definitions)))
        return Registry.from_hash(raw, tolerant)

    def list_features(self, entity_type: str | None = None) -> Any:
        """The registered definitions (of one entity type), ordered by type and name."""
        return self._run("list_features", self._list_features(entity_type))

    def _list_features(self, entity_type) -> Operation:  # type: ignore[no-untyped-def]
        return (yield from self._registry()).definitions(entity_type)

    def get_feature_definition(self, entity_type: str, feature_name: str) -> Any:
        """The registered definition of one feature; NotFound when there is none."""
        return self._run("get_feature_definition", self._definition(entity_type, feature_name))

    def _definition(self, entity_type, name) -> Operation:  # type: ignore[no-untyped-def]
        definition = (yield from self._registry()).get(entity_type, name)
        if definition is None:
            raise NotFound(name, "unregistered", f"entity type {entity_type} has no definition of it")
        return definition

    def register_features(
        self,
        entity_type: str,
        definitions: Iterable[FeatureDefinition | Mapping[str, Any]],
        *,
        force: bool = False,
        author: str | None = None,
        sample: int | None = None,
        progress: Progress | None = None,
    ) -> Any:
        """Add or replace definitions of ``entity_type``'s features (others stay). Writes are
        checked against them as soon as this returns. Refused with SchemaError (nothing changed)
        unless ``force``: a definition that stored values of the type would break (the count and
        an example are in the message; ``sample`` checks at most that many entities per feature,
        ``progress(feature, checked, total)`` is called as they are checked), and a change of
        dtype (or item dtype, embedding dim or precision) of a feature that has history.
        Returns the changes made (an empty list when nothing changed)."""
        defs = list(definitions)
        return self._run("register_features", self._change_registry(
            lambda current: schema.with_definitions(current, entity_type, defs), force, author, sample, progress))

    def unregister_features(self, entity_type: str, feature_names: Iterable[str], *, author: str | None = None) -> Any:
        """Remove definitions (stored values stay; a strict namespace then refuses new writes).
        Returns the changes made."""
        names = commands.check_names(feature_names)
        return self._run("unregister_features", self._change_registry(
            lambda current: schema.without_definitions(current, entity_type, names), False, author))

    def set_strict(self, strict: bool, *, author: str | None = None) -> Any:
        """Turn strict mode on (features without a definition are refused) or off."""
        if not isinstance(strict, bool):
            raise TypeError("strict is True or False")
        return self._run("set_strict", self._change_registry(
            lambda current: Registry(current.groups, strict, current.version, current.broken), False, author))

    def diff_registry(self, desired: Registry) -> Any:
        """The changes ``apply_registry(desired)`` would make, marked ``breaking`` where data of a
        changed feature would no longer fit."""
        return self._run("diff_registry", self._diff(desired))

    def _diff(self, desired: Registry) -> Operation:
        return schema.diff((yield from self._registry()), desired)

    def apply_registry(
        self, desired: Registry, *, force: bool = False, author: str | None = None,
        sample: int | None = None, progress: Progress | None = None,
    ) -> Any:
        """Make this namespace's registry equal to ``desired`` (e.g. ``Registry.load("features.yaml")``):
        definitions are added, changed and removed, ``strict`` set. Refused (SchemaError, nothing
        changed) when stored values would break a definition or a breaking change hits a feature
        that has data, unless ``force`` (see ``register_features`` for ``sample`` and ``progress``).
        Returns the changes made."""
        if not isinstance(desired, Registry):
            raise TypeError("apply_registry takes a Registry (Registry.load(path) reads a YAML file)")
        return self._run("apply_registry", self._change_registry(lambda _: desired, force, author, sample, progress))

    def registry_history(self, limit: int = 20) -> Any:
        """The newest ``limit`` registry changes, newest first: ``{"version", "at", "by", "changes"}``
        (``at`` in seconds since the epoch)."""
        return self._run("registry_history", self._history(limit))

    def _history(self, limit: int) -> Operation:
        log = registry_keys(self.config.namespace).log
        entries = yield from self._send(Command(("XREVRANGE", log, "+", "-", "COUNT", int(limit))))
        out = []
        for entry_id, fields in entries:
            values = {k.decode(): v.decode() for k, v in fields.items()}
            out.append({
                "version": int(values["version"]),
                "at": int(entry_id.split(b"-")[0]) / 1000.0,
                "by": values["by"],
                "changes": json.loads(values["changes"]),
            })
        return out

    def _change_registry(
        self, make: Any, force: bool, author: str | None, sample: int | None = None, progress: Progress | None = None
    ) -> Operation:
        """Read the registry, work out the change, refuse breaking ones on features with data,
        store it (optimistically: redone when someone changed the registry meanwhile), reload."""
        keys = registry_keys(self.config.namespace)
        checked: dict[tuple[str, str, str], str | None] = {}  # stored values are read once, not per attempt
        for _ in range(REGISTRY_ATTEMPTS):
            current = yield from self._registry(tolerant=True)
            desired = make(current)
            changes: list[Change] = schema.diff(current, desired)
            for key, why in sorted(current.broken.items()):  # unreadable: replaced, or removed
                group, _, name = key.partition(":")
                if desired.get(group, name) is None and key not in desired.broken:
                    changes.append(Change("removed", group, name, {"broken": why}, None))
            if not changes:
                return []
            breaking = [c for c in changes if c.breaking]
            if breaking and not force:
                used = yield from self._with_data(breaking)
                if used:
                    raise SchemaError(
                        "refused, these features have data that would no longer fit: "
                        + "; ".join(f"{c.group}:{c.feature} ({c.breaking})" for c in used)
                        + ". Write them under new names, delete their data, or force the change."
                    )
            if not force:
                violated = yield from self._violations(changes, sample, progress, checked)
                if violated:
                    raise SchemaError(
                        "refused, stored values would break these definitions: " + "; ".join(violated)
                        + ". Fix or delete the data, change the definition, or force the change."
                    )
            stored = desired.fields()  # a removed feature has none: "" removes it
            fields = {f"{c.group}:{c.feature}": stored.get(f"{c.group}:{c.feature}", "") for c in changes if c.kind != "strict"}
            call = commands.registry_put(
                keys, self.config.namespace, current.version, author or default_author(),
                json.dumps([c.to_dict() for c in changes]), desired.strict, fields,
            )
            try:
                yield from self._send(call)
            except RegistryConflict:
                continue
            yield from self._load_library()
            return changes
        raise RegistryConflict(f"the registry kept changing during {REGISTRY_ATTEMPTS} attempts; try again")

    def _with_data(self, changes: list[Change]) -> Operation:
        """The changes whose feature has a value or older versions in some entity of its type."""
        used = []
        for change in changes:
            pattern = entity_pattern(self.config.namespace, change.group)
            keys = yield from self._plain(KeyScan(pattern))
            for i in range(0, len(keys), 500):
                found = yield from self._plain([
                    ("HEXISTS", key, field) for key in keys[i : i + 500] for field in (change.feature, change.feature + "#")
                ])
                if any(r == 1 for r in found):
                    used.append(change)
                    break
        return used

    def _violations(
        self, changes: list[Change], sample: int | None, progress: Progress | None,
        checked: dict[tuple[str, str, str], str | None],
    ) -> Operation:
        """For each added or changed definition, how many current values of its feature (over the
        entities of its type, at most ``sample`` of them) it would refuse, and the first one.
        ``checked`` keeps the verdicts already reached (an attempt redone after a conflict)."""
        found = []
        for change in changes:
            if change.after is None or change.kind == "strict":
                continue
            seen = (change.group, change.feature, json.dumps(change.after, sort_keys=True))
            if seen in checked:
                if checked[seen]:
                    found.append(checked[seen])
                continue
            definition = FeatureDefinition.from_dict(change.feature, change.after)
            prefix = f"{self.config.namespace}:{check_group(change.group)}:"
            keys = yield from self._plain(KeyScan(prefix + "{*}:e", sample))  # the first `sample` found
            count, example = 0, ""
            for start in range(0, len(keys), VIOLATION_CHUNK):
                chunk = [key.decode(errors="replace") for key in keys[start : start + VIOLATION_CHUNK]]
                ids = [change.group + ":" + key[len(prefix) + 1 : -3] for key in chunk]
                entities = [EntityKeys(k) for k in chunk]
                groups = commands.batch_groups(ids, entities, self.config.cluster)
                replies = yield from self._send_many([commands.get_batch(k, [change.feature]) for _, k in groups])
                for (group_ids, _), reply in zip(groups, replies):
                    if isinstance(reply, Exception):
                        raise reply
                    for entity_id, (field,) in zip(group_ids, reply[1:]):
                        raw = codec.live(field, reply[0])
                        if raw is None:
                            continue
                        raw = bytes(raw)
                        try:
                            definition.validate_encoded(raw)
                        except (ValidationError, ValueError, IndexError) as exc:  # unreadable counts too
                            count += 1
                            example = example or f"{entity_id}: {exc}"
                if progress is not None:
                    progress(f"{change.group}:{change.feature}", min(start + VIOLATION_CHUNK, len(keys)), len(keys))
            checked[seen] = f"{change.group}:{change.feature}: {count} value(s), e.g. {example}" if count else None
            if count:
                found.append(checked[seen])
        return found

    def _registries(self) -> Operation:
        """Every namespace's registry on the server (what the library must enforce)."""
        names = sorted(n.decode() for n in (yield from self._plain(("SMEMBERS", REGISTRY_INDEX))))
        replies = (yield from self._plain([("HGETALL", registry_keys(ns).definitions) for ns in names])) if names else []
        return {ns: Registry.from_hash(raw, tolerant=True) for ns, raw in zip(names, replies)}


def versions(registries: Mapping[str, Registry]) -> dict[str, int]:
    """Namespace -> registry version."""
    return {ns: registry.version for ns, registry in registries.items()}
