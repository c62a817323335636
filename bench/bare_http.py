"""The floors of the sidecar bench: bare aiohttp servers answering what the sidecar answers.

    python bench/bare_http.py PORT REDIS_URL {static,hmget}

``static``: GET /v1/features/{entity} answers the same JSON body from a constant (aiohttp alone:
HTTP parsing, routing, the response). ``hmget``: the same after a redis-py asyncio ``HMGET`` of
10 fields, the body made with orjson (aiohttp and redis-py, no feature store, no middleware, no
log line, no metrics). bench/workers.py runs each under the sidecar's load.
"""

from __future__ import annotations

import sys

import orjson
import redis.asyncio
from aiohttp import web

BODY = orjson.dumps({"entity_id": "product:1", "features": {f"f{i}": float(i) for i in range(10)}})
FIELDS = [f"f{i}" for i in range(10)]


def main() -> None:
    port, url, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    client = redis.asyncio.Redis.from_url(url)

    async def static(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    async def hmget(request: web.Request) -> web.Response:
        values = await client.hmget("bare:" + request.match_info["entity"], FIELDS)
        body = orjson.dumps({"entity_id": request.match_info["entity"],
                             "features": {n: float(v) if v is not None else None for n, v in zip(FIELDS, values)}})
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/features/{entity}", static if kind == "static" else hmget)
    app.router.add_get("/readyz", static)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
