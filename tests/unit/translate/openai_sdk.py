"""The official ``openai`` client wired to a canned HTTP answer, so tests drive the
translation output through the same parser and exception mapping clients use."""

from __future__ import annotations

import httpx2  # the HTTP client the openai SDK is built on
import openai


def sdk_client(
    status: int, content: bytes, content_type: str = "application/json"
) -> openai.OpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=content, headers={"content-type": content_type})

    http_client = httpx2.Client(transport=httpx2.MockTransport(answer))
    return openai.OpenAI(
        api_key="nz_test", base_url="http://gateway.test/v1", http_client=http_client, max_retries=0
    )


def sse_body(frames: list[bytes]) -> bytes:
    return b"".join(frames)
