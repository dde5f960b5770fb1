"""The documentation builds, its environment reference is current, and its commands work.

Conventions for ``docs/*.md``:

* Every fenced code block names its language.
* A shell block (``bash``, ``sh``, ``shell``) is a script; a ``console`` block is a
  transcript: its ``$ `` lines are the commands (continued by a trailing backslash), the
  other lines their output. Both are run, unless the HTML comment on the line right above
  the opening fence says otherwise:

  ``<!-- docs-test: needs docker -->``   needs Docker / Compose;
  ``<!-- docs-test: needs ollama -->``   needs a real Ollama;
  ``<!-- docs-test: needs systemd -->``  changes a host's system configuration.

  Those are only checked for shell syntax (``bash -n``).
  ``<!-- docs-test: background until=URL -->`` starts the block in the background and waits
  until ``URL`` answers 200; it runs until the end of the page.
* A ``sql`` block runs against the page's SQLite database.

Each page gets a sandbox: a temporary working directory holding copies of ``deploy/`` and
``.env.example``, a fresh SQLite database, cheap Argon2 parameters, free ports, and a key
for an allow-all tenant in ``$NZ_API_KEY``. The texts ``localhost:8080`` and
``localhost:11434`` (or ``127.0.0.1:…``, ``--port 11434``) are rewritten to the sandbox's
ports. Unless the page starts servers itself (a ``background`` block), the sandbox runs
``neuronetz-gateway mock-ollama`` and ``neuronetz-gateway serve`` for it. Blocks run in
page order, each with ``bash -euo pipefail``, and must succeed; the commands of a
transcript run in one shell, and each must succeed unless its shown output starts with
``error:``. A block that sends ``$NZ_API_KEY`` must not be answered as unauthenticated.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.settings import Settings
from tests.fixtures import free_port
from tests.fixtures.gateway import Admin, LoopThread

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
NEEDS = frozenset({"docker", "ollama", "systemd"})
BLOCK_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 30.0
STATUS = "__docs_test_status__"

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    text: str
    marker: str | None

    @property
    def needs(self) -> str | None:
        if self.marker and self.marker.startswith("needs "):
            return self.marker.removeprefix("needs ").strip()
        return None

    @property
    def background_until(self) -> str | None:
        if self.marker and self.marker.startswith("background"):
            match = re.fullmatch(r"background\s+until=(\S+)", self.marker)
            assert match, f"{self.where}: write `background until=URL`"
            return match.group(1)
        return None

    @property
    def runs(self) -> bool:
        return self.language in SHELL_LANGUAGES | {"sql"} and self.needs is None

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"

    @property
    def script(self) -> str:
        """The shell text: the block itself, or a transcript's commands."""
        if self.language != "console":
            return self.text
        return "\n".join(command for command, _ in self.transcript())

    def transcript(self) -> list[tuple[str, bool]]:
        """A console block's commands, each with whether its shown output is an error."""
        steps: list[tuple[str, list[str]]] = []
        lines = iter(self.text.splitlines())
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    command += "\n" + next(lines, "")
                steps.append((command, []))
            elif steps:
                steps[-1][1].append(line)
        assert steps, f"{self.where}: a console block without `$ ` commands"
        return [
            (command, next((ln for ln in out if ln.strip()), "").startswith("error:"))
            for command, out in steps
        ]


def blocks_of(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index].strip())
        if opening is None:
            index += 1
            continue
        fence, language = opening.groups()
        previous = lines[index - 1].strip() if index else ""
        marker = _MARKER.match(previous)
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        blocks.append(
            Block(
                page=path.name,
                line=index + 1,
                language=language,
                text="\n".join(lines[index + 1 : end]),
                marker=marker.group(1) if marker else None,
            )
        )
        index = end + 1
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks_of(page)]


def runnable_pages() -> list[str]:
    return sorted({b.page for b in all_blocks() if b.runs})


# --- the site ------------------------------------------------------------------------------


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    for entry in config["nav"]:
        (page,) = entry.values()
        built = site / ("index.html" if page == "index.md" else Path(page).stem + "/index.html")
        assert built.is_file(), f"{page} was not built"
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text, f"{html} loads web fonts"


