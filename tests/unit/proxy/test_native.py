from typing import Any

import pytest

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.proxy.native import (
    CallPolicy,
    clamp_keep_alive,
    model_name_key,
    parse_keep_alive,
    prepare_chat,
    prepare_embed,
    prepare_embeddings,
    prepare_generate,
)

POLICY = CallPolicy(max_num_predict=100, keep_alive_min_s=60, keep_alive_max_s=600)
MSG = [{"role": "user", "content": "hello"}]


def test_chat_defaults_stream_and_caps_output() -> None:
    call = prepare_chat({"model": "m", "messages": MSG}, POLICY)
    assert call.stream is True
    assert call.payload["options"]["num_predict"] == 100
    assert call.reserve_tokens >= 100
    assert call.upstream_path == "/api/chat"


@pytest.mark.parametrize("stream", [None, True])
def test_chat_stream_missing_or_null_means_stream(stream: bool | None) -> None:
    assert prepare_chat({"model": "m", "messages": MSG, "stream": stream}, POLICY).stream


def test_chat_stream_false() -> None:
    call = prepare_chat({"model": "m", "messages": MSG, "stream": False}, POLICY)
    assert call.stream is False and call.payload["stream"] is False


@pytest.mark.parametrize("predict", [-1, -5, None])
def test_missing_or_negative_num_predict_is_capped(predict: int | None) -> None:
    body: dict[str, Any] = {"model": "m", "messages": MSG, "options": {"num_predict": predict}}
    assert prepare_chat(body, POLICY).payload["options"]["num_predict"] == 100


def test_num_predict_over_cap_refused() -> None:
    with pytest.raises(BadRequest) as err:
        prepare_chat({"model": "m", "messages": MSG, "options": {"num_predict": 101}}, POLICY)
    assert err.value.param == "options.num_predict"


def test_unknown_fields_dropped_known_kept() -> None:
    body = {"model": "m", "messages": MSG, "evil": 1, "format": "json", "think": "low"}
    payload = prepare_chat(body, POLICY).payload
    assert "evil" not in payload and payload["format"] == "json" and payload["think"] == "low"


@pytest.mark.parametrize(
    "body",
    [
        {"messages": MSG},
        {"model": 5, "messages": MSG},
        {"model": "", "messages": MSG},
        {"model": "m", "messages": "hi"},
        {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
        {"model": "m", "messages": [{"role": "user", "content": "x", "Content": "y"}]},
        {"model": "m", "MODEL": "n", "messages": MSG},
        {"model": "m", "Model": "n", "messages": MSG},
        {"model": "m", "messages": MSG, "options": {"NUM_PREDICT": 5}},
        {"model": "m", "messages": MSG, "options": {"num_gpu": 99}},
        {"model": "m", "messages": MSG, "options": {"stop": "x"}},
        {"model": "m", "messages": MSG, "options": {"temperature": "hot"}},
        {"model": "m", "messages": MSG, "options": []},
        {"model": "m", "messages": MSG, "stream": "yes"},
        {"model": "m", "messages": MSG, "keep_alive": True},
        {"model": "m", "messages": MSG, "keep_alive": "soon"},
        {"model": "m", "messages": MSG, "think": "extreme"},
        {"model": "m", "messages": MSG, "format": "yaml"},
        {"model": "m", "messages": MSG, "tools": "x"},
        {"model": "m", "messages": MSG, "top_logprobs": 21},
    ],
)
def test_chat_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        prepare_chat(body, POLICY)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("-1", -1.0), (-1, -1.0), ("10s", 10.0)],
)
def test_parse_keep_alive(value: Any, seconds: float) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize(("value", "clamped"), [(0, 60), ("5m", 300), (-1, 600), ("2h", 600)])
def test_keep_alive_clamped(value: Any, clamped: int) -> None:
    assert clamp_keep_alive(value, POLICY) == clamped


def test_generate_and_raw_mode() -> None:
    call = prepare_generate({"model": "m", "prompt": "hi", "stream": False}, POLICY)
    assert call.payload == {
        "model": "m",
        "prompt": "hi",
        "stream": False,
        "options": {"num_predict": 100},
    }
    with pytest.raises(BadRequest):
        prepare_generate({"model": "m", "prompt": "x", "raw": True, "system": "s"}, POLICY)


def test_embed_shapes() -> None:
    assert prepare_embed({"model": "e", "input": "x"}, POLICY).stream is False
    assert prepare_embed({"model": "e", "input": ["a", "b"]}, POLICY).payload["input"] == ["a", "b"]
    with pytest.raises(BadRequest):
        prepare_embed({"model": "e", "input": [1, 2]}, POLICY)
    assert prepare_embeddings({"model": "e", "prompt": "x"}, POLICY).upstream_path == (
        "/api/embeddings"
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [("llama3.2", "llama3.2:latest"), ("Llama3.2:latest", "llama3.2:latest"), ("a/b:7b", "a/b:7b")],
)
def test_model_name_key(name: str, key: str) -> None:
    assert model_name_key(name) == key
