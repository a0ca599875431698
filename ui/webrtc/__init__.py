"""The browser voice and video chat: an aiohttp page and signalling server with one aiortc peer per call.

Modules, one concept each:
  options.py  the server's typed options and their defaults
  ice.py      keeps ICE host candidates on the bound address (loopback-only machines, no public STUN)
  tracks.py   the assistant's voice as an outgoing audio track, paced in 20 ms frames
  call.py     one browser call: peer connection, microphone and camera in, voice and live events out
  server.py   HTTP routes (page, offer/answer with the access token), the session limit, teardown
  static/     the page: plain HTML, CSS and JavaScript with no external resources
"""
