"""Data-channel text that is not UTF-8 becomes an error reply, not the end of the call.

aiortc decodes a text message as UTF-8 inside its SCTP transport, before our handler sees it; invalid bytes
raise there, and the exception ends the association, and with it the sender's call. aiortc has no option for
this, so its receive step is wrapped, once per process, to decode such bytes with replacement characters
(the message then fails JSON validation in ``Call`` and gets an error reply like any other bad message).
"""

from __future__ import annotations

from aiortc import rtcsctptransport

_original_receive = rtcsctptransport.RTCSctpTransport._data_channel_receive


async def _receive_tolerating_bad_text(self, stream_id: int, pp_id: int, data: bytes) -> None:
    if pp_id == rtcsctptransport.WEBRTC_STRING:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode("utf-8")
    await _original_receive(self, stream_id, pp_id, data)


def tolerate_invalid_text() -> None:
    # setattr: replacing aiortc's method on its class is the point here
    setattr(rtcsctptransport.RTCSctpTransport, "_data_channel_receive", _receive_tolerating_bad_text)
