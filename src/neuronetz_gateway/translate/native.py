"""Shapes of the native Ollama request bodies this package builds (reference §2).

Only the fields the gateway sets are declared: the bodies are built from scratch, never
copied from the client, so nothing undeclared can reach Ollama. ``keep_alive`` is left
to the gateway, which clamps it to the operator's bounds.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

ThinkValue = bool | Literal["low", "medium", "high", "max"]


class NativeOptions(TypedDict, total=False):
    num_predict: int
    temperature: float
    top_p: float
    seed: int
    frequency_penalty: float
    presence_penalty: float
    stop: list[str]


class NativeToolCallFunction(TypedDict):
    index: int
    name: str
    arguments: dict[str, Any]


class NativeToolCall(TypedDict):
    function: NativeToolCallFunction
    id: NotRequired[str]


class NativeToolFunction(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: NotRequired[dict[str, Any]]


class NativeTool(TypedDict):
    type: Literal["function"]
    function: NativeToolFunction


class NativeMessage(TypedDict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    thinking: NotRequired[str]
    images: NotRequired[list[str]]
    tool_calls: NotRequired[list[NativeToolCall]]
    tool_name: NotRequired[str]
    tool_call_id: NotRequired[str]


class NativeChatBody(TypedDict):
    """Body for ``POST /api/chat``."""

    model: str
    messages: list[NativeMessage]
    stream: bool
    options: NativeOptions
    tools: NotRequired[list[NativeTool]]
    format: NotRequired[str | dict[str, Any]]
    think: NotRequired[ThinkValue]
    logprobs: NotRequired[bool]
    top_logprobs: NotRequired[int]
    keep_alive: NotRequired[str | float]


class NativeGenerateBody(TypedDict):
    """Body for ``POST /api/generate``."""

    model: str
    prompt: str
    stream: bool
    options: NativeOptions
    suffix: NotRequired[str]
    logprobs: NotRequired[bool]
    top_logprobs: NotRequired[int]
    keep_alive: NotRequired[str | float]


class NativeEmbedBody(TypedDict):
    """Body for ``POST /api/embed``."""

    model: str
    input: list[str]
    dimensions: NotRequired[int]
    keep_alive: NotRequired[str | float]
