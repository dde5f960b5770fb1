"""The one uvicorn configuration of the gateway, shared by ``serve``, the demo and tests."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

import uvicorn
from uvicorn.supervisors import Multiprocess

from neuronetz_gateway.server.protocol import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    DeadlineHttpToolsProtocol,
    DeadlineProtocolFactory,
)

KEEP_ALIVE_S = 15
GRACEFUL_SHUTDOWN_S = 10


def uvicorn_config(
    app_or_import_string: Any,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = False,
    loop: str = "auto",
    log_level: str = "warning",
    header_timeout_s: float = HEADER_TIMEOUT_S,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> uvicorn.Config:
    """httptools with head/body deadlines, no ``Server`` header, no access log (the
    gateway writes its own), and no ``proxy_headers``: the gateway decides itself which
    peers' ``X-Forwarded-For`` to believe (``GATEWAY_TRUSTED_PROXIES``).

    ``workers`` > 1 needs an import string (uvicorn starts each worker from it).
    """
    protocol: Any = DeadlineHttpToolsProtocol
    if (header_timeout_s, body_timeout_s) != (HEADER_TIMEOUT_S, BODY_TIMEOUT_S):
        protocol = DeadlineProtocolFactory(header_timeout_s, body_timeout_s)
    return uvicorn.Config(
        app_or_import_string,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        loop=loop,
        # uvicorn calls this with the protocol's constructor arguments; a class or factory.
        http=cast("type[asyncio.Protocol]", protocol),
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level=log_level,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def run(config: uvicorn.Config) -> None:
    """Serve until stopped, in this process or in ``config.workers`` worker processes
    (what ``uvicorn.run`` does for a ready ``Config``); exit 3 if it never started."""
    server = uvicorn.Server(config)
    if config.workers > 1:
        if not isinstance(config.app, str):
            raise ValueError("several workers need the app as an import string")
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)
