"""The OpenAI Realtime protocol over a WebSocket: any Realtime client can talk to the duplex assistant.

``protocol``: the session's settings, client events checked into typed values, errors in the protocol's
shape. ``formats``: the audio formats the protocol names. ``connection``: one socket bound to one duplex
session (events out, audio paced at real time, barge-in). The route lives in ``ui.webrtc.server``.
"""
