"""Render the environment reference and `.env.example` from ``Settings.model_fields``.

    python scripts/gen_env_reference.py           # rewrite docs/ENVIRONMENT.md and .env.example
    python scripts/gen_env_reference.py --check   # exit 1 when either file is stale

The settings module is the only source: names, types, defaults, bounds and descriptions
all come from the pydantic fields, and the section headings from the ``# --- name ---``
comments that group the fields in ``settings.py``. The test suite runs ``--check`` and the
docs build runs it as a MkDocs hook, so neither file can drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AnyHttpUrl, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from neuronetz_gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_REFERENCE = ROOT / "docs" / "ENVIRONMENT.md"
ENV_EXAMPLE = ROOT / ".env.example"
REGENERATE = "python scripts/gen_env_reference.py"

_SECTION = re.compile(r"^\s*# --- ([a-z][a-z ]*?) -+\s*$")
_FIELD = re.compile(r"^    ([a-z][a-z0-9_]*)\s*:")


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str
    default_doc: str
    default_env: str
    bounds: str
    description: str


def sections() -> list[tuple[str, list[str]]]:
    """The fields in source order, grouped under the ``# --- name ---`` comments."""
    groups: list[tuple[str, list[str]]] = [("general", [])]
    for line in inspect.getsource(Settings).splitlines():
        if heading := _SECTION.match(line):
            groups.append((heading.group(1), []))
        elif (field := _FIELD.match(line)) and field.group(1) in Settings.model_fields:
            groups[-1][1].append(field.group(1))
    listed = {name for _, names in groups for name in names}
    missing = [name for name in Settings.model_fields if name not in listed]
    groups.append(("other", missing))
    return [(title, names) for title, names in groups if names]


def _members(annotation: Any) -> tuple[list[Any], bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = list(typing.get_args(annotation))
        optional = type(None) in args
        return [a for a in args if a is not type(None)], optional
    return [annotation], False


def _kind(name: str, annotation: Any) -> str:
    members, optional = _members(annotation)
    base = members[0]
    origin = typing.get_origin(base)
    if origin is typing.Literal:
        text = " \\| ".join(f"`{v}`" for v in typing.get_args(base))
    elif origin is list:
        (item,) = typing.get_args(base)
        if isinstance(item, type) and issubclass(item, BaseModel):
            text = "JSON list"
        else:
            text = "comma-separated IPs or CIDRs"
    elif base is AnyHttpUrl:
        text = "URL"
    elif base is SecretStr:
        text = "secret"
    elif base is bool:
        text = "`true` \\| `false`"
    elif base is int:
        text = "integer"
    elif base is float:
        text = "seconds" if name.endswith("_s") else "number"
    else:
        text = "text"
    return f"{text}, or empty" if optional else text


def _bounds(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _env_value(value: Any, annotation: Any) -> str:
    """The default written the way the environment spells it (what Settings parses back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, AnyHttpUrl):
        return str(value).rstrip("/")
    if isinstance(value, list):
        if _kind("", annotation).startswith("JSON"):
            return json.dumps([v.model_dump(mode="json") for v in value])
        return ",".join(str(v) for v in value)
    return str(value)


def variables() -> list[tuple[str, list[Variable]]]:
    out = []
    for title, names in sections():
        group = []
        for name in names:
            info = Settings.model_fields[name]
            default = _default(info)
            env = _env_value(default, info.annotation)
            group.append(
                Variable(
                    name=name.upper(),
                    kind=_kind(name, info.annotation),
                    default_doc=f"`{env}`" if env else "*(empty)*",
                    default_env=env,
                    bounds=_bounds(info),
                    description=(info.description or "").strip(),
                )
            )
        out.append((title, group))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_reference() -> str:
    lines = [
        "# Environment reference",
        "",
        "<!-- Generated from neuronetz_gateway.settings by scripts/gen_env_reference.py;",
        f"     do not edit by hand. Regenerate with: {REGENERATE} -->",
        "",
        "Every setting is an environment variable (or a line in a `.env` file in the",
        "working directory). Names are case-insensitive. The gateway validates all of them",
        "at start and refuses to boot with a message naming each invalid variable.",
        "An empty value means *none* for the variables whose type says *or empty*",
        "(for the `DEFAULT_*` limits: unlimited).",
        "",
        "This page is generated from the settings class, and a test fails when it is out",
        "of date, so it always matches the code. `.env.example` in the repository root",
        "lists the same variables with their defaults.",
        "",
    ]
    for title, group in variables():
        lines += [f"## {title.capitalize()}", ""]
        lines += ["| Variable | Type | Default | Bounds | Description |", "|---|---|---|---|---|"]
        for var in group:
            lines.append(
                f"| `{var.name}` | {var.kind} | {var.default_doc} | {var.bounds or '–'} "
                f"| {_cell(var.description)} |"
            )
        lines.append("")
    return "\n".join(lines)


def render_env_example() -> str:
    lines = [
        "# neuronetz-gateway configuration: every variable the gateway reads, with its default.",
        f"# Generated by {REGENERATE}; the full reference is docs/ENVIRONMENT.md.",
        "# Copy to .env (or pass as environment variables) and change what you need.",
        "# An empty value means none / unlimited where the reference allows it.",
    ]
    for title, group in variables():
        lines += ["", f"# --- {title} ---"]
        for var in group:
            note = var.description.replace("`", "")
            if var.bounds:
                note = f"{note} ({var.bounds.replace('≥', '>=').replace('≤', '<=')})"
            lines += [f"# {note}", f"{var.name}={var.default_env}"]
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    return {ENV_REFERENCE: render_reference(), ENV_EXAMPLE: render_env_example()}


def stale() -> list[Path]:
    return [
        path
        for path, text in outputs().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def on_pre_build(config: Any) -> None:
    """MkDocs hook: refuse to build docs whose environment reference is out of date."""
    from mkdocs.exceptions import PluginError

    if stale():
        raise PluginError(f"docs/ENVIRONMENT.md or .env.example is stale; run: {REGENERATE}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the environment reference.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale()
        for path in paths:
            print(f"stale: {path.relative_to(ROOT)} (run: {REGENERATE})", file=sys.stderr)
        return 1 if paths else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
