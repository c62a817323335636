"""The web console (``/ui``) and the routes it reads (``/v1/entities``, ``/v1/registry/history``).

The first tests speak HTTP to the app; the browser tests open the console in headless Chromium
(Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) on a real ``fsredis serve``
over a real Valkey, and read what a person would see. Without Chromium they skip, unless
``FSREDIS_REQUIRE_BROWSER=1`` (``.ci/run`` sets it, after installing both), which fails them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fsredis import FeatureDefinition, FeatureStore, FeatureStoreConfig
from fsredis_server.app import create_app
from fsredis_server.settings import ServerSettings
from tests.conftest import start_server
from tests.test_serve_e2e import Sidecar, wait_for
from tests.test_server import TOKEN, settings_for


async def test_console_files_come_with_a_strict_policy_and_no_token(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, token=TOKEN, protect_reads=True)))
    moved = await client.get("/ui", allow_redirects=False)
    assert moved.status == 308 and moved.headers["Location"] == "/ui/"
    page = await client.get("/ui/")
    assert page.status == 200 and page.content_type == "text/html"
    assert '<script src="console.js" defer></script>' in await page.text()
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        answer = await client.get("/ui/" + name)
        assert answer.status == 200 and answer.content_type == kind and answer.headers["Content-Security-Policy"]
    assert (await client.get("/v1/registry")).status == 401  # the data still needs the token
    for path in ("/ui/nothing.js", "/ui/..%2Fapp.py", "/ui/console", "/ui/.%2E%2Fconsole.py"):
        answer = await client.get(path)
        assert answer.status == 404, path
        assert (await answer.json())["error"]["code"] == "FSNOTFOUND"
    assert (await client.post("/ui/console.js")).status == 405


@pytest.mark.parametrize("token, sent, writes, unlocked", [
    (None, None, False, False),
    (None, TOKEN, False, False),
    (TOKEN, None, True, False),
    (TOKEN, TOKEN + "x", True, False),
    (TOKEN, TOKEN, True, True),
])
async def test_the_console_offers_writes_only_with_the_token(aiohttp_client, server, namespace, token, sent, writes,
                                                            unlocked) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, token=token)))
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    settings = await (await client.get("/ui/config.json", headers=headers)).json()
    assert settings["writes"] is writes and settings["unlocked"] is unlocked
    assert settings["namespace"] == namespace and settings["reads_need_token"] is False


async def test_with_protected_reads_the_console_asks_for_the_token_first(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, token=TOKEN, protect_reads=True)))
    settings = await (await client.get("/ui/config.json")).json()
    assert settings["reads_need_token"] is True and settings["unlocked"] is False
    assert (await client.get("/v1/entities")).status == 401
    assert (await client.get("/v1/registry/history")).status == 401
    assert (await client.get("/v1/entities", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_the_console_can_be_turned_off(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, console=False)))
    assert (await client.get("/ui/")).status == 404
    assert (await client.get("/healthz")).status == 200


async def test_entities_are_listed_by_type_and_glob_within_a_limit(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace)))
    ids = [f"product:{i}" for i in (1, 2, 10, 11, 12)] + ["user:1", "plain"]
    for entity in ids:
        assert (await client.put(f"/v1/features/{entity}", json={"features": {"x": 1}})).status == 200

    async def listed(query: str) -> Any:
        answer = await client.get("/v1/entities" + query)
        return answer.status, await answer.json()

    assert await listed("") == (200, {"entities": sorted(ids), "complete": True})
    assert await listed("?type=product") == (200, {"entities": sorted(ids[:5]), "complete": True})
    assert await listed("?type=product&match=1*") == (200, {"entities": ["product:1", "product:10", "product:11",
                                                                         "product:12"], "complete": True})
    assert await listed("?match=plain") == (200, {"entities": ["plain"], "complete": True})
    status, some = await listed("?type=product&limit=2")
    assert status == 200 and len(some["entities"]) == 2 and some["complete"] is False
    assert set(some["entities"]) <= set(ids[:5])
    # exactly as many as the limit: complete, since no other exists
    assert await listed("?type=product&match=1&limit=1") == (200, {"entities": ["product:1"], "complete": True})
    for query, parameter in (("?limit=0", "limit"), ("?limit=1001", "limit"), ("?limit=x", "limit"),
                             ("?type=no%20such", "type")):
        status, body = await listed(query)
        assert status == 400 and body["error"]["code"] == "FSVALIDATION" and body["error"]["parameter"] == parameter


async def test_listing_entities_on_a_down_redis_is_503_not_500(aiohttp_client, namespace) -> None:
    redis = start_server("valkey")
    try:
        client = await aiohttp_client(create_app(settings_for(redis, namespace)))
        redis.stop()
        answer = await client.get("/v1/entities")
        assert answer.status == 503 and (await answer.json())["error"]["code"] == "FSUNAVAILABLE"
    finally:
        redis.stop()


async def test_entities_are_listed_from_every_primary_of_a_cluster(aiohttp_client, local_cluster, namespace) -> None:
    store = FeatureStoreConfig(redis_url=local_cluster.url, cluster=True, namespace=namespace, retries=0)
    client = await aiohttp_client(create_app(ServerSettings(store=store, check_interval=0.05)))
    ids = [f"product:{i}" for i in range(40)]  # 40 ids hash to slots of all 3 primaries
    rows = "".join(f'{{"entity_id": "{e}", "features": {{"x": 1}}}}\n' for e in ids)
    answer = await client.post("/v1/ingest", data=rows, headers={"Content-Type": "application/x-ndjson"})
    assert (await answer.json())["written"] == 40
    assert await (await client.get("/v1/entities?type=product&limit=1000")).json() == {"entities": sorted(ids),
                                                                                        "complete": True}


async def test_registry_history_newest_first(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace)))
    first = {"groups": {"product": {"price": {"dtype": "float", "min": 0}}}}
    second = {"groups": {"product": {"price": {"dtype": "float", "min": 0}, "name": {"dtype": "string"}}}}
    for registry in (first, second):
        assert (await client.put("/v1/registry", json={"registry": registry, "author": "ops"})).status == 200
    history = (await (await client.get("/v1/registry/history")).json())["history"]
    assert [entry["version"] for entry in history] == [2, 1] and history[0]["by"] == "ops"
    assert [(c["kind"], c["feature"]) for c in history[0]["changes"]] == [("added", "name")]
    assert len((await (await client.get("/v1/registry/history?limit=1")).json())["history"]) == 1
    assert (await client.get("/v1/registry/history?limit=0")).status == 400


# ---- in a real browser -------------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ACCENT = (37, 99, 235)
"""The plot's line colour (console.css --accent)."""
ENTITY = "product:1"
PRICES = [10.0, 12.0, 11.0, 15.0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and DRIVER):
        if os.environ.get("FSREDIS_REQUIRE_BROWSER") == "1":
            pytest.fail("FSREDIS_REQUIRE_BROWSER=1 but chromium or chromedriver is missing "
                        "(apt-get install chromium chromium-driver)")
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Debian's driver: Selenium must not fetch one
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    home = tempfile.mkdtemp(prefix="fsredis-chromium-")  # its profile and temporary files, removed after
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1200",
                     "--disable-gpu", "--no-first-run", f"--user-data-dir={home}/profile"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER, env={**os.environ, "TMPDIR": home}), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A Valkey holding a registered product with 4 prices and 3 embeddings, and ``fsredis
    serve`` with a write token over it."""
    redis = start_server("valkey", data_dir=tmp_path_factory.mktemp("redis"), persistence=True)
    namespace = "console"
    try:
        with FeatureStore(FeatureStoreConfig(redis_url=redis.url, namespace=namespace)) as fs:
            fs.register_features("product", [
                FeatureDefinition(name="price", dtype="float", min=0, description="list price", owner="pricing"),
                FeatureDefinition(name="text_embedding", dtype="embedding", dim=8),
                FeatureDefinition(name="name", dtype="string"),
            ], author="console-test")
            for i, price in enumerate(PRICES):
                features: dict[str, Any] = {"price": price}
                if i < 3:
                    features["text_embedding"] = np.linspace(1, 2, 8, dtype=np.float32) * (1 + i) + i * np.eye(8)[i]
                fs.write_features(ENTITY, features, source=f"etl-{i}")
            fs.write_features(ENTITY, {"name": "<img src=x onerror=alert(1)>", "big": 2**53 + 1})
            fs.write_features("product:2", {"price": 3.0})
        with Sidecar(tmp_path_factory.mktemp("console") / "out.log", "--redis-url", redis.url, "--namespace",
                     namespace, "--workers", "1", FSREDIS_SERVER_TOKEN=TOKEN) as sidecar:
            wait_for(sidecar.port, "/readyz", 200)
            yield {"url": f"http://127.0.0.1:{sidecar.port}/ui/", "redis": redis, "namespace": namespace}
    finally:
        redis.stop()


def _open(browser: Any, url: str, ready_css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")  # a fresh page load each time (the same address again would not reload)
    browser.get(url)
    return WebDriverWait(browser, 15).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ready_css)))


def _wait_for(browser: Any, css: str, text: str | None = None) -> Any:
    """The first element matching ``css`` (and holding ``text``), waiting while pages re-render."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver: Any) -> Any:
        for element in driver.find_elements(By.CSS_SELECTOR, css):
            if text is None or text in element.text:
                return element
        return False

    return WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(found)


