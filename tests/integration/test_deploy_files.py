"""The deployment files: checked statically where Docker cannot run, and Caddy for real.

Compose files parse and only Caddy publishes ports (the development file: the gateway,
on loopback); the image's final user is not root; `.env.example` names exactly the
settings; the systemd unit verifies; and the example Caddyfile's local `tls internal`
site, run by a real Caddy in front of a real gateway, sets the security headers and
passes the real client address, which the gateway believes from Caddy only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from neuronetz_gateway.db.engine import AsyncSession
from neuronetz_gateway.settings import Settings
from tests.fixtures import free_port
from tests.fixtures.gateway import RunningGateway

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CADDYFILE = DEPLOY / "caddy" / "Caddyfile.example"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.dev.yml", "docker-compose.demo.yml")
PRIVATE_SERVICES = frozenset({"ollama", "mock-ollama", "postgres", "redis"})
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains; preload",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

needs_caddy = pytest.mark.skipif(
    shutil.which("caddy") is None, reason="caddy is not installed (make system-deps)"
)


def compose(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), name
    return data


def published(service: dict[str, Any]) -> list[str]:
    return [
        str(p if not isinstance(p, dict) else p.get("published")) for p in service.get("ports", [])
    ]


# --- Compose -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_parses_and_keeps_private_services_private(name: str) -> None:
    services = compose(name)["services"]
    for service_name, service in services.items():
        assert service.get("network_mode") != "host", f"{name}: {service_name} on host network"
        if service_name in PRIVATE_SERVICES:
            assert "ports" not in service, f"{name}: {service_name} publishes ports"


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.demo.yml"])
def test_only_caddy_publishes_ports(name: str) -> None:
    services = compose(name)["services"]
    publishing = {n for n, s in services.items() if s.get("ports")}
    assert publishing == {"caddy"}


def test_the_development_stack_publishes_the_gateway_on_loopback_only() -> None:
    services = compose("docker-compose.dev.yml")["services"]
    assert {n for n, s in services.items() if s.get("ports")} == {"gateway"}
    for port in published(services["gateway"]):
        assert port.startswith("127.0.0.1:"), port


def test_the_demo_publishes_caddy_on_loopback_only() -> None:
    for port in published(compose("docker-compose.demo.yml")["services"]["caddy"]):
        assert port.startswith("127.0.0.1:"), port


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.demo.yml"])
def test_the_gateway_trusts_x_forwarded_for_from_caddy_only(name: str) -> None:
    data = compose(name)
    services = data["services"]
    caddy_networks = services["caddy"]["networks"]
    (caddy_ip,) = [n["ipv4_address"] for n in caddy_networks.values() if n.get("ipv4_address")]
    trusted = services["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"]
    assert trusted == caddy_ip
    (subnet,) = [
        cfg["subnet"]
        for net in data["networks"].values()
        if net
        for cfg in net.get("ipam", {}).get("config", [])
    ]
    assert ipaddress.ip_address(caddy_ip) in ipaddress.ip_network(subnet)


def test_production_backends_sit_on_an_internal_network() -> None:
    data = compose("docker-compose.yml")
    networks = data["networks"]
    for name in ("postgres", "redis"):
        for network in data["services"][name]["networks"]:
            assert networks[network].get("internal") is True, f"{name} on {network}"
    assert "backend" in data["services"]["ollama"]["networks"]
    assert networks["backend"]["internal"] is True
    gateway_env = data["services"]["gateway"]["environment"]
    assert gateway_env["OLLAMA_BASE_URL"] == "http://ollama:11434"
    assert gateway_env["REDIS_URL"].startswith("redis://redis:")
    assert gateway_env["DATABASE_URL"].startswith("postgresql+asyncpg://")


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    joined = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_is_multi_stage_and_runs_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = stages[-1]
    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    assert any(i == "COPY" and "--from=" in a for i, a in final), "nothing copied from a build"
    entry = " ".join(a for i, a in final if i in ("ENTRYPOINT", "CMD"))
    assert "neuronetz-gateway" in entry and "serve" in entry


# --- .env.example --------------------------------------------------------------------------


def test_env_example_names_exactly_the_settings_and_loads_to_the_defaults() -> None:
    path = ROOT / ".env.example"
    names = [
        line.split("=", 1)[0]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == {name.upper() for name in Settings.model_fields}
    from_file = Settings(_env_file=path)
    defaults = Settings(_env_file=None)
    assert from_file == defaults


# --- systemd -------------------------------------------------------------------------------


def test_systemd_unit_runs_unprivileged_and_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "neuronetz-gateway.service").read_text(encoding="utf-8")
    user = re.search(r"^User=(\S+)$", unit, re.MULTILINE)
    assert user is not None and user.group(1) not in ("root", "0")
    exec_start = re.search(r"^ExecStart=(\S+) serve$", unit, re.MULTILINE)
    assert exec_start is not None
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # Verified as installed: with a gateway executable that exists on this machine.
    binary = shutil.which("neuronetz-gateway", path=str(Path(sys.executable).parent))
    assert binary is not None
    copy = tmp_path / "neuronetz-gateway.service"
    copy.write_text(unit.replace(exec_start.group(1), binary), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [ln for ln in result.stderr.splitlines() if str(copy) in ln]
    assert result.returncode == 0 and not problems, result.stderr


# --- Caddy ---------------------------------------------------------------------------------


@needs_caddy
def test_caddy_validates_the_example(tmp_path: Path) -> None:
    result = subprocess.run(
        ["caddy", "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not formatted" not in result.stderr, "run: caddy fmt --overwrite " + str(CADDYFILE)


def local_site_config(data_dir: Path, http_port: int, https_port: int) -> str:
    """The example without its global options and public site, under test globals."""
    example = CADDYFILE.read_text(encoding="utf-8")
    without_public = re.sub(
        r"# --- production: begin ---\n.*?# --- production: end ---\n", "", example, flags=re.S
    )
    assert without_public != example, "the production markers are missing"
    local = re.sub(r"^\{\n.*?^\}\n", "", without_public, count=1, flags=re.S | re.M)
    assert "tls internal" in local
    return (
        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n"
        f"\tstorage file_system {data_dir}\n}}\n\n{local}"
    )


@pytest.fixture
def caddy_in_front(
    tmp_path: Path, make_gateway: Callable[..., RunningGateway]
) -> Iterator[tuple[str, RunningGateway]]:
    gateway = make_gateway(gateway_trusted_proxies="127.0.0.1/32")
    http_port, https_port = free_port(), free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(local_site_config(tmp_path / "data", http_port, https_port))
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "LOCAL_ADDRESS": f"https://localhost:{https_port}",
        "LOCAL_BIND": "127.0.0.1",
        "GATEWAY_UPSTREAM": gateway.url.removeprefix("http://"),
    }
    log = tmp_path / "caddy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"caddy exited:\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", https_port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"caddy did not listen:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield f"https://localhost:{https_port}", gateway
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def client_ip_of(gateway: RunningGateway, request_id: str) -> str:
    gateway.wait_audit_flushed()

    async def read(session: AsyncSession) -> str:
        row = await session.execute(
            text("SELECT client_ip FROM requests WHERE request_id = :rid"), {"rid": request_id}
        )
        return str(row.scalar_one())

    return gateway.admin.query(read)


# The client connects from 127.0.0.2, so its address differs from Caddy's (127.0.0.1).
CLIENT_ADDRESS = "127.0.0.2"


def client_from(address: str, *, verify: bool = True, timeout: float = 20) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address, verify=verify)
    return httpx.Client(transport=transport, timeout=timeout)


@needs_caddy
@pytest.mark.slow
def test_caddy_local_site_in_front_of_the_gateway(
    caddy_in_front: tuple[str, RunningGateway],
) -> None:
    base, gateway = caddy_in_front
    key = gateway.admin.tenant_and_key("behind-caddy")
    with client_from(CLIENT_ADDRESS, verify=False, timeout=20) as client:
        # A forged X-Forwarded-For from the client must not survive Caddy.
        response = client.get(f"{base}/api/version", headers={"X-Forwarded-For": "203.0.113.7"})
        assert response.status_code == 200, response.text
        assert response.url.scheme == "https"
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, name
        assert "server" not in response.headers
        request_id = response.headers["x-request-id"]

        body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi there"}]}
        with client.stream(
            "POST", f"{base}/api/chat", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "application/x-ndjson"
            lines = [line for line in stream.iter_lines() if line]
        assert '"done":true' in lines[-1]
        chat_id = stream.headers["x-request-id"]

    assert client_ip_of(gateway, request_id) == CLIENT_ADDRESS
    assert client_ip_of(gateway, chat_id) == CLIENT_ADDRESS


@pytest.mark.slow
def test_the_gateway_ignores_x_forwarded_for_from_anyone_but_caddy(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    gateway = make_gateway(gateway_trusted_proxies="127.0.0.1/32")
    with client_from(CLIENT_ADDRESS, timeout=10) as client:
        response = client.get(
            f"{gateway.url}/api/version", headers={"X-Forwarded-For": "203.0.113.7"}
        )
    assert response.status_code == 200
    assert client_ip_of(gateway, response.headers["x-request-id"]) == CLIENT_ADDRESS
