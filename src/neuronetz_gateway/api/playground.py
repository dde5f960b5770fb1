"""The browser playground: one static page, served from the gateway's own origin.

Off unless ``PLAYGROUND_ENABLED``; when off, ``/playground`` is the same 404 as any
unknown path. The page loads nothing from anywhere: its one inline script and one
inline style are allowed by their SHA-256 in a Content-Security-Policy that permits
nothing else, and it may only talk to this origin (``connect-src 'self'``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from neuronetz_gateway.api.dependencies import gateway
from neuronetz_gateway.errors import NotFound

router = APIRouter(tags=["operations"])

_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PlaygroundPage:
    html: bytes
    headers: dict[str, str]


def content_security_policy(html: bytes) -> str:
    """A policy allowing exactly the page's inline script and style blocks, nothing else."""
    sources: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for match in _INLINE.finditer(html):
        digest = base64.b64encode(hashlib.sha256(match.group(2)).digest()).decode("ascii")
        sources[match.group(1)].append(f"'sha256-{digest}'")
    scripts = " ".join(sources[b"script"]) or "'none'"
    styles = " ".join(sources[b"style"]) or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def playground_page() -> PlaygroundPage:
    """The page and its headers, read from the package data on first use."""
    html = (resources.files("neuronetz_gateway") / "playground" / "index.html").read_bytes()
    return PlaygroundPage(
        html=html,
        headers={
            "Content-Security-Policy": content_security_policy(html),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        },
    )


@router.get("/playground", include_in_schema=False)
@router.get("/playground/", include_in_schema=False)
async def playground(request: Request) -> Response:
    if not gateway(request).settings.playground_enabled:
        raise NotFound("unknown path")
    page = playground_page()
    return Response(
        content=page.html,
        status_code=200,
        headers=page.headers,
        media_type="text/html; charset=utf-8",
    )
