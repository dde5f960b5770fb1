"""A backend's session: its own auth headers, nothing of the client's, no token on show."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.settings import BackendSpec, Settings
from neuronetz_gateway.upstream.discovery import Discovery
from tests.unit.upstream.conftest import MakeBackend

TOKEN = "tok-4f1c0ffee-secret"


async def test_each_backend_sends_its_own_headers(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    a, b, _ = mocks
    a.configure(require_token=TOKEN)
    one = make_backend("one", a.url, token=TOKEN, headers={"X-Org": "acme"})
    two = make_backend("two", b.url, scheme="Token", token="other", headers={"X-Org": "beta"})
    for backend in (one, two):
        await backend.start()
        async with backend.session.get(backend.url("/api/tags")) as resp:
            assert resp.status == 200
    (seen_a,) = a.requests
    (seen_b,) = b.requests
    assert seen_a["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert seen_a["headers"]["x-org"] == "acme"
    assert seen_b["headers"]["authorization"] == "Token other"
    assert seen_b["headers"]["x-org"] == "beta"
    assert "user-agent" not in seen_b["headers"]  # no library fingerprint


async def test_wrong_token_is_refused_by_the_backend(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    mocks[0].configure(require_token=TOKEN)
    backend = make_backend("one", mocks[0].url, token="wrong")
    await backend.start()
    discovery = Discovery([backend], refresh_s=60, ttl_s=120)
    with pytest.raises(RuntimeError, match="status 401"):
        await discovery.fetch(backend)


def test_no_token_no_authorization_header() -> None:
    spec = BackendSpec(name="plain", url="http://ollama:11434")  # type: ignore[arg-type]
    assert spec.auth_headers() == {}
    spec = BackendSpec(name="empty", url="http://ollama:11434", token=SecretStr(""))  # type: ignore[arg-type]
    assert spec.auth_headers() == {}


async def test_token_never_in_repr_or_logs(
    mocks: list[MockOllama],
    make_backend: MakeBackend,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    backend = make_backend("one", mocks[0].url, token=TOKEN)
    assert TOKEN not in repr(backend)
    assert TOKEN not in str(backend)
    assert TOKEN not in repr(backend.spec)
    assert TOKEN not in str(backend.spec.token)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ollama_backends=[{"name": "one", "url": mocks[0].url, "token": TOKEN}],
        ollama_auth_token=TOKEN,
    )
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())
    # A backend that refuses the token, and one that is gone: both are logged, by name.
    mocks[0].configure(require_token="something-else")
    gone = make_backend("gone", "http://127.0.0.1:9", token=TOKEN)
    await backend.start()
    await gone.start()
    with caplog.at_level(logging.DEBUG):
        await Discovery([backend, gone], refresh_s=60, ttl_s=120).refresh()
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "one" in logged
    assert "gone" in logged
    assert TOKEN not in logged
