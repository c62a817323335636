"""A small HTTP load generator (aiohttp), for machines without wrk: run in its own process.

    python bench/http_load.py URL --seconds 5 --connections 16 [--body JSON]

Prints one JSON line: requests, errors, requests_per_s, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
import numpy as np


async def run(url: str, seconds: float, connections: int, body: str | None) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if body is None:
                response = await session.get(url)
            else:
                response = await session.post(url, data=body, headers=headers)
            await response.read()
            latencies.append(time.perf_counter() - started)
            errors += response.status >= 400

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000.0
    return {"requests": len(ms), "errors": errors, "requests_per_s": len(ms) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--body")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.seconds, args.connections, args.body))))


if __name__ == "__main__":
    main()
