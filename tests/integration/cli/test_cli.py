"""The CLI as an operator runs it: a real process, on SQLite and on PostgreSQL."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest

CLI = [sys.executable, "-m", "neuronetz_gateway"]


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "ARGON2_MEMORY_COST_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Any) -> dict[str, str]:
    if request.param == "sqlite":
        return _env(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return _env(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_env(tmp_path: Any) -> dict[str, str]:
    # The error paths do not depend on the SQL backend; one is enough (each run is a process).
    return _env(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_transcript(env: dict[str, str]) -> None:
    assert "revision 0002" in run(env, "migrate").stdout
    out = run(env, "create-tenant", "--name", "acme", "--rpm", "120", "--allow-model", "llama3.2")
    assert "created tenant acme" in out.stdout
    created = run(env, "create-key", "--tenant", "acme", "--name", "prod-1")
    key = next(line for line in created.stdout.splitlines() if line.startswith("nz_"))
    assert len(key) == 44 and "shown once" in created.stderr
    listed = run(env, "list-keys", "--tenant", "acme")
    assert key[:12] in listed.stdout and key not in listed.stdout and key[12:] not in listed.stdout
    as_json = json.loads(run(env, "list-keys", "--json").stdout)
    assert as_json[0]["prefix"] == key[:12] and "key" not in as_json[0]
    tenants = json.loads(run(env, "list-tenants", "--json").stdout)
    assert tenants[0]["rpm"] == 120 and tenants[0]["allowed_models"] == ["llama3.2"]
    made = json.loads(run(env, "create-key", "--tenant", "acme", "--name", "k2", "--json").stdout)
    assert made["key"].startswith("nz_") and made["prefix"] == made["key"][:12]
    assert "revoked" in run(env, "revoke-key", "--prefix", key[:12]).stdout
    updated = json.loads(
        run(
            env, "update-tenant", "--name", "acme", "--rpm", "none", "--tpm", "500", "--json"
        ).stdout
    )
    assert updated["rpm"] is None and updated["tpm"] == 500
    assert "disabled" in run(env, "disable-tenant", "--name", "acme").stdout
    assert "enabled" in run(env, "enable-tenant", "--name", "acme").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-tenant", "--name", "acme"], "already exists"),
        (["create-key", "--tenant", "nope", "--name", "k"], "unknown tenant 'nope'"),
        (["create-tenant", "--name", "x", "--rpm", "many"], "--rpm"),
        (["create-tenant", "--name", "bad name!"], "invalid"),
        (
            ["create-key", "--tenant", "acme", "--name", "k", "--expires-in", "3 fortnights"],
            "duration",
        ),
        (["update-tenant", "--name", "acme", "--tpm", "lots"], "whole number"),
        (["revoke-key", "--prefix", "nz_missing00"], "no key with prefix"),
        (["create-tenant"], "Missing option"),
    ],
)
def test_errors_are_one_line(sqlite_env: dict[str, str], args: list[str], message: str) -> None:
    env = sqlite_env
    run(env, "create-tenant", "--name", "acme")
    proc = run(env, *args, ok=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_bad_configuration_is_named(sqlite_env: dict[str, str]) -> None:
    proc = run({**sqlite_env, "DATABASE_URL": "mysql://x"}, "list-keys", ok=False)
    assert proc.returncode == 1 and "DATABASE_URL" in proc.stderr and "Traceback" not in proc.stderr
