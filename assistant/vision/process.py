"""Run a frame describer in a child process at the lowest CPU priority.

Why a process and not a low-priority thread: OCR's pre- and post-processing is Python code that holds the
GIL. A thread that holds the GIL while the scheduler starves it (as a low priority lets it) stalls the
event loop and the VAD thread with it (measured: event-loop lag p99 150 ms instead of 6 ms). A child process
has its own GIL, so it can be given only the CPU time that audio, ASR and the LLM leave over.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

log = logging.getLogger("assistant.vision")


def _lowest_priority() -> None:
    """This whole process runs only when the CPU is otherwise idle (SCHED_IDLE; else nice 19).

    Linux applies the policy per thread: set it on every thread already running (numpy's import starts
    some); the threads started later inherit it."""
    try:
        for thread in os.listdir("/proc/self/task"):
            os.sched_setscheduler(int(thread), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


def _serve(requests: Connection, connection: Connection) -> None:
    _lowest_priority()
    try:
        describer = requests.recv()()  # the first message is the factory
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", getattr(describer, "name", "describer")))
    while True:
        try:
            frame = requests.recv()
        except (EOFError, OSError):
            return
        if frame is None:
            return
        try:
            connection.send(("ok", describer.describe(frame)))
        except Exception as error:  # noqa: BLE001
            connection.send(("error", f"{type(error).__name__}: {error}"))


class DescriberProcess:
    """A ``FrameDescriber`` whose work happens in a child process made by ``factory`` (must be picklable,
    e.g. ``functools.partial(ExpertDescriber, ocr=True)``). A child that hangs or dies is replaced."""

    def __init__(self, factory: Callable[[], object], start_timeout_s: float = 120.0,
                 describe_timeout_s: float = 30.0) -> None:
        self.factory = factory
        self.start_timeout_s, self.describe_timeout_s = start_timeout_s, describe_timeout_s
        self._lock = threading.Lock()
        self._pause_lock = threading.Lock()
        self._pauses = 0
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._connection: Connection | None = None
        self.name = "process:" + self._start()
        self.restarts = 0

    def _start(self) -> str:
        # A fresh interpreter (not multiprocessing's spawn, which re-imports the caller's main script, nor a
        # fork of a process that runs model threads), talking over two pipes.
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                           OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")  # one core at most, never both
        process = subprocess.Popen([sys.executable, "-m", "assistant.vision.process", str(to_child_r),
                                    str(from_child_w)], pass_fds=(to_child_r, from_child_w), env=environment)
        os.close(to_child_r)
        os.close(from_child_w)
        requests, answers = Connection(to_child_w, readable=False), Connection(from_child_r, writable=False)
        requests.send(self.factory)
        if not answers.poll(self.start_timeout_s):
            process.kill()
            raise RuntimeError(f"the vision process did not start within {self.start_timeout_s:g} s")
        try:
            status, value = answers.recv()
        except EOFError:
            status, value = "error", f"it exited with status {process.wait(5)}"
        if status != "ready":
            process.wait(5)
            raise RuntimeError(f"the vision process failed to load its models: {value}")
        self._process, self._requests, self._connection = process, requests, answers
        return value

    def describe(self, frame: np.ndarray) -> str:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._restart("it had died")
            requests, connection = self._requests, self._connection
            assert requests is not None and connection is not None  # set by _start with the process
            requests.send(frame)
            working_s = 0.0  # time paused for the audio path does not count
            while not connection.poll(0.25):
                working_s += 0.0 if self._pauses else 0.25
                if working_s >= self.describe_timeout_s:
                    self._restart(f"no answer within {self.describe_timeout_s:g} s")
                    raise TimeoutError(f"describing a frame took over {self.describe_timeout_s:g} s; "
                                       "vision process restarted")
            try:
                status, value = connection.recv()
            except EOFError:
                status, value = "error", "the vision process died"
        if status != "ok":
            raise RuntimeError(value)
        return value

    def pause(self) -> None:
        """Stop the child where it is (SIGSTOP) while the audio path needs the CPU; ``resume`` goes on.
        Idle priority alone still cost whisper 6-22 % on 2 cores (shared caches and memory bandwidth).
        Counted: sessions sharing this describer each pause and resume it; it runs when none holds it."""
        with self._pause_lock:
            self._pauses += 1
            if self._pauses == 1:
                self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        with self._pause_lock:
            if self._pauses == 0:
                return
            self._pauses -= 1
            if self._pauses == 0:
                self._signal(signal.SIGCONT)

    def _signal(self, which: int) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            try:
                os.kill(process.pid, which)
            except OSError:
                pass

    def _restart(self, why: str) -> None:
        log.warning("restarting the vision process: %s", why)
        self._stop()
        self.restarts += 1
        self._start()
        if self._pauses:
            self._signal(signal.SIGSTOP)

    def _stop(self) -> None:
        self._signal(signal.SIGCONT)  # a stopped child cannot exit
        if self._requests is not None:
            try:
                self._requests.send(None)
            except OSError:
                pass
            self._requests.close()
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            try:
                self._process.wait(1.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = self._requests = self._connection = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __del__(self) -> None:
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


if __name__ == "__main__":  # the child: python -m assistant.vision.process READ_FD WRITE_FD
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
