"""Ollama's token log probabilities in the two OpenAI shapes.

Native entries are ``{token, logprob, bytes?, top_logprobs?: [{token, logprob, bytes?}]}``
with zero values omitted.
"""

from __future__ import annotations

from typing import Any, TypedDict


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class CompletionLogprobs(TypedDict):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


def _entries(native: object) -> list[dict[str, Any]]:
    if not isinstance(native, list):
        return []
    return [entry for entry in native if isinstance(entry, dict)]


def _top(entry: dict[str, Any]) -> TopLogprob:
    token = entry.get("token")
    logprob = entry.get("logprob")
    raw_bytes = entry.get("bytes")
    return {
        "token": token if isinstance(token, str) else "",
        "logprob": float(logprob) if isinstance(logprob, int | float) else 0.0,
        "bytes": raw_bytes if isinstance(raw_bytes, list) else None,
    }


def chat_logprobs(native: object) -> list[TokenLogprob]:
    """``choices[].logprobs.content`` of a chat completion."""
    return [
        {**_top(entry), "top_logprobs": [_top(top) for top in _entries(entry.get("top_logprobs"))]}
        for entry in _entries(native)
    ]


def completion_logprobs(native: object, *, text_offset: int = 0) -> CompletionLogprobs:
    """``choices[].logprobs`` of a text completion; offsets count from ``text_offset``."""
    result: CompletionLogprobs = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
    }
    for entry in chat_logprobs(native):
        result["tokens"].append(entry["token"])
        result["token_logprobs"].append(entry["logprob"])
        result["top_logprobs"].append(
            {top["token"]: top["logprob"] for top in entry["top_logprobs"]}
        )
        result["text_offset"].append(text_offset)
        text_offset += len(entry["token"])
    return result
