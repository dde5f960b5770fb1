"""The client's address: the TCP peer, or `X-Forwarded-For` when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from neuronetz_gateway.settings import IPNetwork


@lru_cache(maxsize=4096)
def _parse(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(ip: str, trusted: Sequence[IPNetwork]) -> bool:
    addr = _parse(ip)
    return addr is not None and any(addr in net for net in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """Walk `X-Forwarded-For` from the right, skipping trusted hops, only if the peer is
    trusted; the first untrusted address is the client."""
    peer = peer or "unknown"
    if not forwarded_for or not trusted or not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            return peer  # a malformed hop: believe nothing beyond our own proxy
        if not any(addr in net for net in trusted):
            return str(addr)
    return str(_parse(hops[0])) if hops else peer
