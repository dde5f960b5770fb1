"""``POST /v1/embeddings`` ⇄ ``POST /api/embed`` (reference §3.5).

``input`` is a string (``""`` becomes ``[""]``) or a non-empty array of strings; token
arrays are refused, since Ollama embeds text only. ``dimensions`` is passed on (Ollama
truncates and re-normalises). ``encoding_format`` is ``float`` or ``base64`` in any case;
the ``openai`` SDK asks for base64 by default. ``user`` and other fields are ignored.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, TypedDict

from neuronetz_gateway.errors import BadRequest, UpstreamUnavailable
from neuronetz_gateway.translate.fields import read_int, read_model
from neuronetz_gateway.translate.native import NativeEmbedBody
from neuronetz_gateway.translate.usage import usage_from_native

EncodingFormat = Literal["float", "base64"]


class NativeEmbedRequest(NamedTuple):
    body: NativeEmbedBody
    encoding_format: EncodingFormat


class Embedding(TypedDict):
    object: Literal["embedding"]
    embedding: list[float] | str
    index: int


class EmbeddingsUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage


def embeddings_request_to_native(body: Mapping[str, Any]) -> NativeEmbedRequest:
    """Translate a ``/v1/embeddings`` body; raises ``BadRequest`` naming the field."""
    native: NativeEmbedBody = {"model": read_model(body), "input": _input(body.get("input"))}
    dimensions = read_int(body, "dimensions", minimum=1)
    if dimensions is not None:
        native["dimensions"] = dimensions
    return NativeEmbedRequest(native, _encoding_format(body.get("encoding_format")))


def _input(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, list) and value and all(isinstance(item, int | list) for item in value):
        raise BadRequest("'input' token arrays are not supported; send text", param="input")
    raise BadRequest("'input' must be a string or a non-empty array of strings", param="input")


def _encoding_format(value: object) -> EncodingFormat:
    if value is None:
        return "float"
    if isinstance(value, str):
        match value.lower():
            case "float":
                return "float"
            case "base64":
                return "base64"
    raise BadRequest(
        f"Invalid value for 'encoding_format' = {value}. Supported values: ['float', 'base64'].",
        param="encoding_format",
    )


def _base64_float32(vector: list[float]) -> str:
    """Little-endian float32 bytes in standard base64, as the SDK decodes them."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_response_from_native(
    native: Mapping[str, Any], *, model: str, encoding_format: EncodingFormat
) -> EmbeddingList:
    """An ``/api/embed`` response as an embeddings list.

    Raises ``UpstreamUnavailable`` if the backend's answer has no usable vectors: an
    empty ``data`` would only make the SDK fail with a less helpful message.
    """
    vectors = native.get("embeddings")
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
        raise UpstreamUnavailable("the backend returned no embeddings")
    data: list[Embedding] = []
    try:
        for index, vector in enumerate(vectors):
            embedding = _base64_float32(vector) if encoding_format == "base64" else vector
            data.append({"object": "embedding", "embedding": embedding, "index": index})
    except struct.error as exc:
        raise UpstreamUnavailable("the backend returned malformed embeddings") from exc
    prompt_tokens = usage_from_native(native).prompt
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
