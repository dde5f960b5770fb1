"""The pure parts: tokens, completions, tool calls, schemas, vectors, names, faults."""

from __future__ import annotations

import math
from typing import Any

import pytest

from neuronetz_gateway.mock_ollama.catalog import canonical_name, model_spec
from neuronetz_gateway.mock_ollama.faults import FaultSchedule
from neuronetz_gateway.mock_ollama.generation import (
    cut_at_stop,
    embedding,
    forced_tokens,
    json_value,
    pick_tool_call,
    plan_completion,
    split_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("Echo:", ["Echo:"]),
        ("Echo: a b", ["Echo:", " a", " b"]),
        ('{"k": "v w"}', ['{"k":', ' "v', ' w"}']),
    ],
)
def test_split_tokens_concatenate_back_to_the_text(text: str, tokens: list[str]) -> None:
    assert split_tokens(text) == tokens
    assert "".join(tokens) == text


@pytest.mark.parametrize(
    ("tokens", "count", "expected"),
    [
        (["Echo:", " a"], 1, ["Echo:"]),
        (["Echo:", " a"], 5, ["Echo:", " a", " Echo:", " a", " Echo:"]),
        (["Echo:"], 0, []),
    ],
)
def test_forced_tokens(tokens: list[str], count: int, expected: list[str]) -> None:
    assert forced_tokens(tokens, count) == expected


@pytest.mark.parametrize(
    ("stops", "kept", "hit"),
    [
        ([], ["Echo:", " a", " b"], False),
        ([" a"], ["Echo:"], True),
        (["o: a"], ["Ech"], True),
        (["zzz"], ["Echo:", " a", " b"], False),
    ],
)
def test_cut_at_stop(stops: list[str], kept: list[str], hit: bool) -> None:
    assert cut_at_stop(["Echo:", " a", " b"], stops) == (kept, hit)


@pytest.mark.parametrize(
    ("num_predict", "reason", "pieces"),
    [(None, "stop", 3), (-1, "stop", 3), (0, "stop", 3), (2, "length", 2), (3, "stop", 3)],
)
def test_num_predict_caps_the_pieces(num_predict: int | None, reason: str, pieces: int) -> None:
    completion = plan_completion("a b", prompt_eval_count=2, think=False, num_predict=num_predict)

    assert completion.done_reason == reason
    assert completion.eval_count == pieces


def test_thinking_comes_before_content_and_counts() -> None:
    completion = plan_completion("a", prompt_eval_count=1, think=True)

    assert [kind for kind, _ in completion.pieces] == ["thinking"] * 3 + ["content"] * 2
    assert completion.text("thinking") == "Thinking about: a"
    assert completion.text("content") == "Echo: a"


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ("json", {"echo": "t u"}),
        ({"type": "object", "properties": {"n": {"type": "number"}}}, {"n": 2.0}),
        ({"type": "object"}, {"echo": "t u"}),
        ({"type": ["null", "boolean"]}, True),
        ({"enum": ["x", "y"]}, "x"),
        ({"type": "array"}, []),
    ],
)
def test_json_value_satisfies_the_schema(schema: Any, value: object) -> None:
    assert json_value(schema, "t u") == value


TOOLS = [
    {"type": "function", "function": {"name": "lookup_stock", "parameters": {}}},
    {
        "type": "function",
        "function": {
            "name": "weather_now",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
]


@pytest.mark.parametrize(
    ("message", "name", "arguments"),
    [
        ("weather for rome?", "weather_now", {"location": "Rome"}),
        ("please lookup_stock now", "lookup_stock", {}),
        ("just chatting", None, None),
    ],
)
def test_pick_tool_call(message: str, name: str | None, arguments: dict[str, str] | None) -> None:
    call = pick_tool_call(message, TOOLS)

    if name is None:
        assert call is None
    else:
        assert call is not None
        assert call["function"]["name"] == name
        assert call["function"]["arguments"] == arguments
        assert call == pick_tool_call(message, TOOLS)


def test_embeddings_are_normalised_and_a_prefix_stays_a_prefix() -> None:
    long = embedding("seed", 64, normalised=False)
    short = embedding("seed", 8, normalised=False)
    unit = embedding("seed", 64)

    assert long[:8] == short
    assert math.sqrt(sum(x * x for x in unit)) == pytest.approx(1.0)
    assert embedding("other", 64) != unit


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("llama3.2", "llama3.2:latest"),
        ("Llama3.2:Latest", "llama3.2:latest"),
        ("library/qwen2.5:0.5b", "qwen2.5:0.5b"),
        ("registry.ollama.ai/library/phi3", "phi3:latest"),
        ("user/model", "user/model:latest"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_unknown_models_get_plausible_deterministic_metadata() -> None:
    spec = model_spec("my-embed-model:335m")

    assert spec == model_spec("my-embed-model:335m")
    assert spec.capabilities == ("embedding",)
    assert spec.parameter_size == "335M"
    assert len(spec.digest) == 64


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "colour": 1}, "unknown model field 'colour'"),
        ({"name": "x", "size": "big"}, "model field 'size' must be of type int"),
        ({"name": "x", "capabilities": "tools"}, "must be a list of strings"),
        ({"name": " "}, "must not be empty"),
        (42, "a name or an object"),
    ],
)
def test_model_overrides_are_checked(entry: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_spec(entry)


def test_fault_schedule_counts_down() -> None:
    limited = FaultSchedule("busy", 2)
    always = FaultSchedule("busy", None)
    never = FaultSchedule(None, 5)

    assert [limited.draw() for _ in range(3)] == ["busy", "busy", None]
    assert [always.draw() for _ in range(3)] == ["busy"] * 3
    assert never.draw() is None
