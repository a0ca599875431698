"""The computer's microphone and speakers through sounddevice (PortAudio), with echo cancellation.

``SoundCard`` opens two streams, an ``InputStream`` and an ``OutputStream`` (a duplex ``sd.Stream`` through
ALSA's pulse plugin silently drops output blocks), both in 10 ms blocks. The output callback asks
``play(n)`` for the next samples and keeps the exact block it handed to the device as the echo canceller's
reference; the input callback runs the canceller on the microphone block with the reference played since
the previous callback (AEC3 finds the delay between them itself), and hands both the raw and the cleaned
block to ``on_mic``. Both callbacks run in PortAudio's threads: ``play`` and ``on_mic`` must be thread-safe
and quick (never touch asyncio there except through ``loop.call_soon_threadsafe``).

Device problems end as ``DeviceError`` with a message naming the device and what is available.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from audio.aec import APM_SAMPLE_RATES, EchoCanceller, PlayedTimeline, make_echo_canceller
from audio.frames import StreamResampler, to_int16

if TYPE_CHECKING:
    import sounddevice

PREFERRED_RATE = 48000
FALLBACK_RATES = (48000, 44100, 32000, 16000)


class DeviceError(RuntimeError):
    """A sound device that is missing, busy, gone or cannot do what was asked; the message says which."""


def _sd():
    try:
        import sounddevice
    except OSError as error:  # the PortAudio library itself is missing
        raise DeviceError(f"PortAudio is not available ({error}); install libportaudio2") from None
    return sounddevice


def describe_devices() -> str:
    """The device list ``--list-devices`` prints: index, name, channels, default rate, defaults marked."""
    sd = _sd()
    devices = sd.query_devices()
    default_in, default_out = sd.default.device
    lines = []
    for index, device in enumerate(devices):
        marks = ("<" if index == default_in else " ") + (">" if index == default_out else " ")
        lines.append(f"{marks} {index:3d}  {device['name']}  ({device['max_input_channels']} in, "
                     f"{device['max_output_channels']} out, {device['default_samplerate']:.0f} Hz)")
    if not lines:
        return "no sound devices found"
    return "\n".join(lines + ["(< default input, > default output)"])


def resolve_device(spec: str | int | None, kind: str) -> int:
    """The device index for ``spec``: None (the default), an index, or a unique part of a device's name."""
    sd = _sd()
    channels_key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = list(sd.query_devices())
    usable = [(i, d) for i, d in enumerate(devices) if d[channels_key] > 0]
    available = ", ".join(f"{i}: {d['name']}" for i, d in usable) or "none"
    if spec is None or spec == "":
        default = sd.default.device[0 if kind == "input" else 1]
        if default is None or default < 0 or default >= len(devices) or devices[default][channels_key] == 0:
            raise DeviceError(f"there is no default {kind} device (available {kind} devices: {available}); "
                              "pick one with --list-devices")
        return int(default)
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(devices):
            raise DeviceError(f"no sound device {index} (available {kind} devices: {available})")
        if devices[index][channels_key] == 0:
            raise DeviceError(f"device {index} ({devices[index]['name']}) has no {kind} channels "
                              f"(available {kind} devices: {available})")
        return index
    exact = [i for i, d in usable if d["name"].lower() == text.lower()]
    matches = exact or [i for i, d in usable if text.lower() in d["name"].lower()]
    if not matches:
        raise DeviceError(f"no {kind} device named like {text!r} (available {kind} devices: {available})")
    if len(matches) > 1:
        names = ", ".join(f"{i}: {devices[i]['name']}" for i in matches)
        raise DeviceError(f"{text!r} matches several {kind} devices ({names}); give the index instead")
    return matches[0]


