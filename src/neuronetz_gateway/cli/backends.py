"""The ``OLLAMA_BACKENDS`` list as the operator edits it: pure helpers, no Typer, no network.

parse → add_or_replace / remove → serialize → env_line, and ``update_env_file`` to put
the line into a ``.env`` file atomically (a temporary file in the same directory, then
a rename: a reader sees the old file or the new one, never half of one).

A token is unwrapped from its ``SecretStr`` in one place, ``to_dict``, the serialisation
boundary; ``redact`` is what gets shown to people.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from neuronetz_gateway.settings import BackendSpec

ENV_KEY = "OLLAMA_BACKENDS"
REDACTED = "***"
DEFAULT_SCHEME = "Bearer"

_SPECS = TypeAdapter(list[BackendSpec])


class BackendConfigError(ValueError):
    """The edit cannot be made; the message is one line for the operator."""


def _first_error(exc: ValidationError, prefix: str) -> BackendConfigError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return BackendConfigError(f"{prefix}{where + ': ' if where else ''}{msg}")


def check_unique(specs: Sequence[BackendSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise BackendConfigError(f"{ENV_KEY}: backend name {spec.name!r} appears twice")
        seen.add(spec.name)


def parse(raw: str) -> list[BackendSpec]:
    """``OLLAMA_BACKENDS`` JSON → specs (empty or blank: an empty list)."""
    if not raw.strip():
        return []
    try:
        specs = _SPECS.validate_json(raw)
    except ValidationError as exc:
        raise _first_error(exc, f"{ENV_KEY}: ") from None
    check_unique(specs)
    return specs


def to_dict(spec: BackendSpec) -> dict[str, Any]:
    """The JSON object of one backend, defaults left out. Unwraps the token."""
    out: dict[str, Any] = {"name": spec.name, "url": spec.base_url}
    if spec.token is not None and spec.token.get_secret_value():
        out["token"] = spec.token.get_secret_value()
    if spec.scheme != DEFAULT_SCHEME:
        out["scheme"] = spec.scheme
    if spec.headers:
        out["headers"] = dict(spec.headers)
    if spec.parallel is not None:
        out["parallel"] = spec.parallel
    return out


def serialize(specs: Sequence[BackendSpec]) -> str:
    """Compact JSON, the inverse of ``parse``."""
    return _compact([to_dict(s) for s in specs])


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def quote_env(value: str) -> str:
    """Single-quoted for a ``.env`` file, as python-dotenv reads it: only ``\\`` and ``'``
    are escaped. (Without those two characters the line also suits docker compose and
    a POSIX shell, which take single quotes literally.)"""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def env_line(specs: Sequence[BackendSpec]) -> str:
    """The ``OLLAMA_BACKENDS=…`` line, tokens in clear: for the operator's ``.env`` only."""
    return f"{ENV_KEY}={quote_env(serialize(specs))}"


def redact(specs: Sequence[BackendSpec]) -> list[dict[str, Any]]:
    """What may be shown: tokens and header values as ``***``."""
    out = []
    for spec in specs:
        item = to_dict(spec)
        if "token" in item:
            item["token"] = REDACTED
        if "headers" in item:
            item["headers"] = dict.fromkeys(item["headers"], REDACTED)
        out.append(item)
    return out


def redacted_line(specs: Sequence[BackendSpec]) -> str:
    return f"{ENV_KEY}={quote_env(_compact(redact(specs)))}"


def parse_header(text: str) -> tuple[str, str]:
    """``K=V`` → ``(K, V)``; the error does not echo the text (it may be a secret)."""
    name, found, value = text.partition("=")
    if not found or not name.strip():
        raise BackendConfigError("--header: expected NAME=VALUE")
    return name.strip(), value.strip()


