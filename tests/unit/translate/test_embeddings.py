from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from neuronetz_gateway.errors import BadRequest, UpstreamUnavailable
from neuronetz_gateway.translate.embeddings import (
    embeddings_request_to_native,
    embeddings_response_from_native,
)

from .openai_sdk import sdk_client

# Exactly representable in float32, so the round trip must be exact.
VECTORS = [[0.5, -0.25, 0.125, 0.0], [1.0, -1.0, 0.75, 3.0]]
NATIVE = {
    "model": "nomic-embed-text",
    "embeddings": VECTORS,
    "total_duration": 14_000_000,
    "load_duration": 1_000_000,
    "prompt_eval_count": 8,
}


@pytest.mark.parametrize(
    ("fields", "native", "encoding_format"),
    [
        ({"input": "hello"}, {"input": ["hello"]}, "float"),
        ({"input": ""}, {"input": [""]}, "float"),
        ({"input": ["a", "b"]}, {"input": ["a", "b"]}, "float"),
        ({"input": ["a"], "dimensions": 256}, {"input": ["a"], "dimensions": 256}, "float"),
        ({"input": "a", "encoding_format": "base64"}, {"input": ["a"]}, "base64"),
        ({"input": "a", "encoding_format": "BASE64"}, {"input": ["a"]}, "base64"),
        ({"input": "a", "encoding_format": "Float"}, {"input": ["a"]}, "float"),
        ({"input": "a", "encoding_format": None, "user": "u"}, {"input": ["a"]}, "float"),
    ],
)
def test_request_mapping(
    fields: dict[str, Any], native: dict[str, Any], encoding_format: str
) -> None:
    body, fmt = embeddings_request_to_native({"model": "nomic-embed-text", **fields})
    assert body == {"model": "nomic-embed-text", **native}
    assert fmt == encoding_format


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": 1, "input": "a"}, "model"),
        ({"input": None}, "input"),
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": {"text": "a"}}, "input"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": "256"}, "dimensions"),
        ({"input": "a", "encoding_format": "binary"}, "encoding_format"),
        ({"input": "a", "encoding_format": 1}, "encoding_format"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings_request_to_native({"model": "nomic-embed-text", **fields})
    assert caught.value.param == param


def test_encoding_format_message_matches_openai() -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings_request_to_native({"model": "m", "input": "a", "encoding_format": "hex"})
    assert caught.value.message == (
        "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64']."
    )


def test_token_arrays_are_refused_with_a_reason() -> None:
    with pytest.raises(BadRequest, match="token arrays"):
        embeddings_request_to_native({"model": "m", "input": [101, 2023]})


def test_float_response() -> None:
    body = embeddings_response_from_native(NATIVE, model="nomic", encoding_format="float")
    assert body == {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": VECTORS[0], "index": 0},
            {"object": "embedding", "embedding": VECTORS[1], "index": 1},
        ],
        "model": "nomic",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    CreateEmbeddingResponse.model_validate(body)


def test_base64_round_trip() -> None:
    body = embeddings_response_from_native(NATIVE, model="nomic", encoding_format="base64")
    for item, vector in zip(body["data"], VECTORS, strict=True):
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"], validate=True)
        assert len(raw) == 4 * len(vector)
        assert list(struct.unpack(f"<{len(vector)}f", raw)) == vector


def test_base64_response_decoded_by_the_openai_sdk() -> None:
    body = embeddings_response_from_native(NATIVE, model="nomic", encoding_format="base64")
    client = sdk_client(200, orjson.dumps(body))
    # The SDK asks for base64 by default and decodes it itself.
    result = client.embeddings.create(model="nomic", input=["a", "b"])
    assert [item.embedding for item in result.data] == VECTORS
    assert result.usage.prompt_tokens == 8


@pytest.mark.parametrize(
    "native",
    [
        {"model": "m"},
        {"embeddings": None},
        {"embeddings": [1.0, 2.0]},
    ],
)
def test_unusable_backend_answer_is_an_upstream_failure(native: dict[str, Any]) -> None:
    with pytest.raises(UpstreamUnavailable):
        embeddings_response_from_native(native, model="m", encoding_format="float")


def test_malformed_vector_is_an_upstream_failure() -> None:
    with pytest.raises(UpstreamUnavailable):
        embeddings_response_from_native(
            {"embeddings": [["x"]]}, model="m", encoding_format="base64"
        )