def _no_errors(browser: Any) -> None:
    """The page logged no error (a script error, a refused request, a broken policy)."""
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe


def _read(console: dict[str, Any]) -> FeatureStore:
    return FeatureStore(FeatureStoreConfig(redis_url=console["redis"].url, namespace=console["namespace"]))


def test_the_console_shows_an_entity_and_its_values_as_text(browser, console) -> None:
    from selenium.webdriver.common.by import By

    table = _open(browser, console["url"] + "#/entity/" + ENTITY, "#features")
    text = table.text
    assert "price" in text and "15" in text and "float" in text
    assert re.search(r"text_embedding\s+8 dims, norm \d+\.\d{4}: \[", text)
    assert "9007199254740993" in text  # exact past 2^53 (a JavaScript number would say ...992)
    assert "<img src=x onerror=alert(1)>" in text  # shown as text...
    assert not browser.find_elements(By.CSS_SELECTOR, "#features img")  # ...never made an element
    assert "read-only" in browser.find_element(By.ID, "mode").text
    assert not browser.find_elements(By.ID, "put-form")
    assert "ready" in _wait_for(browser, "#status", "library").text
    _no_errors(browser)


def test_entities_are_listed_and_open_on_click(browser, console) -> None:
    from selenium.webdriver.common.by import By

    listing = _open(browser, console["url"] + "#/entities?type=product", "#entity-list")
    assert [a.text for a in listing.find_elements(By.TAG_NAME, "a")] == ["product:1", "product:2"]
    listing.find_element(By.LINK_TEXT, "product:2").click()
    assert "3" in _wait_for(browser, "#features", "price").text
    _no_errors(browser)
    _open(browser, console["url"] + "#/entity/100%", "#view .error")  # a stray % typed in the address
    assert "URI" in browser.find_element(By.CSS_SELECTOR, "#view .error").text


