"""Token counts from Ollama's final frame, in OpenAI's ``usage`` shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypedDict


class TokenUsage(NamedTuple):
    """What a request consumed: ``prompt_eval_count`` and ``eval_count``."""

    prompt: int
    completion: int


class UsageBody(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _count(native: Mapping[str, Any], key: str) -> int:
    # The counters are omitempty on Ollama's side: missing means zero.
    value = native.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def usage_from_native(native: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(_count(native, "prompt_eval_count"), _count(native, "eval_count"))


def usage_body(usage: TokenUsage) -> UsageBody:
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
    }
