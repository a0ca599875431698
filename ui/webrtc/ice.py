"""Keep ICE on the address the server is bound to.

aioice offers every interface's address except loopback as a host candidate, and nothing else. On a machine
whose only interface is loopback that leaves no candidate and ICE fails after ~13 s; on a server bound to
127.0.0.1 it would also expose the other interfaces' addresses. aioice has no option for this, so its
address lookup is replaced, once per process, by one that returns the addresses we choose.

A remote candidate named by an mDNS hostname (``<uuid>.local``, how browsers hide their addresses) makes
aioice open a UDP socket on port 5353 on all interfaces to resolve it. A server restricted to one address
must not listen anywhere else, so there mDNS names are not resolved at all: the candidate is dropped, and
ICE still connects through the peer-reflexive candidate the browser's own checks reveal.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

import aioice.ice

log = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses
_original_get_or_create_mdns_protocol = aioice.ice.get_or_create_mdns_protocol


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


class _NoMdnsResolver:
    """Stands in for aioice's mDNS protocol: no name resolves, so aioice drops the candidate (it logs that the
    name "could not be resolved") and no socket is opened."""

    async def resolve(self, hostname: str, timeout: float = 1.0) -> str | None:
        log.debug("mDNS candidate %s dropped: this server listens on one address only", hostname)
        return None  # aioice's "could not be resolved"

    async def close(self) -> None:
        pass


_NO_MDNS = _NoMdnsResolver()


async def _no_mdns_protocol(subscriber: object) -> _NoMdnsResolver:
    # aioice's own unref_mdns_protocol on close finds no protocol of ours in its registry: nothing to undo.
    return _NO_MDNS


def restrict_ice_to(bind_host: str) -> None:
    addresses = candidate_addresses(bind_host)
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        aioice.ice.get_or_create_mdns_protocol = _original_get_or_create_mdns_protocol
        return

    def chosen_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = chosen_addresses
    # _NoMdnsResolver is duck-typed, not an MDnsProtocol: aioice calls only its resolve and close
    aioice.ice.get_or_create_mdns_protocol = _no_mdns_protocol  # type: ignore[assignment]
