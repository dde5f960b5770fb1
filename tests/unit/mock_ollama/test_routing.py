"""gin's routing answers, and the management endpoints that must never be reached."""

from __future__ import annotations

import aiohttp
import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from tests.unit.mock_ollama.ndjson import get, post


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nothing"),
        ("POST", "/API/chat"),
        ("POST", "/api//chat"),
        ("GET", "/v1/models"),
        ("POST", "/api/blobs/a/b"),
        ("GET", "/api/experimental/anything"),
    ],
)
async def test_unknown_routes_are_plain_text_404(
    mock_server: MockOllama, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    answer = await get(http, f"{mock_server.url}{path}", method)

    assert (answer.status, answer.content_type, answer.body) == (
        404,
        "text/plain",
        b"404 page not found",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/chat"), ("POST", "/api/tags"), ("GET", "/api/delete"), ("GET", "/api/blobs/x")],
)
async def test_wrong_method_is_405(
    mock_server: MockOllama, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    answer = await get(http, f"{mock_server.url}{path}", method)

    assert (answer.status, answer.body) == (405, b"405 method not allowed")


@pytest.mark.parametrize(("method", "status"), [("GET", 301), ("POST", 307)])
async def test_trailing_slash_redirects_like_gin(
    mock_server: MockOllama, http: aiohttp.ClientSession, method: str, status: int
) -> None:
    path = "/api/tags/" if method == "GET" else "/api/chat/"

    async with http.request(
        method, f"{mock_server.url}{path}?x=1", allow_redirects=False
    ) as response:
        assert response.status == status
        assert response.headers["Location"] == path[:-1] + "?x=1"


async def test_head_tags_has_no_body(mock_server: MockOllama, http: aiohttp.ClientSession) -> None:
    answer = await get(http, f"{mock_server.url}/api/tags", "HEAD")

    assert (answer.status, answer.body) == (200, b"")


async def test_pull_streams_progress_until_success(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(http, f"{mock_server.url}/api/pull", {"model": "llama3.2"})

    statuses = [line["status"] for line in answer.lines]
    assert answer.content_type == "application/x-ndjson"
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert any(line.get("total") for line in answer.lines)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("POST", "/api/pull", {"model": "x", "stream": False}, 200, {"status": "success"}),
        ("POST", "/api/push", {"model": "x", "stream": False}, 200, {"status": "success"}),
        ("POST", "/api/create", {"model": "x", "stream": False}, 200, {"status": "success"}),
        ("POST", "/api/pull", {"stream": False}, 400, {"error": "invalid model name"}),
        ("POST", "/api/copy", {"source": "llama3.2", "destination": "mine"}, 200, None),
        (
            "POST",
            "/api/copy",
            {"source": "ghost", "destination": "mine"},
            404,
            {"error": 'model "ghost" not found'},
        ),
        ("DELETE", "/api/delete", {"model": "llama3.2"}, 200, None),
        ("DELETE", "/api/delete", {"model": "ghost"}, 404, {"error": "model 'ghost' not found"}),
        ("POST", "/api/blobs/sha256:abc", b"bytes", 201, None),
        ("HEAD", "/api/blobs/sha256:abc", None, 404, None),
        ("POST", "/api/signout", None, 401, {"error": "you are not currently signed in"}),
        ("DELETE", "/api/user/keys/abc", None, 401, {"error": "you are not currently signed in"}),
        ("POST", "/api/experimental/web_search", {"query": "q"}, 200, {"results": []}),
        (
            "POST",
            "/api/experimental/web_fetch",
            {"url": "http://x"},
            200,
            {"title": "", "content": "", "links": []},
        ),
    ],
)
async def test_management_endpoints_answer_minimally(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: object,
    status: int,
    expected: object,
) -> None:
    answer = await post(http, f"{mock_server.url}{path}", body if body is not None else b"", method)

    assert answer.status == status
    if expected is None:
        assert answer.body == b""
    else:
        assert answer.json == expected
    assert mock_server.requests[-1]["path"] == path


async def test_me_is_unauthorized_with_a_signin_url(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(http, f"{mock_server.url}/api/me", b"")

    assert answer.status == 401
    assert answer.json["error"] == "unauthorized"
    assert answer.json["signin_url"].startswith("https://ollama.com/")


async def test_model_recommendations(mock_server: MockOllama, http: aiohttp.ClientSession) -> None:
    answer = await get(http, f"{mock_server.url}/api/experimental/model-recommendations")

    assert answer.json["recommendations"]