def make_spec(
    name: str,
    url: str,
    *,
    token: str | None = None,
    headers: Iterable[str] = (),
    scheme: str = DEFAULT_SCHEME,
) -> BackendSpec:
    """A validated spec from command-line values (``headers`` as ``K=V`` strings)."""
    values: dict[str, Any] = {"name": name, "url": url, "scheme": scheme}
    if token:
        values["token"] = token
    parsed = dict(parse_header(h) for h in headers)
    if parsed:
        values["headers"] = parsed
    try:
        return BackendSpec.model_validate(values)
    except ValidationError as exc:
        raise _first_error(exc, f"backend {name!r}: ") from None


def add_or_replace(
    specs: Sequence[BackendSpec], new: BackendSpec, *, replace: bool = False
) -> list[BackendSpec]:
    """``new`` appended (lowest priority), or put in the place of its namesake with
    ``replace`` (its priority kept). A namesake without ``replace`` is refused."""
    out = list(specs)
    for index, spec in enumerate(out):
        if spec.name == new.name:
            if not replace:
                raise BackendConfigError(
                    f"backend {new.name!r} already exists (use --replace to update it)"
                )
            out[index] = new
            return out
    out.append(new)
    return out


def remove(specs: Sequence[BackendSpec], name: str) -> list[BackendSpec]:
    """The list without ``name``. Unknown names and removing the last backend are refused
    (an empty list would silently fall back to OLLAMA_BASE_URL)."""
    out = [s for s in specs if s.name != name]
    if len(out) == len(specs):
        known = ", ".join(s.name for s in specs) or "none"
        raise BackendConfigError(f"no backend named {name!r} (configured: {known})")
    if not out:
        raise BackendConfigError(f"{name!r} is the only backend; the gateway needs one")
    return out


def _assignment(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(export\s+)?{re.escape(key)}\s*=(.*)$", re.DOTALL)


def _closes(value: str, quote: str) -> bool:
    """Does ``value`` (the text after an opening quote) hold the closing quote?"""
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote:
            return True
    return False


def render_env(text: str, key: str, line: str) -> str:
    """``text`` of a ``.env`` file with ``key`` set by ``line``: the first assignment is
    replaced in place (a quoted value over several lines included), later ones dropped
    (they would win), or ``line`` is appended. Everything else is kept byte for byte."""
    pattern = _assignment(key)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    placed = False
    i = 0
    while i < len(lines):
        match = pattern.match(lines[i].rstrip("\r\n"))
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        value = match.group(2).lstrip()
        if value[:1] in ("'", '"') and not _closes(value[1:], value[0]):
            i += 1  # a multi-line quoted value: skip to the line that closes it
            while i < len(lines) and not _closes(lines[i], value[0]):
                i += 1
        i += 1
        if not placed:
            ending = "\r\n" if lines[i - 1].endswith("\r\n") else "\n"
            out.append((match.group(1) or "") + line + ending)
            placed = True
    if not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(line + "\n")
    return "".join(out)


def read_env_file(path: Path) -> str | None:
    """The file's text with its line endings as they are (``None``: no such file)."""
    try:
        with open(path, encoding="utf-8", newline="") as current:
            return current.read()
    except FileNotFoundError:
        return None


def env_file_would_change(path: Path, key: str, line: str) -> bool:
    old = read_env_file(Path(os.path.realpath(path)))
    return render_env(old or "", key, line) != old


def update_env_file(path: Path, key: str, line: str) -> bool:
    """Set ``key`` in the ``.env`` file at ``path`` (created when missing) atomically.

    Returns False, writing nothing, when the file already says so. The new file keeps
    the old one's mode and owner (0600 for a new file: it holds tokens); a symlink is
    followed, so its target is what changes.
    """
    target = Path(os.path.realpath(path))
    old = read_env_file(target)
    new = render_env(old or "", key, line)
    if new == old:
        return False
    stat = target.stat() if old is not None else None
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as tmp:
            tmp.write(new)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, (stat.st_mode & 0o7777) if stat else 0o600)
        if stat is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp_name, stat.st_uid, stat.st_gid)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return True
