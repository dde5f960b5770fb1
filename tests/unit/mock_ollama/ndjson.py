"""Reading the mock's answers as plain HTTP, line by line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every NDJSON line, parsed; fails on a blank or non-JSON line, as clients do."""
        return [orjson.loads(line) for line in self.body.split(b"\n")[:-1]]

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


async def post(http: aiohttp.ClientSession, url: str, body: object, method: str = "POST") -> Answer:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.request(method, url, data=data, allow_redirects=False) as response:
        return Answer(
            response.status, response.headers.get("Content-Type", ""), await response.read()
        )


async def get(http: aiohttp.ClientSession, url: str, method: str = "GET") -> Answer:
    async with http.request(method, url, allow_redirects=False) as response:
        return Answer(
            response.status, response.headers.get("Content-Type", ""), await response.read()
        )