def test_a_lineage_timeline_and_its_plot(browser, console, tmp_path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    _open(browser, console["url"] + f"#/lineage/{ENTITY}/price", "#timeline")
    items = browser.find_elements(By.CSS_SELECTOR, "#timeline > li")
    assert [li.get_attribute("data-version") for li in items] == ["4", "3", "2", "1"]
    assert "current" in items[0].text and "etl-3" in items[0].text and "15" in items[0].text
    assert "etl-0" in items[3].text
    plot = browser.find_element(By.CSS_SELECTOR, "#plots svg")
    assert plot.get_attribute("data-points") == "4" and plot.get_attribute("aria-label") == "value over versions"
    # The screenshot shows the line: pixels of its colour across most of the plot's width.
    browser.save_screenshot(str(tmp_path / "lineage.png"))
    image = Image.open(io.BytesIO(plot.screenshot_as_png)).convert("RGB")
    pixels = np.asarray(image, dtype=np.int16)
    line = (np.abs(pixels - np.array(ACCENT)).sum(axis=2) < 60)
    columns = np.flatnonzero(line.any(axis=0))
    assert line.sum() > 500, line.sum()
    assert columns.size and (columns.max() - columns.min()) > 0.6 * image.width
    # Higher prices are drawn higher: the line's lowest point (largest row) is at version 1 (10.0).
    rows_at = {int(c): int(np.flatnonzero(line[:, c]).mean()) for c in columns}
    leftmost, rightmost = rows_at[int(columns.min())], rows_at[int(columns.max())]
    assert leftmost > rightmost  # 10.0 at the left sits lower than 15.0 at the right
    assert not browser.find_elements(By.CSS_SELECTOR, "button.rollback")  # read-only
    _no_errors(browser)


def test_embeddings_show_norm_and_cosine_to_the_previous_version(browser, console) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, console["url"] + f"#/lineage/{ENTITY}/text_embedding", "#timeline")
    with _read(console) as fs:
        versions = {v["version"]: v["value"] for v in fs.get_feature_lineage(ENTITY, "text_embedding")["versions"]}
    plots = browser.find_elements(By.CSS_SELECTOR, "#plots svg")
    assert [p.get_attribute("aria-label") for p in plots] == ["norm over versions", "cosine to the previous version"]
    assert [p.get_attribute("data-points") for p in plots] == ["3", "2"]
    newest = browser.find_element(By.CSS_SELECTOR, '#timeline > li[data-version="3"]').text
    a, b = versions[2].astype(np.float64), versions[3].astype(np.float64)
    assert f"{np.linalg.norm(b):.4f}" in newest
    assert f"cosine to v2\n{a @ b / np.linalg.norm(a) / np.linalg.norm(b):.4f}" in newest
    _no_errors(browser)


