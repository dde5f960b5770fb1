"""What ``/v1/chat/completions`` and ``/v1/completions`` read alike: the output bound,
the sampling options, streaming flags and the fields both refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.fields import (
    read_bool,
    read_int,
    read_number,
    read_object,
)
from neuronetz_gateway.translate.native import NativeOptions

BodyT = TypeVar("BodyT")


@dataclass(frozen=True, slots=True)
class NativeRequest(Generic[BodyT]):
    """A translated request: the native body to send, and what the response side needs.

    ``num_predict`` is the bound on generated tokens that the body carries; the gateway
    reserves it (plus its prompt estimate) against the tenant's limits before sending.
    """

    body: BodyT
    model: str
    stream: bool
    include_usage: bool
    num_predict: int


def read_num_predict(
    body: Mapping[str, Any], keys: tuple[str, ...], *, max_num_predict: int
) -> int:
    """The output bound from the first-class token limit fields in ``keys``.

    Every value must lie in ``[1, max_num_predict]``. Several limits are all upper
    bounds, so the smallest one satisfies them all. With none, the cap itself is the
    bound: Ollama's default (-1) is unlimited and the gateway must always bound output.
    """
    limits: list[int] = []
    for key in keys:
        value = read_int(body, key, minimum=1)
        if value is None:
            continue
        if value > max_num_predict:
            raise BadRequest(
                f"'{key}' = {value} exceeds this gateway's limit of {max_num_predict} tokens",
                param=key,
            )
        limits.append(value)
    return min(limits, default=max_num_predict)


def read_stop(body: Mapping[str, Any]) -> list[str] | None:
    value = body.get("stop")
    if value is None:
        return None
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise BadRequest("'stop' must be a string or an array of strings", param="stop")
    # An empty stop string would match at every position and end generation at once.
    return [item for item in items if item] or None


def sampling_options(body: Mapping[str, Any], *, num_predict: int) -> NativeOptions:
    """``options`` for Ollama from the sampling fields both endpoints share.

    ``temperature`` and ``top_p`` default to 1.0 (OpenAI's defaults, and what Ollama's
    own ``/v1`` layer sends), overriding the Modelfile, so a request means the same thing
    whichever model serves it. Penalties and ``seed`` are sent only when given.
    """
    options: NativeOptions = {"num_predict": num_predict}
    temperature = read_number(body, "temperature", minimum=0, maximum=2)
    options["temperature"] = 1.0 if temperature is None else temperature
    top_p = read_number(body, "top_p", minimum=0, maximum=1)
    options["top_p"] = 1.0 if top_p is None else top_p
    seed = read_int(body, "seed")
    if seed is not None:
        options["seed"] = seed
    frequency_penalty = read_number(body, "frequency_penalty", minimum=-2, maximum=2)
    if frequency_penalty is not None:
        options["frequency_penalty"] = frequency_penalty
    presence_penalty = read_number(body, "presence_penalty", minimum=-2, maximum=2)
    if presence_penalty is not None:
        options["presence_penalty"] = presence_penalty
    stop = read_stop(body)
    if stop is not None:
        options["stop"] = stop
    return options


def read_stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(stream, include_usage)``; ``stream`` defaults to false as in OpenAI's API.

    ``stream_options`` is type-checked always but only matters when streaming: a
    non-streamed response always carries ``usage``.
    """
    stream = read_bool(body, "stream") or False
    stream_options = read_object(body, "stream_options") or {}
    include_usage = read_bool(stream_options, "include_usage", param="stream_options.include_usage")
    return stream, stream and bool(include_usage)


def refuse_multiple_choices(body: Mapping[str, Any]) -> None:
    n = read_int(body, "n", minimum=1)
    if n is not None and n > 1:
        raise BadRequest("'n' > 1 is not supported: one choice per request", param="n")


def refuse_logit_bias(body: Mapping[str, Any]) -> None:
    if read_object(body, "logit_bias"):
        raise BadRequest("'logit_bias' is not supported by the backend", param="logit_bias")
