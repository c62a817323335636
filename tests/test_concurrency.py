"""Concurrent writers: versions are exactly 1..N, none lost or doubled."""

from __future__ import annotations

import asyncio
import multiprocessing

from fsredis import AsyncFeatureStore, FeatureStore, FeatureStoreConfig

PROCESSES = 4
WRITES = 150


def _writer(url: str, namespace: str, worker: int) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace, max_versions=10)) as store:
        for i in range(WRITES):
            store.write_features("hot", {"counter": worker * 1000 + i, f"w{worker}": i})


def test_processes_writing_one_feature(server, namespace) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(server.url, namespace, w)) for w in range(PROCESSES)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=10)) as store:
        lineage = store.get_feature_lineage("hot", "counter")
        total = PROCESSES * WRITES
        assert lineage["current_version"] == total
        assert [v["version"] for v in lineage["versions"]] == list(range(total, total - 10, -1))
        assert len({v["write_id"] for v in lineage["versions"]}) == 10
        assert store.get_features("hot", ["counter"])["counter"] == lineage["versions"][0]["value"]
        for worker in range(PROCESSES):
            assert store.get_feature_lineage("hot", f"w{worker}")["current_version"] == WRITES
        timestamps = [v["timestamp"] for v in lineage["versions"]]
        assert timestamps == sorted(timestamps, reverse=True)


async def test_coroutines_writing_one_feature(server, namespace) -> None:
    async with AsyncFeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        await asyncio.gather(*(store.write_features("hot", {"n": i}) for i in range(200)))
        lineage = await store.get_feature_lineage("hot", "n")
        assert lineage["current_version"] == 200
        values = [v["value"] for v in lineage["versions"]]
        assert len(set(values)) == len(values)