def choose_rate(device: int, kind: str, requested: int | None) -> int:
    """A rate ``device`` accepts: ``requested`` (or a clear error), else 48 kHz, its own default, or a usual one."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    info = sd.query_devices(device)

    def accepted(rate: int) -> bool:
        try:
            check(device=device, samplerate=rate, channels=1, dtype="int16")
            return True
        except Exception:
            return False

    if requested is not None:
        if requested <= 0 or not accepted(requested):
            raise DeviceError(f"{kind} device {device} ({info['name']}) does not support {requested} Hz "
                              f"mono 16-bit; its default rate is {info['default_samplerate']:.0f} Hz")
        return requested
    for rate in (PREFERRED_RATE, int(info["default_samplerate"]), *FALLBACK_RATES):
        if rate > 0 and accepted(rate):
            return rate
    raise DeviceError(f"{kind} device {device} ({info['name']}) accepts none of the usual sample rates "
                      f"(48000, {info['default_samplerate']:.0f}, 44100, 32000, 16000 Hz mono 16-bit)")


@dataclass(frozen=True)
class DeviceChoice:
    input_device: int
    output_device: int
    input_rate: int
    output_rate: int
    input_name: str
    output_name: str

    def describe(self) -> str:
        return (f"microphone {self.input_device} ({self.input_name}) at {self.input_rate} Hz, "
                f"speakers {self.output_device} ({self.output_name}) at {self.output_rate} Hz")


def choose_devices(input_spec: str | int | None, output_spec: str | int | None,
                   sample_rate: int | None) -> DeviceChoice:
    sd = _sd()
    input_device = resolve_device(input_spec, "input")
    output_device = resolve_device(output_spec, "output")
    return DeviceChoice(input_device, output_device, choose_rate(input_device, "input", sample_rate),
                        choose_rate(output_device, "output", sample_rate),
                        sd.query_devices(input_device)["name"], sd.query_devices(output_device)["name"])


def echo_rate(input_rate: int) -> int:
    """The echo canceller's rate: the microphone's when WebRTC takes it (no resampling), else 48 kHz."""
    return input_rate if input_rate in APM_SAMPLE_RATES else PREFERRED_RATE


class SoundCard:
    """Microphone in, speakers out, echo cancelled in between. ``start`` / ``close``; ``failure`` says why it died."""

    def __init__(self, devices: DeviceChoice, play: Callable[[int], np.ndarray],
                 on_mic: Callable[[np.ndarray, np.ndarray, int], None], headphones: bool = False,
                 block_s: float = 0.01, latency: float | str = "high", align_by_timestamps: bool = False) -> None:
        """``play(n)``: the next n int16 samples at the output rate; ``on_mic(raw, cleaned, rate)``: each
        microphone block before and after echo cancellation (int16 mono at ``rate``)."""
        self.devices = devices
        self.play = play
        self.on_mic = on_mic
        self.block_s = block_s
        self.latency = latency
        self.rate = echo_rate(devices.input_rate)
        self.canceller: EchoCanceller = make_echo_canceller(headphones, self.rate)
        self._mic_resampler = StreamResampler(devices.input_rate, self.rate)
        self._reference_resampler = StreamResampler(devices.output_rate, self.rate)
        # (when it sounds, block) from the speaker thread to the microphone thread, which owns the timeline;
        # bounded in case the input stream stalls.
        self._played: deque[tuple[float, np.ndarray]] = deque(maxlen=int(2.0 / block_s))
        self.timeline = PlayedTimeline(devices.output_rate, devices.input_rate)
        # By default the reference is the blocks in the order they were played. Placing them by PortAudio's
        # timestamps (``PlayedTimeline``) was meant to survive underruns but measured worse through ALSA's
        # pulse plugin (one forced 150 ms stall: 13-19 dB against 31-38 dB in order; docs/benchmarks.md).
        self.align_by_timestamps = align_by_timestamps
        self._input: sounddevice.InputStream | None = None
        self._output: sounddevice.OutputStream | None = None
        self.failure: str | None = None
        self.last_input_at = 0.0
        self.last_output_at = 0.0
        self.input_blocks = 0
        self.output_blocks = 0
        self.overflows = 0
        self.underflows = 0
        self.callback_errors = 0
        self.longest_output_gap_s = 0.0  # between two speaker callbacks: how long the process was held up

    # --- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        sd = _sd()
        d = self.devices
        try:
            self._output = sd.OutputStream(device=d.output_device, samplerate=d.output_rate, channels=1,
                                           dtype="int16", blocksize=int(d.output_rate * self.block_s),
                                           latency=self.latency, callback=self._output_callback,
                                           finished_callback=lambda: self._finished("speakers"))
            self._input = sd.InputStream(device=d.input_device, samplerate=d.input_rate, channels=1,
                                         dtype="int16", blocksize=int(d.input_rate * self.block_s),
                                         latency=self.latency, callback=self._input_callback,
                                         finished_callback=lambda: self._finished("microphone"))
            now = time.monotonic()
            self.last_input_at = self.last_output_at = now
            self._output.start()
            self._input.start()
        except Exception as error:  # PortAudioError, or a device that vanished between listing and opening
            self.close()
            raise DeviceError(f"could not open the sound devices ({d.describe()}): {error}") from None

    def close(self, timeout_s: float = 3.0) -> bool:
        """Stop and close both streams; True when they closed in time (a stuck driver is abandoned, not waited on)."""
        streams = [s for s in (self._input, self._output) if s is not None]
        self._input = self._output = None
        if not streams:
            return True

        def shut() -> None:
            for stream in streams:
                try:
                    stream.abort(ignore_errors=True)
                    stream.close(ignore_errors=True)
                except Exception:  # a device that is already gone: nothing more to release
                    pass

        closer = threading.Thread(target=shut, name="sound-card-close", daemon=True)
        closer.start()
        closer.join(timeout_s)
        return not closer.is_alive()

    # --- health ------------------------------------------------------------------------------------

    def problem(self, stall_s: float) -> str | None:
        """Why the devices are not working (a stream ended, or no callback for ``stall_s``), else None."""
        if self.failure:
            return self.failure
        now = time.monotonic()
        for name, stream, last in (("microphone", self._input, self.last_input_at),
                                   ("speakers", self._output, self.last_output_at)):
            if stream is None:
                return f"the {name} stream is closed"
            if not stream.active:
                return f"the {name} stream stopped"
            if now - last > stall_s:
                return f"no audio from the {name} for {now - last:.1f} s"
        return None

    def _finished(self, name: str) -> None:
        if self._input is not None or self._output is not None:  # not a close we asked for
            self.failure = self.failure or f"the {name} stream ended (device unplugged or the audio server went away)"

    # --- PortAudio threads -------------------------------------------------------------------------

    def _output_callback(self, outdata, frames, time_info, status) -> None:
        now = time.monotonic()
        if self.output_blocks:
            self.longest_output_gap_s = max(self.longest_output_gap_s, now - self.last_output_at)
        self.last_output_at = now
        self.output_blocks += 1
        if status.output_underflow:
            self.underflows += 1
        try:
            block = to_int16(np.asarray(self.play(frames)))
            if len(block) != frames:  # never hand the device a short block
                block = np.pad(block[:frames], (0, max(0, frames - len(block))))
        except Exception:  # a failing source must not kill the audio thread: play silence, count it
            self.callback_errors += 1
            block = np.zeros(frames, dtype=np.int16)
        outdata[:, 0] = block
        # The exact samples sent to the speakers, and when they will sound: the echo reference.
        self._played.append((time_info.outputBufferDacTime, block.copy()))

    def _input_callback(self, indata, frames, time_info, status) -> None:
        self.last_input_at = time.monotonic()
        self.input_blocks += 1
        if status.input_overflow:
            self.overflows += 1
        try:
            mic = to_int16(self._mic_resampler.process(indata[:, 0]))
            played = [self._played.popleft() for _ in range(len(self._played))]
            if self.align_by_timestamps:
                for dac_time, block in played:
                    self.timeline.played(block, dac_time)
                reference = self.timeline.reference_for(frames, time_info.inputBufferAdcTime)
            else:
                reference = np.concatenate([b for _, b in played]) if played else np.zeros(0, dtype=np.int16)
            reference = to_int16(self._reference_resampler.process(reference)) if len(reference) else reference
            cleaned = self.canceller.process(mic, reference)
            self.on_mic(mic, cleaned, self.rate)
        except Exception:  # never raise into PortAudio (it would stop the stream): count and go on
            self.callback_errors += 1
