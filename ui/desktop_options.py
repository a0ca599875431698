"""The desktop app's options, typed, with their defaults in one place.

Kept free of heavy imports (sounddevice, models) so the command line can build them before loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DesktopOptions:
    input_device: str | None = None  # a device index or (part of) its name; None: the system default
    output_device: str | None = None
    sample_rate: int | None = None  # None: 48 kHz when the devices take it, else their own default rate
    block_s: float = 0.01  # one sound card callback: 10 ms, the echo canceller's frame
    # PortAudio's suggested latency (seconds, or 'high'/'low'; 'high' is ~40 ms through ALSA's pulse plugin).
    # Short on purpose: when the user starts talking the assistant's voice must stop at once, because while
    # both talk the echo canceller chops the user's words (measured: with a 200 ms buffer "What is two plus
    # two?" reached the ASR as "plus two."). A deeper buffer rides out a busier CPU but hurts barge-in.
    latency: float | str = "high"
    headphones: bool = False  # no echo canceller: the microphone cannot hear the speakers
    stall_s: float = 2.0  # no callback for this long: the device is taken for gone
    reopen_for_s: float = 10.0  # after a device went away, keep trying to reopen it this long, then stop
    reopen_every_s: float = 1.0
    close_timeout_s: float = 3.0  # a stream that does not close in this time is abandoned (never a hang)
    open_timeout_s: float = 8.0  # re-listing and reopening the devices; a driver stuck longer is abandoned
    show_workers: bool = False  # also print the two workers' roles whenever they change

