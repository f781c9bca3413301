"""Who is really asking: the client's address and whether its request came over HTTPS.

Behind a reverse proxy every request comes from the proxy's address, so the sign-in throttle,
the audit trail and the request log need the address the proxy forwards (``X-Forwarded-For``),
and the session cookie needs to know the browser used HTTPS (``X-Forwarded-Proto``). A client can
send those headers too, so they are believed only from an address of ``ML4PALEO_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from flask import current_app, request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    """The trusted proxies as networks (an address is a network of one); ValueError for a bad one."""
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def is_trusted(address: str | None, proxies: tuple[str, ...] | None = None) -> bool:
    """Whether ``address`` is one of the trusted proxies (default: the app's setting)."""
    if proxies is None:
        proxies = current_app.extensions["ml4paleo.settings"].trusted_proxies
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks(tuple(proxies)))


def client_address() -> str:
    """The client's address: the peer's, or, from a trusted proxy, the nearest untrusted hop of
    ``X-Forwarded-For`` read from the right (hops further left are the client's own claims)."""
    remote = request.remote_addr or ""
    if not is_trusted(remote):
        return remote
    hops = [h.strip() for value in request.headers.getlist("X-Forwarded-For") for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop[:64]
    return hops[0][:64] if hops else remote


def is_secure() -> bool:
    """Whether the browser's request came over HTTPS: directly, or as a trusted proxy says."""
    if request.is_secure:
        return True
    if not is_trusted(request.remote_addr):
        return False
    return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"
