"""Deployment files: alert rules (promtool), the Grafana dashboard, docker-compose and Dockerfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fsredis import FeatureStoreConfig
from fsredis_server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
_METRIC = re.compile(r"\bfsredis_[a-z_]+")


@pytest.mark.skipif(not PROMTOOL, reason="promtool is not installed (.ci/run installs Debian's prometheus)")
def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    check = subprocess.run([PROMTOOL, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check.stdout + check.stderr
    tests = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_the_six_alerts_are_there() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == {
        "FsredisLowHitRate", "FsredisSlowRetrieval", "FsredisRedisConnectionFailures", "FsredisValidationErrors",
        "FsredisDrainStalled", "FsredisChangeLogQuarantine",
    }


async def test_alerts_and_dashboard_use_metrics_the_sidecar_exports(aiohttp_client, server, namespace) -> None:
    settings = ServerSettings(store=FeatureStoreConfig(redis_url=server.url, namespace=namespace), check_interval=0.05)
    client = await aiohttp_client(create_app(settings))
    await client.put("/v1/features/p:1", json={"features": {"x": 1}})
    await client.put("/v1/features/p:1", json={"features": {"x": float("nan")}})  # refused: counts an error
    await client.post("/v1/compute/p:1", json={"raw_data": {"price": 1}})
    await client.get("/v1/features/p:1")
    exported = await (await client.get("/metrics")).text()
    names = {line.split()[2] for line in exported.splitlines() if line.startswith("# TYPE")}
    series = names | {f"{n}_bucket" for n in names} | {f"{n}_total" for n in names} | {f"{n}_info" for n in names}
    used = set(_METRIC.findall((PROMETHEUS / "alerts.yml").read_text()))
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "fsredis-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(_METRIC.findall(target["expr"]))
    assert used and used <= series, used - series


def test_compose_file_runs_redis_with_our_config_and_the_sidecar() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis_service, sidecar = compose["services"]["redis"], compose["services"]["sidecar"]
    assert any(volume.startswith("./redis.conf:") for volume in redis_service["volumes"])
    assert "healthcheck" in redis_service and "healthcheck" in sidecar
    assert sidecar["depends_on"]["redis"]["condition"] == "service_healthy"
    assert sidecar["environment"]["FSREDIS_REDIS_URL"].startswith("redis://redis:")
    assert "/readyz" in " ".join(sidecar["healthcheck"]["test"])
    assert (ROOT / sidecar["build"]["dockerfile"]).is_file()
    tool = _compose_tool()
    if tool:  # validates the file without an engine
        env = {"FSREDIS_SERVER_TOKEN": "x" * 20, "PATH": "/usr/bin:/bin:/usr/local/bin"}
        result = subprocess.run([*tool, "config", "--quiet"], cwd=ROOT, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr


def _compose_tool() -> list[str] | None:
    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) and subprocess.run([*tool, "version"], capture_output=True).returncode == 0:
            return tool
    return None


def test_dockerfile_installs_the_server_extra_and_serves() -> None:
    text = (ROOT / "server" / "Dockerfile").read_text()
    copied = {line.split()[1] for line in text.splitlines() if line.startswith("COPY")}
    assert {"fsredis", "lua", "server", "pyproject.toml"} <= copied
    assert 'pip install --no-cache-dir ".[server]"' in text
    assert 'CMD ["fsredis", "serve"]' in text and "USER fsredis" in text and "/readyz" in text


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_cluster_and_sentinel_compose_files(kind) -> None:
    """deploy/cluster (3+3) and deploy/sentinel (primary, replica, 3 sentinels): the sidecar's
    URL names the nodes its FeatureStoreConfig accepts, and the file is valid compose."""
    from fsredis import FeatureStoreConfig

    path = ROOT / "deploy" / kind / "docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    services = compose["services"]
    env = services["sidecar"]["environment"]
    config = FeatureStoreConfig(redis_url=env["FSREDIS_REDIS_URL"], cluster=env.get("FSREDIS_CLUSTER") == "true")
    if kind == "cluster":
        assert len([name for name in services if name.startswith("node-")]) == 6
        assert "--cluster-replicas 1" in " ".join(services["cluster-init"]["command"])
        assert len(config.startup_nodes()[1]) == 2
    else:
        assert len([name for name in services if name.startswith("sentinel-")]) == 3
        sentinels, master, *_ = config.sentinel_nodes()
        assert len(sentinels) == 3 and f"monitor {master} " in " ".join(services["sentinel-1"]["command"])
    assert (ROOT / "server" / "Dockerfile").is_file()
    tool = _compose_tool()
    if tool:  # validates the file without an engine
        run_env = {"FSREDIS_SERVER_TOKEN": "x" * 20, "PATH": "/usr/bin:/bin:/usr/local/bin"}
        result = subprocess.run([*tool, "-f", str(path), "config", "--quiet"], capture_output=True, text=True, env=run_env)
        assert result.returncode == 0, result.stderr


def test_the_package_ships_its_license() -> None:
    from importlib import metadata

    meta = metadata.metadata("fsredis")
    assert meta.get("License-Expression") == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    shipped = [f for f in metadata.files("fsredis") or [] if f.name == "LICENSE"]
    assert shipped and "MIT License" in shipped[0].read_text()


def test_container_servers_are_opt_in_and_say_why_they_skip(tmp_path) -> None:
    """FSREDIS_TESTCONTAINERS=1 adds redis:7.4, redis:8 and valkey/valkey:8 to the server matrix;
    where no Docker engine answers, their tests skip with the reason (they run where one does)."""
    import os
    import sys

    from tests import containers

    assert containers.IMAGES == ("redis:7.4", "redis:8", "valkey/valkey:8")
    env = {**os.environ, "FSREDIS_TESTCONTAINERS": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_store.py::test_missing_features_and_entities_are_absent",
         "-v", "-rs", "-p", "no:randomly", "-k", "fcall and not async"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    for image in containers.IMAGES:
        assert f"[{image}-" in done.stdout or image in done.stdout, done.stdout[-2000:]
    problem = containers.engine_problem()
    if problem:
        assert "3 skipped" in done.stdout and "Docker engine" in done.stdout, done.stdout[-2000:]
    else:  # pragma: no cover - a machine with an engine
        assert "skipped" not in done.stdout
