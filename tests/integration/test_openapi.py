"""The OpenAPI document describes the proxied endpoints well enough to drive a client."""

import httpx

from tests.fixtures.gateway import RunningGateway


def test_openapi_document(gateway: RunningGateway) -> None:
    doc = httpx.get(gateway.url + "/openapi.json").json()
    chat = doc["paths"]["/api/chat"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["model"] and "messages" in body["properties"]
    assert "application/x-ndjson" in chat["responses"]["200"]["content"]
    assert chat["security"] == [{"bearer": []}]
    v1 = doc["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in v1["responses"]["200"]["content"]
    assert v1["responses"]["429"]["content"]["application/json"]["schema"]["required"] == ["error"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert not any(p.startswith(("/api/pull", "/api/ps", "/metrics")) for p in doc["paths"])
