"""Keep ICE on the address the server is bound to.

aioice offers every interface's address except loopback as a host candidate, and nothing else. On a machine
whose only interface is loopback that leaves no candidate and ICE fails after ~13 s; on a server bound to
127.0.0.1 it would also expose the other interfaces' addresses. aioice has no option for this, so its
address lookup is replaced, once per process, by one that returns the addresses we choose.
"""

from __future__ import annotations

import ipaddress
import socket

import aioice.ice

_original_get_host_addresses = aioice.ice.get_host_addresses


def candidate_addresses(bind_host: str) -> list[str] | None:
    """The host candidates for a server bound to ``bind_host``; None means aioice's own choice (all)."""
    if bind_host in ("", "0.0.0.0", "::"):
        return None
    if bind_host == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(bind_host))]
    except ValueError:
        return [socket.gethostbyname(bind_host)]


def restrict_ice_to(bind_host: str) -> None:
    addresses = candidate_addresses(bind_host)
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return

    def chosen_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = chosen_addresses
