"""Who is calling: what the guard puts on an authenticated request."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Identity:
    id: int
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class Credentials:
    """The token that authenticated the request: for logout (revocation) and CSRF tokens."""

    jti: str
    expires_at: int  # unix seconds
    via: str  # "bearer" or "cookie"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_client(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """The address a request is counted under (sign-in throttling, the audit trail).

    The peer, unless the peer is a trusted proxy (ECOGRAM_TRUSTED_PROXIES): then the nearest
    address of ``X-Forwarded-For`` (its header lines in order, read from the right) that is not
    itself a trusted proxy. Each proxy appends the address it received the request from, so
    what a client wrote in the header itself stays to the left and is never reached. Something
    that is not an address ends the walk at the last trusted hop.
    """
    current = _address(peer) if peer else None
    if current is None:
        return peer or "unknown"
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    while trusted and any(current in network for network in trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)
