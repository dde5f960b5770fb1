"""The official `openai` SDK pointed at the gateway's /v1: it must just work."""

import base64
import json
import struct

import httpx
import openai
import pytest
from sqlalchemy import select

from neuronetz_gateway.db.models import RequestRecord
from tests.fixtures.gateway import RunningGateway

USER = [{"role": "user", "content": "hello there world"}]


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.admin.tenant_and_key("acme"))


def test_chat_whole_and_streamed(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="llama3.2", messages=USER)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == "Echo: hello there world"
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.total_tokens == (
        whole.usage.prompt_tokens + whole.usage.completion_tokens
    )
    chunks = list(
        client.chat.completions.create(
            model="llama3.2",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello there world"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_max_completion_tokens_is_honoured(client: openai.OpenAI, gateway: RunningGateway) -> None:
    out = client.chat.completions.create(
        model="llama3.2",
        messages=USER,
        max_completion_tokens=2,  # type: ignore[arg-type]
    )
    assert out.choices[0].finish_reason == "length"
    assert gateway.proxied()[-1]["body"]["options"]["num_predict"] == 2


def test_completions(client: openai.OpenAI) -> None:
    out = client.completions.create(model="llama3.2", prompt="say this")
    assert out.choices[0].text == "Echo: say this" and out.usage is not None
    streamed = list(client.completions.create(model="llama3.2", prompt="say this", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "Echo: say this"


def test_embeddings_base64_default_and_float(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    default = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])
    floats = client.embeddings.create(
        model="nomic-embed-text", input=["a", "b"], encoding_format="float"
    )
    assert len(default.data) == 2 and default.data[1].index == 1
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    raw = httpx.post(
        gateway.url + "/v1/embeddings",
        json={"model": "nomic-embed-text", "input": "a", "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {client.api_key}"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert list(decoded) == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert default.usage.prompt_tokens > 0


def test_models_list_and_retrieve(client: openai.OpenAI, gateway: RunningGateway) -> None:
    assert {m.id for m in client.models.list()} == {
        "llama3.2:latest",
        "qwen2.5:0.5b",
        "nomic-embed-text:latest",
    }
    assert client.models.retrieve("llama3.2:latest").id == "llama3.2:latest"
    with pytest.raises(openai.PermissionDeniedError):
        client.models.retrieve("not-there")
    gateway.admin.tenant("empty", allow_all_models=False)
    empty = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.admin.key("empty"))
    assert list(empty.models.list()) == []
    raw = httpx.get(
        gateway.url + "/v1/models", headers={"Authorization": f"Bearer {empty.api_key}"}
    )
    assert raw.json() == {"object": "list", "data": []}


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages = [{"role": "user", "content": "what is the weather in Paris"}]
    first = client.chat.completions.create(model="llama3.2", messages=messages, tools=tools)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and isinstance(
        json.loads(call.function.arguments), dict
    )
    follow = client.chat.completions.create(
        model="llama3.2",
        messages=[  # type: ignore[list-item]
            *messages,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    assert follow.choices[0].message.content is not None


def test_json_mode(client: openai.OpenAI, gateway: RunningGateway) -> None:
    out = client.chat.completions.create(
        model="llama3.2",
        messages=USER,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    json.loads(out.choices[0].message.content or "")
    assert gateway.proxied()[-1]["body"]["format"] == "json"


def test_error_classes(gateway: RunningGateway, client: openai.OpenAI) -> None:
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="nz_" + "x" * 41, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="nope", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="llama3.2", messages=USER, n=3)  # type: ignore[arg-type]
    assert err.value.body is not None
    with pytest.raises(openai.APIStatusError) as too_big:
        client.completions.create(model="llama3.2", prompt="a" * 300_000)
    assert too_big.value.status_code == 413
    gateway.admin.tenant("tiny", rpm=1)
    tiny = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=gateway.admin.key("tiny"), max_retries=0
    )
    tiny.chat.completions.create(model="llama3.2", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as limited:
        tiny.chat.completions.create(model="llama3.2", messages=USER)  # type: ignore[arg-type]
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_mid_stream_failure_raises_api_error(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    assert gateway.mock is not None
    gateway.mock.configure(fail="after_first_chunk")
    received = []
    with pytest.raises(openai.APIError, match="failed while answering"):
        for chunk in client.chat.completions.create(model="llama3.2", messages=USER, stream=True):  # type: ignore[arg-type]
            received.append(chunk)
    assert received  # the first chunk arrived before the failure


def test_sdk_retries_never_charge_twice(gateway: RunningGateway) -> None:
    # One slot, held by a slow stream: the SDK's request is refused for concurrency
    # (Retry-After: 1), retried twice by the SDK, refused each time, never charged.
    gateway.admin.tenant("retry", concurrent=1)
    key = gateway.admin.key("retry")
    assert gateway.mock is not None
    gateway.mock.configure(chunk_delay_s=2.0)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "llama3.2", "messages": USER}
    with httpx.stream("POST", gateway.url + "/api/chat", json=body, headers=headers) as held:
        lines = held.iter_lines()  # keep a reference: a dropped iterator closes the stream
        next(lines)
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=2)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="llama3.2", messages=USER)  # type: ignore[arg-type]
    gateway.wait_audit_flushed()
    rows = list(
        gateway.admin.query(
            lambda s: s.scalars(select(RequestRecord).where(RequestRecord.key_prefix == key[:12]))
        )
    )
    refused = [r for r in rows if r.status == 429]
    assert len(refused) == 3 and all(r.tokens_in == r.tokens_out == 0 for r in refused)
    assert len([r for r in rows if r.tokens_in or r.tokens_out]) == 1
