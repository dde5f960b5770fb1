from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types import Model

from neuronetz_gateway.translate.models import (
    created_from_rfc3339,
    model_from_tag,
    models_list_from_tags,
    owner_of,
)

from .openai_sdk import sdk_client

TAG = {
    "name": "llama3.2:latest",
    "model": "llama3.2:latest",
    "modified_at": "2025-10-26T17:21:21.196249123Z",
    "size": 2019393189,
    "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    "details": {"family": "llama", "parameter_size": "3.2B"},
}


@pytest.mark.parametrize(
    ("value", "created"),
    [
        ("2025-10-26T17:21:21.196249123Z", 1761499281),
        ("2025-10-26T17:21:21Z", 1761499281),
        ("2025-10-26T19:21:21.5+02:00", 1761499281),
        ("2024-12-07T10:12:34.123456789-08:00", 1733595154),
        ("2025-10-26T17:21:21", 1761499281),
        ("0001-01-01T00:00:00Z", 0),
        ("yesterday", 0),
        ("", 0),
        (None, 0),
        (1761499281, 0),
    ],
)
def test_created_from_rfc3339(value: object, created: int) -> None:
    assert created_from_rfc3339(value) == created


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("llama3.2:latest", "library"),
        ("llama3.2", "library"),
        ("library/llama3.2:latest", "library"),
        ("registry.ollama.ai/library/llama3.2:latest", "library"),
        ("jmorgan/tiny:q4", "jmorgan"),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "bartowski"),
        ("localhost:5000/team/model", "team"),
        ("llama3.2@sha256:abc", "library"),
        ("gpt-oss:120b-cloud", "library"),
    ],
)
def test_owner_of(name: str, owner: str) -> None:
    assert owner_of(name) == owner


def test_model_from_tag() -> None:
    model = model_from_tag(TAG)
    assert model == {
        "id": "llama3.2:latest",
        "object": "model",
        "created": 1761499281,
        "owned_by": "library",
    }
    Model.model_validate(model)


@pytest.mark.parametrize(
    ("tag", "model_id"),
    [
        ({"name": "a:latest", "model": "b:latest"}, "b:latest"),
        ({"name": "a:latest"}, "a:latest"),
        ({"name": "a:latest", "model": ""}, "a:latest"),
    ],
)
def test_model_id_prefers_model_then_name(tag: dict[str, Any], model_id: str) -> None:
    assert model_from_tag(tag)["id"] == model_id


def test_model_from_tag_without_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no model name"):
        model_from_tag({"size": 1})


def test_list_is_never_null() -> None:
    body = models_list_from_tags([])
    assert body["data"] == []
    assert orjson.dumps(body) == b'{"object":"list","data":[]}'


def test_list_skips_nameless_entries_and_keeps_order() -> None:
    second = {**TAG, "name": "me/tool:1b", "model": "me/tool:1b", "modified_at": None}
    body = models_list_from_tags([TAG, {"size": 3}, second])
    assert [(m["id"], m["created"], m["owned_by"]) for m in body["data"]] == [
        ("llama3.2:latest", 1761499281, "library"),
        ("me/tool:1b", 0, "me"),
    ]
    client = sdk_client(200, orjson.dumps(body))
    assert [m.id for m in client.models.list()] == ["llama3.2:latest", "me/tool:1b"]
