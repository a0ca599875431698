"""`assistant gradio --port 0`: a free port picked by the kernel, not gradio's default 7860 (gradio reads 0
as "use the default"), and the printed URL is the real one."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request

import pytest

from ui.gradio_app import serving_port

GRADIO_DEFAULT_PORTS = range(7860, 7960)  # 7860, and the next 99 it tries when that one is taken


def test_port_0_becomes_a_free_port_and_a_given_port_is_kept():
    port = serving_port("127.0.0.1", 0)
    assert port not in GRADIO_DEFAULT_PORTS
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free: the probe socket was closed
    assert serving_port("127.0.0.1", 9123) == 9123


@pytest.mark.slow
def test_the_app_launched_with_port_0_serves_on_the_printed_free_port(capsys):
    from ui.gradio_app import GradioOptions, launch

    def no_session(**_):
        raise AssertionError("no call starts here, so no session is made")

    app, url, _token = launch(no_session, GradioOptions(port=0, token="port-test"), block=False)
    try:
        printed = capsys.readouterr().out
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", url).group(1))
        assert port not in GRADIO_DEFAULT_PORTS, url
        assert f"127.0.0.1:{port}" in printed, printed
        with pytest.raises(urllib.error.HTTPError) as refused:  # gradio answers there, behind its login
            urllib.request.urlopen(url + "config", timeout=10)
        assert refused.value.code == 401
    finally:
        app.close()
