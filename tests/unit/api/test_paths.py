import pytest

from neuronetz_gateway.api.paths import canonical_path, classify

BLOCKED = [
    "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/ps",
    "/api/blobs/sha256:0123abcd", "/api/me", "/api/signout", "/api/user/keys/abc",
    "/api/experimental/web_search", "/api/experimental/web_fetch", "/api/status", "/api",
    "/api/", "/API/PULL", "/Api/Pull", "/api//pull", "//api/pull", "/api/pull/", "/api/pull//",
    "/api/%70ull", "/api%2fpull", "/api%2Fpull", "/%61pi/pull", "/api/%2570ull",
    "/api/./pull", "/api/x/../pull", "/v1/../api/pull", "/v1/models/../../api/pull",
    "/api/pull;x", "/api;x/pull", "/api/pull%00", "/ａｐｉ/ｐｕｌｌ", "/api\\pull",
    "/api/chat/../pull", "/api/%2e%2e/api/pull", ["/api/pull", "x=1"][0],
]  # fmt: skip
ROUTES = [
    "/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/tags", "/api/show",
    "/api/version", "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
    "/v1/models/llama3.2:latest", "/healthz", "/readyz", "/metrics",
]  # fmt: skip
UNKNOWN = [
    "/", "/foo", "/API/chat", "/api/chat/", "/api//chat", "/api%2fchat", "/v1/responses",
    "/v1/models/a/b", "/v1/models/..", "/v1/messages", "/v1/chat/completions/",
]  # fmt: skip


@pytest.mark.parametrize("path", BLOCKED)
def test_blocked_spellings(path: str) -> None:
    assert classify(path) == "blocked"


@pytest.mark.parametrize("path", ROUTES)
def test_exact_routes(path: str) -> None:
    assert classify(path) == "route"


@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown(path: str) -> None:
    assert classify(path) == "unknown"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("/API//Pull/", "/api/pull"), ("/a/./b/../c", "/a/c"), ("/x;y/z;w", "/x/z"), ("/..", "/")],
)
def test_canonical(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical
