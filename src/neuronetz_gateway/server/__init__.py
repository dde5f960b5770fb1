"""The HTTP server under the app: uvicorn with httptools, plus the deadlines uvicorn lacks.

``uvicorn_config`` builds the one ``uvicorn.Config`` that ``serve``, the demo and the test
gateway share; ``protocol`` closes connections whose request head or body arrive too
slowly (slowloris), which uvicorn alone never does.
"""

from neuronetz_gateway.server.config import run, uvicorn_config
from neuronetz_gateway.server.protocol import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    DeadlineHttpToolsProtocol,
    DeadlineProtocolFactory,
)

__all__ = [
    "BODY_TIMEOUT_S",
    "HEADER_TIMEOUT_S",
    "DeadlineHttpToolsProtocol",
    "DeadlineProtocolFactory",
    "run",
    "uvicorn_config",
]
