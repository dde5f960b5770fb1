"""Parsing and checking of tenant and key values given by operators. Pure functions."""

from __future__ import annotations

import re
from datetime import timedelta

LIMIT_FIELDS = ("rpm", "tpm", "concurrent", "daily_budget", "monthly_budget", "total_budget")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLEAR_WORDS = frozenset({"none", "null", "unlimited", "inherit", "-"})
MAX_LIMIT = 2**53


class InvalidValue(ValueError):
    """An operator-supplied value that the store must not accept."""


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise InvalidValue(
            f"{kind} name {value!r} is invalid: use 1-64 letters, digits, '.', '_', '@' or '-'"
        )
    return value


# rpm, tpm and concurrent are 32-bit columns; budgets are 64-bit.
_MAX_BY_FIELD = {"rpm": 2**31 - 1, "tpm": 2**31 - 1, "concurrent": 2**31 - 1}


def check_limit(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    top = _MAX_BY_FIELD.get(field.replace("-", "_"), MAX_LIMIT)
    if value < 0 or value > top:
        raise InvalidValue(f"{field} must be between 0 and {top} (got {value})")
    return value


def parse_limit(field: str, text: str) -> int | None:
    """``"120"`` → 120; ``"none"``/``"unlimited"``/``"inherit"`` → None (clears the value)."""
    cleaned = text.strip().lower().replace("_", "")
    if cleaned in _CLEAR_WORDS:
        return None
    try:
        return check_limit(field, int(cleaned))
    except ValueError as exc:
        if isinstance(exc, InvalidValue):
            raise
        raise InvalidValue(f"{field} must be a whole number or 'none' (got {text!r})") from None


def parse_limit_changes(*values: str | None) -> dict[str, int | None]:
    """Operator-given limit options in ``LIMIT_FIELDS`` order, parsed; unset ones left out."""
    return {
        name: parse_limit(name.replace("_", "-"), text)
        for name, text in zip(LIMIT_FIELDS, values, strict=True)
        if text is not None
    }


def parse_seconds_or_none(option: str, text: str) -> float | None:
    """``"12.5"`` → 12.5; ``"none"`` → None (use the setting)."""
    cleaned = text.strip().lower()
    if cleaned in _CLEAR_WORDS:
        return None
    try:
        return float(cleaned)
    except ValueError:
        raise InvalidValue(f"{option} must be a number of seconds or 'none'") from None


def parse_duration(text: str) -> timedelta:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"45s"`` → a positive timedelta."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise InvalidValue(f"duration {text!r} is invalid: use e.g. 30d, 12h, 15m, 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def check_models(models: list[str]) -> list[str]:
    out: list[str] = []
    for model in models:
        name = model.strip()
        if not name or len(name) > 256 or any(c.isspace() or ord(c) < 32 for c in name):
            raise InvalidValue(f"model name {model!r} is invalid")
        if name not in out:
            out.append(name)
    return out
