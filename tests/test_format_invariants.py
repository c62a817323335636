"""Storage format 2 stays consistent under any sequence of operations.

After random writes (in and out of event order, changed and unchanged values, several
max_versions), rollbacks and deletes, every record is pointed at by exactly as many kept versions
as its reference count says, no record is left that nothing points at, every version of every
feature reads back its value, and versions run 1..N with no gap or repeat.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import NotFound
from fsredis.keys import entity_keys
from tests.conftest import stores_by_max_versions

NAMES = ["a", "b", "c"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.dictionaries(st.sampled_from(NAMES), st.integers(0, 3), min_size=1),
                  st.one_of(st.none(), st.integers(1, 10)), st.sampled_from([1, 2, 3, 10])),
        st.tuples(st.just("rollback"), st.sampled_from(NAMES), st.integers(1, 12), st.sampled_from([2, 10])),
        st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    ),
    min_size=1, max_size=25,
)


def parse(fields: dict[bytes, bytes]) -> tuple[dict[str, Any], dict[int, int]]:
    """Per feature its current head and index entries; per record its reference count."""
    features: dict[str, Any] = {}
    refs: dict[int, int] = {}
    for field, raw in fields.items():
        name = field.decode()
        if name.startswith("#") and name[1:].isdigit():
            refs[int(name[1:])] = struct.unpack_from("<I", raw)[0]
        elif name.endswith("#") and not name.startswith("#"):
            assert len(raw) % 30 == 12, name  # the 12-byte header: top, the newest event time cut
            entries = [[int.from_bytes(raw[at + k : at + k + 6], "little", signed=True) for k in range(0, 30, 6)]
                       for at in range(12, len(raw), 30)]
            features.setdefault(name[:-1], {})["index"] = (int.from_bytes(raw[:6], "little", signed=True), entries)
        elif "#" not in name:
            head = [int.from_bytes(raw[k : k + 6], "little", signed=True) for k in (0, 6, 12, 18)]
            features.setdefault(name, {})["head"] = head
    return features, refs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_records_versions_and_values_stay_consistent(open_store, server, namespace, ops) -> None:
    stores = stores_by_max_versions(open_store, server, namespace)
    store = stores[10]
    store.delete_features("e")
    written: dict[str, list[Any]] = {}  # every version's value, by version - 1 (None: deleted)
    for op in ops:
        if op[0] == "write":
            _, features, event, mv = op
            result = stores[mv].write_features("e", features, event_time=event)
            for name, value in features.items():
                versions = written.setdefault(name, [])
                versions.append(value)
                assert result.versions[name] == len(versions)  # 1..N, no gap, no repeat
        elif op[0] == "rollback":
            _, name, version, mv = op
            try:
                new = stores[mv].rollback_feature("e", name, version)
            except NotFound:
                continue
            written[name].append(written[name][version - 1])
            assert new == len(written[name])
        else:
            if store.delete_features("e", [op[1]]):
                written.pop(op[1], None)
    with server.client() as client:
        fields = client.hgetall(entity_keys(namespace, "e").entity)
    features, refs = parse(fields)
    pointed: dict[int, int] = {}
    for name, parts in features.items():
        if "head" in parts and parts["head"][3]:
            pointed[parts["head"][3]] = pointed.get(parts["head"][3], 0) + 1
        for _, _, _, made, held in parts.get("index", (0, []))[1]:
            for seq in (made, held):
                if seq:  # 0: no record (a version written with max_versions 0)
                    pointed[seq] = pointed.get(seq, 0) + 1
    assert refs == pointed  # every record counts exactly the versions that point at it, no orphan
    for name, values in written.items():
        lineage = store.get_feature_lineage("e", name)
        assert lineage["latest_version"] == len(values)
        for entry in lineage["versions"]:
            assert entry["value"] == values[entry["version"] - 1], (name, entry)
