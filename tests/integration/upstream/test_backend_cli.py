"""The backend commands, run as the operator runs them, against mock Ollamas."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dotenv
import pytest

from neuronetz_gateway.cli import backends as edit
from neuronetz_gateway.cli.main import main
from neuronetz_gateway.mock_ollama import MockOllamaThread

DEAD = "http://127.0.0.1:9"


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out, err = self.capsys.readouterr()
        return int(done.value.code or 0), out, err


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    trio: list[MockOllamaThread],
) -> Cli:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("OLLAMA_BACKENDS", "OLLAMA_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_BASE_URL", trio[0].url)
    return Cli(capsys)


def backends_in(line: str) -> list[dict[str, object]]:
    value = dotenv.dotenv_values(stream=io.StringIO(line))["OLLAMA_BACKENDS"]
    return [edit.to_dict(s) for s in edit.parse(value or "")]


def test_add_backend_probes_with_the_gateways_headers_and_prints_the_line(
    cli: Cli, trio: list[MockOllamaThread]
) -> None:
    b = trio[1]
    b.configure(require_token="T0K")
    code, out, err = cli("add-backend", "gpu2", b.url, "--token", "T0K", "--header", "X-Org=acme")
    assert code == 0, err
    assert "probe: gpu2 answers, 3 models" in err
    assert backends_in(out) == [
        {"name": "default", "url": trio[0].url},
        {"name": "gpu2", "url": b.url, "token": "T0K", "headers": {"X-Org": "acme"}},
    ]
    (probe,) = b.requests
    assert probe["path"] == "/api/tags"
    assert probe["headers"]["authorization"] == "Bearer T0K"
    assert probe["headers"]["x-org"] == "acme"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add-backend", "gpu2", DEAD), "failed the probe of http://127.0.0.1:9/api/tags"),
        (("add-backend", "default", "http://x:1", "--no-validate"), "'default' already exists"),
        (("add-backend", "bad name", "http://x:1"), "backend names use letters"),
        (("add-backend", "x", "http://x:1", "--header", "nope"), "expected NAME=VALUE"),
        (("remove-backend", "nope"), "no backend named 'nope'"),
        (("remove-backend", "default"), "the only backend"),
    ],
)
def test_refusals_are_one_line_without_a_traceback(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(*args)
    assert code == 1
    assert out == ""
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_bad_ollama_backends_variable_is_named(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_BACKENDS", '[{"name": "a"}]')
    code, _, err = cli("list-backends")
    assert code == 1
    assert "OLLAMA_BACKENDS" in err
    assert "Traceback" not in err


def test_write_env_dry_run_and_list(cli: Cli, trio: list[MockOllamaThread], tmp_path: Path) -> None:
    env = tmp_path / "gateway.env"
    env.write_text("DATABASE_URL=sqlite+aiosqlite:///g.db\n")
    b, c = trio[1], trio[2]
    code, out, err = cli("add-backend", "b", b.url, "--token", "sekrit", "--write-env", str(env))
    assert (code, out) == (0, "")
    assert "wrote OLLAMA_BACKENDS" in err
    assert "sekrit" not in err
    code, out, err = cli("add-backend", "c", c.url, "--write-env", str(env), "--dry-run")
    assert code == 0
    assert "would change" in err
    assert '"name":"c"' in out
    assert "sekrit" not in out
    assert "***" in out
    assert [b["name"] for b in backends_in(env.read_text())] == ["default", "b"]
    code, out, _ = cli("add-backend", "c", c.url, "--write-env", str(env))
    code, out, err = cli("add-backend", "c", c.url, "--write-env", str(env), "--replace")
    assert "unchanged" in err
    code, out, _ = cli("list-backends", "--env-file", str(env), "--json")
    assert json.loads(out) == [
        {"name": "default", "url": trio[0].url},
        {"name": "b", "url": b.url, "token": "***"},
        {"name": "c", "url": c.url},
    ]
    code, out, _ = cli("list-backends", "--env-file", str(env))
    assert "sekrit" not in out
    assert "Bearer ***" in out
    code, _, err = cli("remove-backend", "default", "--write-env", str(env))
    assert code == 0
    text = env.read_text()
    assert text.startswith("DATABASE_URL=sqlite+aiosqlite:///g.db\nOLLAMA_BACKENDS=")
    assert [b["name"] for b in backends_in(text)] == ["b", "c"]


def test_probe_ollama_and_list_models(
    cli: Cli, trio: list[MockOllamaThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _ = trio
    b.configure(models=["qwen2.5:0.5b", "mistral:7b"])
    specs = [
        edit.make_spec("a", a.url),
        edit.make_spec("b", b.url),
        edit.make_spec("gone", DEAD),
    ]
    monkeypatch.setenv("OLLAMA_BACKENDS", edit.serialize(specs))
    code, out, _ = cli("probe-ollama", "--json", "--timeout", "2")
    assert code == 1  # one backend is down
    status = {r["name"]: (r["reachable"], r["models"], r["error"]) for r in json.loads(out)}
    assert status == {
        "a": (True, 3, None),
        "b": (True, 2, None),
        "gone": (False, 0, "cannot connect (connection refused)"),
    }
    code, out, _ = cli("list-models")
    assert code == 0
    assert out.splitlines() == [
        "a: 3 models",
        "  llama3.2:latest",
        "  qwen2.5:0.5b",
        "  nomic-embed-text:latest",
        "b: 2 models",
        "  qwen2.5:0.5b",
        "  mistral:7b",
        "gone: unreachable (cannot connect (connection refused))",
        "union: 4 models from 2 of 3 backends",
    ]
    monkeypatch.setenv("OLLAMA_BACKENDS", edit.serialize(specs[:2]))
    code, out, _ = cli("probe-ollama")
    assert code == 0
    assert "ok" in out
