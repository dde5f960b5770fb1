"""Deterministic "model output": what the mock answers, derived only from the request.

A completion echoes the last user message (``"Echo: <words>"``), one word per token.
Token counts are whitespace word counts, so tests can predict every number:

* ``prompt_eval_count`` = words in all message contents (chat) or in system + prompt
  (generate), at least 1;
* ``eval_count`` = number of chunks before the final frame (thinking, content and
  tool-call chunks).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

PieceKind = Literal["thinking", "content"]
DoneReason = Literal["stop", "length"]

_FALLBACK_PLACE = "Berlin"
_PLACE_AFTER = re.compile(r"\b(?:in|for|at)\s+([A-Za-z][\w-]*)")


@dataclass(frozen=True, slots=True)
class Completion:
    """The planned output of one chat or generate request."""

    pieces: tuple[tuple[PieceKind, str], ...]
    tool_calls: tuple[dict[str, Any], ...]
    done_reason: DoneReason
    prompt_eval_count: int

    @property
    def eval_count(self) -> int:
        return len(self.pieces) + (1 if self.tool_calls else 0)

    def text(self, kind: PieceKind) -> str:
        return "".join(piece for piece_kind, piece in self.pieces if piece_kind == kind)


def count_prompt_tokens(texts: Iterable[str]) -> int:
    return max(1, sum(len(text.split()) for text in texts))


def split_tokens(text: str) -> list[str]:
    """Word tokens whose concatenation is ``text``: ``"a b"`` → ``["a", " b"]``."""
    if not text:
        return []
    head, *rest = text.split(" ")
    return [head, *(" " + word for word in rest)]


def echo_text(prompt: str) -> str:
    return " ".join(["Echo:", *prompt.split()])


def forced_tokens(tokens: Sequence[str], count: int) -> list[str]:
    """Exactly ``count`` tokens: ``tokens`` repeated, later rounds space-separated."""
    if not tokens:
        tokens = ["Echo:"]
    out = list(tokens[:count])
    repeat = [" " + token.lstrip(" ") for token in tokens]
    while len(out) < count:
        out.extend(repeat[: count - len(out)])
    return out


def cut_at_stop(tokens: Sequence[str], stops: Sequence[str]) -> tuple[list[str], bool]:
    """Tokens up to (not including) the first stop sequence, and whether one was hit."""
    text = "".join(tokens)
    hits = [text.find(stop) for stop in stops if stop and stop in text]
    if not hits:
        return list(tokens), False
    limit, used, kept = min(hits), 0, []
    for token in tokens:
        if used >= limit:
            break
        kept.append(token[: limit - used])
        used += len(token)
    return kept, True


def plan_completion(
    prompt: str,
    *,
    prompt_eval_count: int,
    think: bool,
    json_format: Mapping[str, Any] | Literal["json"] | None = None,
    tool_call: dict[str, Any] | None = None,
    forced_chunks: int | None = None,
    num_predict: int | None = None,
    stops: Sequence[str] = (),
) -> Completion:
    """Plan the pieces of a reply. ``num_predict`` > 0 caps thinking + content pieces."""
    if tool_call is not None:
        return Completion((), (tool_call,), "stop", prompt_eval_count)
    reply = echo_text(prompt)
    if json_format is not None:
        reply = orjson.dumps(json_value(json_format, reply)).decode()
    content = split_tokens(reply)
    if forced_chunks is not None:
        content = forced_tokens(content, forced_chunks)
    content, _ = cut_at_stop(content, stops)
    thinking = split_tokens("Thinking about: " + " ".join(prompt.split())) if think else []
    pieces: list[tuple[PieceKind, str]] = [("thinking", token) for token in thinking]
    pieces += [("content", token) for token in content]
    reason: DoneReason = "stop"
    if num_predict is not None and 0 < num_predict < len(pieces):
        pieces = pieces[:num_predict]
        reason = "length"
    return Completion(tuple(pieces), (), reason, prompt_eval_count)


def json_value(schema: Mapping[str, Any] | Literal["json"], text: str) -> Any:
    """A value that satisfies ``schema`` (a JSON-schema subset), built from ``text``."""
    if schema == "json" or not isinstance(schema, Mapping):
        return {"echo": text}
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {"echo": text}
        return {
            key: json_value(sub if isinstance(sub, Mapping) else {}, text)
            for key, sub in properties.items()
        }
    return _scalar(kind, text)


def _scalar(kind: object, text: str) -> Any:
    if kind == "integer":
        return len(text.split())
    if kind == "number":
        return float(len(text.split()))
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "null":
        return None
    return text


def pick_tool_call(message: str, tools: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A whole tool call, as Ollama streams it, if ``message`` asks for a tool.

    A message asks for a tool when it names one of them, or mentions "weather" (then
    the first tool with "weather" in its name is called, else the first tool).
    """
    functions = [
        tool["function"]
        for tool in tools
        if isinstance(tool.get("function"), Mapping)
        and isinstance(tool["function"].get("name"), str)
    ]
    if not functions:
        return None
    lowered = message.lower()
    chosen = next((f for f in functions if f["name"].lower() in lowered), None)
    if chosen is None and "weather" in lowered:
        chosen = next((f for f in functions if "weather" in f["name"].lower()), functions[0])
    if chosen is None:
        return None
    return {
        "id": tool_call_id(message),
        "function": {
            "index": 0,
            "name": chosen["name"],
            "arguments": _arguments(chosen.get("parameters"), message),
        },
    }


def tool_call_id(message: str) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    number = int.from_bytes(hashlib.sha256(message.encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        number, index = divmod(number, 36)
        chars.append(alphabet[index])
    return "call_" + "".join(chars)


def _arguments(parameters: object, message: str) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        return {}
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = parameters.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    match = _PLACE_AFTER.search(message)
    place = match.group(1).capitalize() if match else _FALLBACK_PLACE
    arguments: dict[str, Any] = {}
    for name in names:
        schema = properties.get(name)
        arguments[name] = json_value(schema if isinstance(schema, Mapping) else {}, place)
    return arguments


def embedding(seed: str, dimensions: int, *, normalised: bool = True) -> list[float]:
    """A deterministic vector for ``seed``; a shorter one is a prefix of a longer one."""
    raw = hashlib.shake_256(seed.encode()).digest(2 * dimensions)
    vector = [(value - 32767.5) / 32767.5 for value in struct.unpack(f"<{dimensions}H", raw)]
    if not normalised:
        return vector
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def context_ids(texts: Iterable[str]) -> list[int]:
    """Stand-in token ids for generate's deprecated ``context`` field."""
    return [zlib.crc32(word.encode()) % 128_000 for text in texts for word in text.split()]