def test_environment_reference_is_generated_and_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_env_reference.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    reference = (DOCS / "ENVIRONMENT.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in reference


# --- the blocks ----------------------------------------------------------------------------


def test_every_code_block_names_its_language() -> None:
    unnamed = [b.where for b in all_blocks() if not b.language]
    assert not unnamed, f"code blocks without a language: {unnamed}"


def test_markers_are_known_and_marked_blocks_parse() -> None:
    for block in all_blocks():
        if block.marker is None:
            continue
        assert block.language in SHELL_LANGUAGES, f"{block.where}: marker on a non-shell block"
        if block.needs is not None:
            assert block.needs in NEEDS, f"{block.where}: unknown need {block.needs!r}"
            check = subprocess.run(
                ["bash", "-n"], input=block.script, text=True, capture_output=True
            )
            assert check.returncode == 0, f"{block.where}: {check.stderr}"
        else:
            assert block.background_until is not None, f"{block.where}: {block.marker!r}"


def test_a_console_transcript_is_its_commands_and_their_expected_outcome() -> None:
    text = "$ echo one \\\n  two\none two\n\n$ neuronetz-gateway nope\nerror: no such command"
    block = Block(page="x.md", line=1, language="console", text=text, marker=None)
    assert block.transcript() == [("echo one \\\n  two", False), ("neuronetz-gateway nope", True)]
    assert block.script == "echo one \\\n  two\nneuronetz-gateway nope"


def test_the_convention_finds_blocks_of_every_kind() -> None:
    blocks = all_blocks()
    assert {b.needs for b in blocks} >= NEEDS
    assert any(b.background_until for b in blocks)
    assert any(b.language == "sql" for b in blocks)
    assert len([b for b in blocks if b.runs]) >= 20


@dataclass
class Sandbox:
    root: Path
    database: Path
    env: dict[str, str]
    gateway_port: int
    mock_port: int
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def rewrite(self, text: str) -> str:
        text = re.sub(
            r"\b(?:localhost|127\.0\.0\.1):8080\b", f"127.0.0.1:{self.gateway_port}", text
        )
        text = re.sub(r"\b(?:localhost|127\.0\.0\.1):11434\b", f"127.0.0.1:{self.mock_port}", text)
        return re.sub(r"--port 11434\b", f"--port {self.mock_port}", text)

    def start(self, name: str, command: str, until: str) -> None:
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", self.rewrite(command)],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, proc, log))
        url = self.rewrite(until)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: {url} not 200 in time:\n{log.read_text()}")
            time.sleep(0.1)

    def run(self, block: Block) -> str:
        text = self.rewrite(block.text)
        if block.language == "sql":
            with sqlite3.connect(self.database) as db:
                rows = db.execute(text).fetchall()
            return repr(rows)
        if block.language == "console":
            return self._run_transcript(block)
        output = self._bash(block, ["-euo", "pipefail"], text)
        if "$NZ_API_KEY" in block.text:
            assert "invalid or missing API key" not in output, f"{block.where}: 401\n{output}"
        return output

    def _bash(self, block: Block, flags: list[str], script: str) -> str:
        result = subprocess.run(
            ["bash", *flags, "-c", script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, (
            f"{block.where} failed ({result.returncode}):\n{script}\n--- output ---\n{output}"
            f"{self.logs()}"
        )
        return output

    def _run_transcript(self, block: Block) -> str:
        steps = block.transcript()
        script = "".join(
            f"{self.rewrite(command)}\nprintf '\\n{STATUS} {index} %s\\n' \"$?\"\n"
            for index, (command, _) in enumerate(steps)
        )
        output = self._bash(block, ["-uo", "pipefail"], script)
        statuses = {int(i): int(code) for i, code in re.findall(rf"{STATUS} (\d+) (\d+)", output)}
        for index, (command, fails) in enumerate(steps):
            assert index in statuses, f"{block.where}: `{command}` did not finish\n{output}"
            ok = statuses[index] == 0
            assert ok != fails, (
                f"{block.where}: `{command}` exited {statuses[index]}, but the transcript shows "
                f"{'an error' if fails else 'success'}\n--- output ---\n{output}{self.logs()}"
            )
        return output

    def logs(self) -> str:
        return "".join(
            f"\n--- {name} log ---\n{log.read_text(errors='replace')[-3000:]}"
            for name, _, log in self.processes
        )

    def close(self) -> None:
        for _, proc, _ in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def sandbox(tmp_path: Path, admin_loop: LoopThread) -> Iterator[Sandbox]:
    root = tmp_path / "work"
    root.mkdir()
    shutil.copytree(ROOT / "deploy", root / "deploy")
    shutil.copy(ROOT / ".env.example", root / ".env.example")
    database = tmp_path / "docs.db"
    url = f"sqlite+aiosqlite:///{database}"
    admin_loop.run(upgrade(url))
    key = Admin(url, admin_loop).tenant_and_key("docs-sandbox", allow_all_models=True)
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    gateway_port, mock_port = free_port(), free_port()
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        NZ_API_KEY=key,
        DATABASE_URL=url,
        GATEWAY_BIND_PORT=str(gateway_port),
        OLLAMA_BASE_URL=f"http://127.0.0.1:{mock_port}",
        MODEL_DISCOVERY_REFRESH_S="0.5",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST_KIB="1024",
        ARGON2_PARALLELISM="1",
        NO_COLOR="1",
    )
    box = Sandbox(root, database, env, gateway_port, mock_port)
    try:
        yield box
    finally:
        box.close()


@pytest.mark.slow
@pytest.mark.parametrize("page", runnable_pages())
def test_shell_blocks_run(page: str, sandbox: Sandbox) -> None:
    blocks = [b for b in blocks_of(DOCS / page) if b.runs]
    if any("caddy " in b.text for b in blocks) and shutil.which("caddy") is None:
        pytest.skip("caddy is not installed (make system-deps)")
    if not any(b.background_until for b in blocks):
        sandbox.start(
            "mock-ollama",
            "neuronetz-gateway mock-ollama --port 11434",
            "http://localhost:11434/api/version",
        )
        sandbox.start("gateway", "neuronetz-gateway serve", "http://localhost:8080/readyz")
    for block in blocks:
        until = block.background_until
        if until is not None:
            sandbox.start(f"background-{block.line}", block.text, until)
        else:
            sandbox.run(block)