def test_registry_page_shows_definitions_and_their_history(browser, console) -> None:
    from selenium.webdriver.common.by import By

    group = _open(browser, console["url"] + "#/registry", 'table[data-group="product"]')
    rows = {r.find_element(By.TAG_NAME, "td").text: r.text for r in group.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert set(rows) == {"name", "price", "text_embedding"}
    assert "float" in rows["price"] and "list price" in rows["price"] and "pricing" in rows["price"]
    assert "embedding" in rows["text_embedding"] and "8" in rows["text_embedding"]
    history = browser.find_element(By.ID, "registry-history").text
    assert "by console-test" in history and "added product:price" in history
    _no_errors(browser)


def test_health_page_shows_readiness_and_the_main_metrics(browser, console) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, console["url"] + "#/health", "#cards")
    assert "Ready" in browser.find_element(By.ID, "readiness").text
    cards = browser.find_element(By.ID, "cards").text
    assert "Redis\nup" in cards and "hit rate" in cards
    latency = browser.find_element(By.ID, "latency").text
    assert "GET /v1/lineage/{entity}/{feature}" in latency and "ms" in latency
    _no_errors(browser)


def test_writes_need_the_token_then_a_rollback_and_a_correction_go_through_every_check(browser, console) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, console["url"] + f"#/lineage/{ENTITY}/price", "#timeline")
    browser.find_element(By.ID, "token").send_keys("not-the-token-at-all")
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
    _wait_for(browser, ".error", "that token is not valid")
    assert not browser.find_elements(By.CSS_SELECTOR, "button.rollback")
    token = browser.find_element(By.ID, "token")
    token.clear()
    token.send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
    _wait_for(browser, "#mode", "writes unlocked")
    button = _wait_for(browser, 'button.rollback[data-version="1"]')
    button.click()
    browser.switch_to.alert.accept()  # "Write v1's value of price again, as a new version?"
    _wait_for(browser, "#rollback-outcome", "rolled back: v5 has v1's value")
    with _read(console) as fs:
        assert fs.get_features(ENTITY, ["price"]) == {"price": PRICES[0]}
        assert fs.get_feature_lineage(ENTITY, "price")["current_version"] == 5

    _open(browser, console["url"] + "#/entity/" + ENTITY, "#put-form")
    form = browser.find_element(By.ID, "put-form")
    form.find_element(By.NAME, "feature").send_keys("price")
    form.find_element(By.NAME, "value").send_keys("-1")
    form.find_element(By.TAG_NAME, "button").click()
    refused = _wait_for(browser, "#put-outcome .error").text
    assert refused.startswith("FSVALIDATION") and "price" in refused and "min" in refused
    with _read(console) as fs:  # nothing written
        assert fs.get_feature_lineage(ENTITY, "price")["current_version"] == 5
    value = form.find_element(By.NAME, "value")
    value.clear()
    value.send_keys("13.5")
    form.find_element(By.TAG_NAME, "button").click()
    _wait_for(browser, "#put-outcome", "price: version 6 written")
    with _read(console) as fs:
        lineage = fs.get_feature_lineage(ENTITY, "price")
        assert lineage["current_version"] == 6 and lineage["versions"][0]["value"] == 13.5
        assert lineage["versions"][0]["source"] == "console"
    # The refused write logged a 400 on the console: that is the expected answer, not a page error.
    assert all("400" in e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE")
    browser.find_element(By.ID, "lock").click()  # forget the token: read-only again
    _wait_for(browser, "#mode", "read-only")
    assert not browser.find_elements(By.ID, "put-form")
    assert browser.execute_script("return sessionStorage.getItem('fsredis-token')") is None


def test_a_kept_token_that_is_no_longer_valid_is_dropped(browser, console) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, console["url"] + "#/entity/" + ENTITY, "#features")
    browser.execute_script("sessionStorage.setItem('fsredis-token', 'a-token-from-another-day')")
    _open(browser, console["url"] + "#/entity/" + ENTITY, "#features")
    _wait_for(browser, "#mode", "read-only")
    assert not browser.find_elements(By.ID, "put-form")
    assert browser.execute_script("return sessionStorage.getItem('fsredis-token')") is None
    _no_errors(browser)


