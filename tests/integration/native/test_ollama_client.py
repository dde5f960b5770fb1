"""The official `ollama` Python client against a running gateway in front of the mock."""

import httpx
import ollama
import pytest

from tests.fixtures.gateway import RunningGateway


@pytest.fixture
def client(gateway: RunningGateway) -> ollama.Client:
    key = gateway.admin.tenant_and_key("acme")
    return ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {key}"})


def test_chat_streamed_and_whole(client: ollama.Client) -> None:
    whole = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hello world"}])
    assert whole.message.content == "Echo: hello world" and whole.done
    assert whole.eval_count and whole.prompt_eval_count
    parts = list(
        client.chat(
            model="llama3.2", messages=[{"role": "user", "content": "hello world"}], stream=True
        )
    )
    assert "".join(p.message.content or "" for p in parts) == "Echo: hello world"
    assert len(parts) >= 3 and parts[-1].done and parts[-1].eval_count


def test_generate_streamed_and_whole(client: ollama.Client) -> None:
    assert client.generate(model="llama3.2", prompt="why blue").response == "Echo: why blue"
    parts = list(client.generate(model="llama3.2", prompt="why blue", stream=True))
    assert "".join(p.response for p in parts) == "Echo: why blue"


def test_embed_embeddings_list_show(client: ollama.Client) -> None:
    embedded = client.embed(model="nomic-embed-text", input=["a", "b"])
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) > 8
    assert len(client.embeddings(model="nomic-embed-text", prompt="a").embedding) > 8
    names = {m.model for m in client.list().models}
    assert names == {"llama3.2:latest", "qwen2.5:0.5b", "nomic-embed-text:latest"}
    shown = client.show("llama3.2")
    assert shown.modelinfo is not None and shown.details is not None
    raw = shown.model_dump()
    assert not raw.get("template") and not raw.get("system") and not raw.get("modelfile")
    assert "/root/.ollama" not in str(raw)


@pytest.mark.parametrize("model", ["not-installed", "qwen2.5:0.5b"])
def test_forbidden_and_missing_models_look_the_same(gateway: RunningGateway, model: str) -> None:
    gateway.admin.tenant("narrow", allow_all_models=False, allowed_models=["llama3.2"])
    key = gateway.admin.key("narrow")
    client = ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {key}"})
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=model, messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 403 and err.value.error == "model not available"
    assert [m.model for m in client.list().models] == ["llama3.2:latest"]
    assert client.chat(model="llama3.2", messages=[{"role": "user", "content": "x"}]).done


def test_errors_surface_as_response_error(gateway: RunningGateway) -> None:
    client = ollama.Client(host=gateway.url, headers={"Authorization": "Bearer nz_nope"})
    with pytest.raises(ollama.ResponseError) as err:
        client.list()
    assert err.value.status_code == 401


def test_version_is_the_gateways(gateway: RunningGateway) -> None:
    assert httpx.get(gateway.url + "/api/version").json() == {"version": "0.1.0"}


def test_upstream_receives_reserialised_body_without_client_headers(
    gateway: RunningGateway, client: ollama.Client
) -> None:
    mock = gateway.mock
    assert mock is not None
    mock.clear_requests()
    httpx.post(
        gateway.url + "/api/chat",
        content=b'{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}],'
        b'"keep_alive":0,"junk":{"a":1}}',
        headers={
            "Authorization": client._client.headers["authorization"],
            "X-Forwarded-For": "6.6.6.6",
            "Cookie": "c=1",
        },
    ).raise_for_status()
    (seen,) = gateway.proxied()
    assert seen["body"]["keep_alive"] == gateway.settings.keep_alive_min_s
    assert "junk" not in seen["body"] and seen["body"]["options"]["num_predict"] == 4096
    assert "authorization" not in seen["headers"] and "x-forwarded-for" not in seen["headers"]
    assert "cookie" not in seen["headers"]
