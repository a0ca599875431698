"""A private PulseAudio server with null devices, so the sound card code runs on real audio streams in CI.

Debian's PortAudio reaches PulseAudio through ALSA's pulse plugin; this server lives in a temp dir, is
reached through ``PULSE_SERVER`` and offers (see /work/shared/notes/desktop-audio.md):

- ``spk``: the default sink, what the app plays; record it from ``spk.monitor``.
- ``micfeed``: a sink whose monitor is remapped to ``vmic``, the default source: play a WAV file into
  ``micfeed`` and the app hears it as its microphone.
- ``zero`` loopbacks keep both null sinks running (without them monitors deliver nothing while idle).

``open_speakers()`` adds a loopback spk.monitor -> micfeed: the microphone then hears the assistant.
Used by the desktop tests and ``benchmarks/echo_cancellation.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SERVER_SCRIPT = """
load-module module-native-protocol-unix auth-anonymous=1 auth-cookie-enabled=0 socket={socket}
load-module module-null-sink sink_name=spk rate=48000 channels=1
load-module module-null-sink sink_name=micfeed rate=48000 channels=1
load-module module-remap-source master=micfeed.monitor source_name=vmic channels=1
load-module module-null-source source_name=zero rate=48000 channels=1
load-module module-loopback source=zero sink=micfeed latency_msec=20 source_dont_move=true sink_dont_move=true
load-module module-loopback source=zero sink=spk latency_msec=20 source_dont_move=true sink_dont_move=true
set-default-sink spk
set-default-source vmic
"""


class PulseUnavailable(RuntimeError):
    """No pulseaudio binary, or the server did not come up: the message says which."""


@dataclass
class PulseServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pulse-")))
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self, timeout_s: float = 15.0) -> PulseServer:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise PulseUnavailable("pulseaudio/pactl not installed (scripts/setup.sh installs pulseaudio "
                                   "pulseaudio-utils alsa-utils libasound2-plugins)")
        xdg = self.root / "xdg"
        (xdg / "pulse").mkdir(parents=True, exist_ok=True)
        xdg.chmod(0o700)
        self.env = {"XDG_RUNTIME_DIR": str(xdg), "PULSE_RUNTIME_PATH": str(xdg / "pulse"),
                    "PULSE_STATE_PATH": str(xdg / "pulse-state"), "PULSE_SERVER": f"unix:{xdg}/pulse/native",
                    "PULSE_COOKIE": str(xdg / "pulse-cookie")}
        script = self.root / "ci.pa"
        script.write_text(SERVER_SCRIPT.format(socket=xdg / "pulse" / "native"))
        self.process = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             f"--log-target=file:{self.root / 'pa.log'}"],
            env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PulseUnavailable(f"pulseaudio exited with {self.process.returncode}: {self.log_tail()}")
            if self.pactl("info", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise PulseUnavailable(f"pulseaudio did not answer within {timeout_s} s: {self.log_tail()}")
        self.wait_until_real_time(deadline + 10.0)
        return self

    def wait_until_real_time(self, deadline: float) -> None:
        """Null devices deliver audio in real time only a few seconds after start: probe until they do."""
        while time.monotonic() < deadline:
            began = time.monotonic()
            ok = all(self.record_probe(device, 0.3) for device in ("spk.monitor", "vmic"))
            if ok and time.monotonic() - began < 1.5:
                return
            time.sleep(0.2)
        raise PulseUnavailable("the null devices never delivered audio in real time")

    def record_probe(self, device: str, seconds: float) -> bool:
        """Record ``seconds`` from ``device``; True when (nearly) that much audio arrived in time."""
        rate = 16000
        proc = subprocess.Popen(["parecord", f"--device={device}", "--raw", "--format=s16le", f"--rate={rate}",
                                 "--channels=1"], env=self.child_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        try:
            data, _ = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            return False
        return len(data) >= 2 * rate * seconds * 0.5

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["pactl", *args], env=self.child_env(), capture_output=True, text=True, timeout=10)
        if check and result.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def play_into_mic(self, wav: Path, volume: float = 1.0) -> subprocess.Popen:
        """Start playing ``wav`` into the microphone (``vmic``); returns the paplay process."""
        return subprocess.Popen(["paplay", "--device=micfeed", f"--volume={int(65536 * volume)}", str(wav)],
                                env=self.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def record_speaker(self, rate: int = 16000) -> SpeakerRecording:
        """Start recording what the app plays; ``.stop()`` returns float32 mono samples."""
        proc = subprocess.Popen(["parecord", "--device=spk.monitor", "--raw", "--format=s16le", f"--rate={rate}",
                                 "--channels=1", "--latency-msec=20"], env=self.child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return SpeakerRecording(proc, rate)

    def open_speakers(self, gain: float = 0.5, latency_ms: int = 30) -> int:
        """Loop what the app plays back into its microphone (a laptop on open speakers); returns the module id.

        ``adjust_time=0``: the default keeps retuning the loopback's rate, which linear echo paths cannot follow.
        """
        module = int(self.pactl("load-module", "module-loopback", "source=spk.monitor", "sink=micfeed",
                                f"latency_msec={latency_ms}", "adjust_time=0", "source_dont_move=true",
                                "sink_dont_move=true").stdout.strip())
        for line in self.pactl("list", "short", "sink-inputs").stdout.splitlines():
            parts = line.split("\t")
            if len(parts) > 1 and parts[1] == str(module):  # index, owner module, client, driver, spec
                self.pactl("set-sink-input-volume", parts[0], str(int(65536 * gain)))
        return module

    def unload_module(self, module: int) -> None:
        self.pactl("unload-module", str(module))

    def module_id(self, name: str, argument_contains: str) -> int:
        for line in self.pactl("list", "short", "modules").stdout.splitlines():
            parts = line.split("\t")
            if len(parts) > 2 and parts[1] == name and argument_contains in parts[2]:
                return int(parts[0])
        raise KeyError(f"no {name} module with {argument_contains!r}")

    def client_streams(self) -> list[str]:
        """Sink inputs and source outputs other than the server's own loopbacks: streams an app left open."""
        streams = []
        for kind in ("sink-inputs", "source-outputs"):
            for line in self.pactl("list", "short", kind).stdout.splitlines():
                parts = line.split("\t")
                if len(parts) > 2 and parts[2] != "-":  # owned by a client, not by a module
                    streams.append(f"{kind}: {line}")
        return streams

    def log_tail(self, lines: int = 20) -> str:
        log = self.root / "pa.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"

    # --- this process's environment, so sounddevice (PortAudio) in-process reaches this server ----------

    def export_env(self) -> None:
        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        reinitialise_portaudio()

    def restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def kill(self) -> None:
        """Stop the server abruptly (as when the audio server crashes); ``start()`` brings it back."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.restore_env()
        shutil.rmtree(self.root, ignore_errors=True)


class SpeakerRecording:
    """parecord into memory; a thread drains its pipe (a full 64 KB pipe would stall the recorder after 2 s)."""

    def __init__(self, process: subprocess.Popen, rate: int) -> None:
        self.process, self.rate = process, rate
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        stdout = self.process.stdout
        assert isinstance(stdout, io.BufferedReader)  # stdout=PIPE with the default buffering
        while chunk := stdout.read1(65536):
            self._chunks.append(chunk)

    def stop(self) -> np.ndarray:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        data = b"".join(self._chunks)
        return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16).astype(np.float32) / 32768.0


def reinitialise_portaudio() -> None:
    """PortAudio lists devices once, when initialised: re-list them after the audio server changed."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
