"""The JSON objects of Ollama's chat and generate responses, chunk by chunk.

Key order and the omission of zero metrics (Go's ``omitempty``) follow Ollama.
Durations are deterministic nanosecond figures in a realistic range, derived from the
token counts; ``created_at`` is the real wall clock, RFC3339Nano in UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson

from neuronetz_gateway.mock_ollama.generation import Completion

LOAD_DURATION_NS = 14_872_302
PROMPT_EVAL_NS_PER_TOKEN = 412_318
EVAL_NS_PER_TOKEN = 11_873_044
OVERHEAD_NS = 1_093_418


@lru_cache(maxsize=4)
def _second_prefix(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def created_at() -> str:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{_second_prefix(seconds)}.{fraction}Z" if fraction else f"{_second_prefix(seconds)}Z"


def metrics(prompt_eval_count: int, eval_count: int) -> dict[str, int]:
    prompt_ns = prompt_eval_count * PROMPT_EVAL_NS_PER_TOKEN
    eval_ns = eval_count * EVAL_NS_PER_TOKEN
    out = {
        "total_duration": LOAD_DURATION_NS + prompt_ns + eval_ns + OVERHEAD_NS,
        "load_duration": LOAD_DURATION_NS,
    }
    if prompt_eval_count:
        out["prompt_eval_count"] = prompt_eval_count
        out["prompt_eval_duration"] = prompt_ns
    if eval_count:
        out["eval_count"] = eval_count
        out["eval_duration"] = eval_ns
    return out


def _line(frame: dict[str, Any]) -> bytes:
    return orjson.dumps(frame, option=orjson.OPT_APPEND_NEWLINE)


def load_chat(model: str, reason: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": created_at(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
    }


def load_generate(model: str, reason: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": created_at(),
        "response": "",
        "done": True,
        "done_reason": reason,
    }


def chat_lines(model: str, completion: Completion) -> Iterator[bytes]:
    """NDJSON lines of a streamed chat; built lazily so ``created_at`` is the send time."""
    for kind, piece in completion.pieces:
        message = {"role": "assistant", "content": piece if kind == "content" else ""}
        if kind == "thinking":
            message["thinking"] = piece
        yield _line({"model": model, "created_at": created_at(), "message": message, "done": False})
    if completion.tool_calls:
        message_with_tools = {
            "role": "assistant",
            "content": "",
            "tool_calls": list(completion.tool_calls),
        }
        yield _line(
            {
                "model": model,
                "created_at": created_at(),
                "message": message_with_tools,
                "done": False,
            }
        )
    yield _line(_final(model, completion, {"message": {"role": "assistant", "content": ""}}))


def chat_whole(model: str, completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.text("content")}
    thinking = completion.text("thinking")
    if thinking:
        message["thinking"] = thinking
    if completion.tool_calls:
        message["tool_calls"] = list(completion.tool_calls)
    return _final(model, completion, {"message": message})


def generate_lines(
    model: str, completion: Completion, context: list[int] | None
) -> Iterator[bytes]:
    for kind, piece in completion.pieces:
        frame: dict[str, Any] = {
            "model": model,
            "created_at": created_at(),
            "response": piece if kind == "content" else "",
        }
        if kind == "thinking":
            frame["thinking"] = piece
        frame["done"] = False
        yield _line(frame)
    yield _line(_final(model, completion, {"response": ""}, context))


def generate_whole(model: str, completion: Completion, context: list[int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"response": completion.text("content")}
    thinking = completion.text("thinking")
    if thinking:
        body["thinking"] = thinking
    return _final(model, completion, body, context)


def _final(
    model: str,
    completion: Completion,
    body: dict[str, Any],
    context: list[int] | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"model": model, "created_at": created_at(), **body}
    frame["done"] = True
    frame["done_reason"] = completion.done_reason
    if context is not None:
        frame["context"] = context
    frame.update(metrics(completion.prompt_eval_count, completion.eval_count))
    return frame