def test_the_console_survives_a_down_redis(browser, console) -> None:
    """A stopped Redis: pages say what failed (503 FSUNAVAILABLE), nothing hangs, and they work
    again once it is back."""
    redis = console["redis"]
    redis.stop()
    try:
        _open(browser, console["url"] + "#/entity/" + ENTITY, "#view .error")
        assert "FSUNAVAILABLE" in _wait_for(browser, "#view .error").text
        _wait_for(browser, "#status.bad", "not ready")
    finally:
        redis.start()
    _wait_for(browser, "#status.ok", "ready")
    _open(browser, console["url"] + "#/entity/" + ENTITY, "#features")
    assert "13.5" in _wait_for(browser, "#features", "price").text  # the data came back with it (AOF)


def test_the_wheel_ships_the_console(tmp_path) -> None:
    """``pip install fsredis[server]`` gets the console: its files are package data of the wheel."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"  # (a copy: building in the checkout would leave build/ there)
    for name in ("fsredis", "lua", "server"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("fsredis-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    console = Path(__file__).resolve().parent.parent / "server" / "fsredis_server" / "console"
    assert {f"fsredis_server/console/{p.name}" for p in console.iterdir()} <= shipped
    assert {"fsredis/lua/fs_write.lua", "fsredis_server/console.py"} <= shipped
