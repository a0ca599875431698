"""ICE on a server restricted to one address: a remote mDNS candidate (``<uuid>.local``, how browsers hide
their host address) is dropped, never resolved, so no socket opens on UDP 5353 on every interface; the call
still connects through the peer-reflexive candidate the client's own checks reveal (as Chrome's do)."""

from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import aioice.ice
import aioice.mdns
import psutil
import pytest
from aiortc import RTCSessionDescription

from tests.chat_server import FakeSessionFactory, base, threads_started_from_now, wait_until
from tests.webrtc_client import ClientCall, SignalMicrophone
from ui.webrtc.ice import restrict_ice_to
from ui.webrtc.options import ServerOptions
from ui.webrtc.server import ChatServer

MDNS_PORT = 5353


@pytest.fixture(autouse=True)
def restore_aioice():
    """restrict_ice_to patches aioice for the whole process: put back what the test found."""
    saved = aioice.ice.get_host_addresses, aioice.ice.get_or_create_mdns_protocol
    yield
    aioice.ice.get_host_addresses, aioice.ice.get_or_create_mdns_protocol = saved


def udp_ports() -> set[int]:
    process = psutil.Process()
    connections = getattr(process, "net_connections", process.connections)(kind="udp")
    return {c.laddr.port for c in connections if c.laddr}


def hide_host_candidates(sdp: str) -> str:
    """The offer as Chrome sends it when it hides its address: host candidates named ``<uuid>.local``, and no
    end-of-candidates line (so the answerer keeps waiting for checks instead of failing at once)."""
    name = f"{uuid.uuid4()}.local"
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=end-of-candidates"):
            continue
        if line.startswith("a=candidate:"):
            fields = line.split(" ")
            fields[4] = name  # foundation component transport priority ADDRESS port typ ...
            line = " ".join(fields)
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def test_restriction_swaps_the_mdns_resolver_and_an_unrestricted_server_gets_aioices_back():
    from ui.webrtc import ice

    original = ice._original_get_or_create_mdns_protocol  # aioice's own (an earlier server may have swapped it)
    restrict_ice_to("127.0.0.1")
    assert aioice.ice.get_or_create_mdns_protocol is not original
    resolver = asyncio.run(aioice.ice.get_or_create_mdns_protocol(object()))
    assert asyncio.run(resolver.resolve("abcd.local")) is None
    restrict_ice_to("0.0.0.0")
    assert aioice.ice.get_or_create_mdns_protocol is original


async def test_a_mdns_candidate_opens_no_port_5353_and_the_call_connects(monkeypatch):
    opened: list[int] = []
    original_create = aioice.mdns.create_mdns_protocol

    async def spy_create():  # aioice's own resolver, counted: it is what binds 0.0.0.0:5353
        opened.append(1)
        return await original_create()

    monkeypatch.setattr(aioice.mdns, "create_mdns_protocol", spy_create)
    vad_threads = threads_started_from_now(("vad",))
    assert MDNS_PORT not in udp_ports(), "this process already listens on 5353: the check would mean nothing"
    server = ChatServer(FakeSessionFactory(), ServerOptions(port=0))  # binds 127.0.0.1: the restricted case
    await server.start()
    client = ClientCall(SignalMicrophone())
    try:
        await client.pc.setLocalDescription(await client.pc.createOffer())
        offer = hide_host_candidates(client.pc.localDescription.sdp)
        assert re.search(r"a=candidate:\S+ 1 udp \d+ [0-9a-f-]{36}\.local ", offer), offer
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{base(server)}/offer", headers={"Authorization": f"Bearer {server.token}"},
                                       json={"sdp": offer, "type": "offer"})
            body = await response.json()
        assert response.status == 200, body
        # the offer's candidates were handled by now
        assert MDNS_PORT not in udp_ports(), "aioice opened its mDNS socket on 0.0.0.0:5353"
        assert not opened, "aioice's mDNS resolver was created"
        await client.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        await asyncio.wait_for(client.opened.wait(), 15)  # the data channel opened: ICE and DTLS are up
        call = server.calls[body["call_id"]]
        await wait_until(lambda: call.audio_frames_in > 10, 10)
        assert call.pc.connectionState == "connected"
        assert MDNS_PORT not in udp_ports() and not opened
    finally:
        await client.close()
        await server.stop()
    # The call's own close (the client hung up) and the server's overlapped: both done, no pool left running
    # (its idle thread ends a moment after the pool is shut down).
    await wait_until(lambda: not vad_threads(), 2, vad_threads)
