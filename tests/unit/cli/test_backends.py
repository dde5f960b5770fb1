"""The OLLAMA_BACKENDS helpers behind add-backend / remove-backend / list-backends."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import dotenv
import pytest

from neuronetz_gateway.cli import backends as edit
from neuronetz_gateway.cli.backends import BackendConfigError
from neuronetz_gateway.settings import BackendSpec, Settings

TOKEN = "s3cr'et\\tok\"en"  # quotes and a backslash: the escaping must hold


def specs() -> list[BackendSpec]:
    return [
        edit.make_spec("embedded", "http://ollama:11434"),
        edit.make_spec(
            "neuro",
            "http://neuro-ollama:11434/",
            token=TOKEN,
            headers=["X-Org=acme", "CF-Access-Client-Secret=cf=secret"],
            scheme="Token",
        ),
        BackendSpec.model_validate({"name": "big", "url": "https://gpu.internal", "parallel": 8}),
    ]


# --- serialise / parse ------------------------------------------------------------------


def test_round_trip() -> None:
    original = specs()
    assert edit.parse(edit.serialize(original)) == original
    assert edit.parse("") == []
    assert edit.parse("  ") == []


def test_serialize_leaves_defaults_out() -> None:
    assert edit.serialize(specs()[:1]) == '[{"name":"embedded","url":"http://ollama:11434"}]'
    neuro = edit.to_dict(specs()[1])
    assert neuro == {
        "name": "neuro",
        "url": "http://neuro-ollama:11434",
        "token": TOKEN,
        "scheme": "Token",
        "headers": {"X-Org": "acme", "CF-Access-Client-Secret": "cf=secret"},
    }
    assert edit.to_dict(specs()[2])["parallel"] == 8


def test_env_line_reads_back_through_dotenv_and_settings(tmp_path: Path) -> None:
    line = edit.env_line(specs())
    assert line.startswith("OLLAMA_BACKENDS='[")
    values = dotenv.dotenv_values(stream=io.StringIO(line + "\n"))
    assert edit.parse(values["OLLAMA_BACKENDS"] or "") == specs()
    env = tmp_path / ".env"
    env.write_text(f"OLLAMA_BASE_URL=http://ignored:1\n{line}\n")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.effective_backends() == specs()
    assert settings.ollama_backends[1].auth_headers()["Authorization"] == f"Token {TOKEN}"


def test_plain_values_need_no_escapes() -> None:
    # Without ' or \ the line is the same for dotenv, docker compose and a POSIX shell.
    line = edit.env_line(specs()[:1])
    assert line == 'OLLAMA_BACKENDS=\'[{"name":"embedded","url":"http://ollama:11434"}]\''


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "OLLAMA_BACKENDS: "),
        ('[{"name":"a"}]', "OLLAMA_BACKENDS: 0.url: Field required"),
        ('[{"name":"a","url":"http://a"},{"name":"a","url":"http://b"}]', "appears twice"),
        ('[{"name":"a b","url":"http://a"}]', "backend names use letters"),
        ('[{"name":"a","url":"http://a","tokn":"x"}]', "0.tokn: Extra inputs"),
        ('[{"name":"a","url":"http://a","headers":{"X:Y":"1"}}]', "must not contain ':'"),
        ('[{"name":"a","url":"http://a","headers":{"X Y":"1"}}]', "or whitespace"),
    ],
)
def test_parse_errors_are_one_line(raw: str, message: str) -> None:
    with pytest.raises(BackendConfigError) as err:
        edit.parse(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "not a url"), "backend 'x': url: "),
        (("bad name", "http://a"), "backend names use letters"),
        (("x", "ftp://a"), "url: URL scheme should be 'http' or 'https'"),
    ],
)
def test_make_spec_validates(args: tuple[str, str], message: str) -> None:
    with pytest.raises(BackendConfigError, match=message.replace("(", r"\(")):
        edit.make_spec(*args)


def test_header_errors_do_not_echo_the_value() -> None:
    with pytest.raises(BackendConfigError) as err:
        edit.make_spec("x", "http://a", headers=["Authorization Bearer sekrit"])
    assert "sekrit" not in str(err.value)
    with pytest.raises(BackendConfigError, match="managed by the gateway"):
        edit.make_spec("x", "http://a", headers=["Host=evil"])


# --- add / replace / remove -------------------------------------------------------------


def test_add_appends_at_lowest_priority() -> None:
    new = edit.make_spec("extra", "http://extra:11434")
    out = edit.add_or_replace(specs(), new)
    assert [s.name for s in out] == ["embedded", "neuro", "big", "extra"]


def test_duplicate_name_is_refused() -> None:
    again = edit.make_spec("neuro", "http://elsewhere:11434")
    with pytest.raises(BackendConfigError, match=r"'neuro' already exists.*--replace"):
        edit.add_or_replace(specs(), again)


def test_replace_keeps_the_place_in_the_order() -> None:
    rotated = edit.make_spec("neuro", "http://neuro-ollama:11434", token="new-token")
    original = specs()
    out = edit.add_or_replace(original, rotated, replace=True)
    assert [s.name for s in out] == ["embedded", "neuro", "big"]
    assert out[1] == rotated
    assert original[1].token is not None  # the input list is not changed
    assert original[1].token.get_secret_value() == TOKEN


def test_replace_of_an_unknown_name_adds_it() -> None:
    new = edit.make_spec("extra", "http://extra:11434")
    assert edit.add_or_replace(specs(), new, replace=True)[-1] == new


def test_remove() -> None:
    assert [s.name for s in edit.remove(specs(), "neuro")] == ["embedded", "big"]
    with pytest.raises(
        BackendConfigError, match=r"no backend named 'nope' \(configured: embedded, neuro, big\)"
    ):
        edit.remove(specs(), "nope")
    with pytest.raises(BackendConfigError, match="only backend"):
        edit.remove(specs()[:1], "embedded")


# --- redaction --------------------------------------------------------------------------


def test_redaction_hides_tokens_and_header_values() -> None:
    shown = edit.redact(specs())
    assert shown[1]["token"] == "***"
    assert shown[1]["headers"] == {"X-Org": "***", "CF-Access-Client-Secret": "***"}
    assert "token" not in shown[0]
    assert shown[1]["scheme"] == "Token"
    line = edit.redacted_line(specs())
    assert "s3cr" not in line
    assert "cf=secret" not in line
    assert "acme" not in line
    assert '"name":"neuro"' in line


# --- the .env file ----------------------------------------------------------------------

LINE = 'OLLAMA_BACKENDS=\'[{"name":"a","url":"http://a:1"}]\''
KEY = edit.ENV_KEY


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_env_file_created_when_missing_with_private_mode(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    assert edit.update_env_file(env, KEY, LINE)
    assert env.read_text() == LINE + "\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_env_file_insert_keeps_everything_else(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# the gateway\nDATABASE_URL=sqlite+aiosqlite:///x.db\nREDIS_URL=")
    os.chmod(env, 0o640)
    assert edit.update_env_file(env, KEY, LINE)
    assert env.read_text() == (
        f"# the gateway\nDATABASE_URL=sqlite+aiosqlite:///x.db\nREDIS_URL=\n{LINE}\n"
    )
    assert stat.S_IMODE(env.stat().st_mode) == 0o640


def test_env_file_replace_in_place(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "A=1\n"
        'export OLLAMA_BACKENDS=\'[\n  {"name": "old", "url": "http://old:1"}\n]\'\n'
        "B=2\n"
        "OLLAMA_BACKENDS=[]\n"  # a later duplicate would win over ours: dropped
        "OLLAMA_BACKENDS_NOTE=kept\n"
    )
    assert edit.update_env_file(env, KEY, LINE)
    assert env.read_text() == f"A=1\nexport {LINE}\nB=2\nOLLAMA_BACKENDS_NOTE=kept\n"
    values = dotenv.dotenv_values(env)
    assert edit.parse(values[KEY] or "")[0].name == "a"


def test_env_file_update_is_idempotent(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"A=1\r\n{LINE}\r\nB=2\r\n")
    before = env.stat()
    assert not edit.update_env_file(env, KEY, LINE)
    after = env.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert edit.update_env_file(env, KEY, LINE.replace("http://a:1", "http://a:2"))
    assert env.read_bytes() == f"A=1\r\n{LINE.replace('a:1', 'a:2')}\r\nB=2\r\n".encode()
    assert not edit.update_env_file(env, KEY, LINE.replace("http://a:1", "http://a:2"))


def test_env_file_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    inode = env.stat().st_ino
    assert edit.update_env_file(env, KEY, LINE)
    assert env.stat().st_ino != inode  # a new file renamed over the old one

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(edit.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        edit.update_env_file(env, KEY, LINE.replace("a:1", "a:9"))
    assert env.read_text() == f"A=1\n{LINE}\n"
    assert leftovers(tmp_path) == []


def test_env_file_symlink_target_is_updated(tmp_path: Path) -> None:
    real = tmp_path / "secrets.env"
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    assert edit.update_env_file(link, KEY, LINE)
    assert link.is_symlink()
    assert real.read_text() == f"A=1\n{LINE}\n"
