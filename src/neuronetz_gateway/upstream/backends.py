"""Per Ollama backend: a pool of the lean model-call client (``upstream.http``) and an
aiohttp session for everything else (discovery, probes), both with the backend's own
auth headers.

Requests to a backend are built by the gateway from scratch: no client header is
forwarded (no ``Authorization`` of the tenant, no ``X-Forwarded-*``), redirects are
never followed, and cookies are never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.http import UpstreamPool


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    connect_s: float
    read_s: float


class Backend:
    """A configured backend and its connection pool. ``start`` before use, ``close`` after."""

    def __init__(
        self,
        spec: BackendSpec,
        *,
        timeouts: UpstreamTimeouts,
        max_connections: int,
        default_parallel: int,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.base_url = spec.base_url
        self.capacity = spec.parallel or default_parallel
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._headers = {"Content-Type": "application/json", **spec.auth_headers()}
        self._session: aiohttp.ClientSession | None = None
        # Model calls go through the lean client; aiohttp serves discovery and probes.
        self.pool = UpstreamPool(
            self.base_url,
            headers=spec.auth_headers(),
            limit=max_connections,
            connect_s=timeouts.connect_s,
            read_s=timeouts.read_s,
        )
        self.in_flight = 0

    def __repr__(self) -> str:  # never shows the token
        return f"Backend(name={self.name!r}, url={self.base_url!r})"

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                ttl_dns_cache=60,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self._timeouts.connect_s,
                    sock_connect=self._timeouts.connect_s,
                    sock_read=self._timeouts.read_s,
                ),
                skip_auto_headers=("User-Agent",),
                read_bufsize=2**16,
                max_line_size=2**24,
                max_field_size=2**16,
            )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"backend {self.name} is not started")
        return self._session

    def url(self, path: str) -> str:
        return self.base_url + path

    async def close(self) -> None:
        await self.pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
