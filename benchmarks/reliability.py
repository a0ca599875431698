"""Reliability probes of issue #15: a careless user and an attacker against `assistant serve`, on loopback.

    .venv/bin/python benchmarks/reliability.py [--only a,b,...] [--turns 20] [--soak MINUTES] [--cycles 3]
                                               [--vanish-calls 10]

Starts ``assistant serve``'s ChatServer in this process with the bundled models on 127.0.0.1 (probe k starts
the real command as a subprocess), calls it with real aiortc peers (tests/webrtc_client.py) and asks typed
questions over the data channel. Each probe is bounded in count and time and prints one row:
probe / expected / observed / PASS or FAIL; the exit status is 1 when any probe fails.

  a  a lone surrogate typed, then a normal question: answered
  b  ~4 KB of CJK text typed: a clear error or a clipped answer, then a normal question: answered
  c  a 4000-byte "[[[[..." data-channel message: an error reply, the call goes on
  d  60 KB of "[" posted to /offer: 400 with a JSON error
  e  max_sessions audio-recvonly offers with no ICE candidates: slots freed after the connect deadline
  f  a peer that vanishes (its process killed) while the assistant listens: slot freed within ~5 s
  g  300 half-open TCP connections without a token: /health still answers at once
  h  a burst of 300 typed messages on one call: another call's answer still starts within a few seconds
  i  --turns N questions in one call (default 20): no failed turn, first-answer latency first vs last fifth
  j  --soak MINUTES (off by default): one question every ~8 s; failed turns, latency first vs last 5 min,
     RSS growth after warm-up (this process: server and client together): the median RSS of the last
     5 minutes minus that of the first 5 after warm-up (one sample swings by tens of MiB with what is
     playing; a leak moves the medians)
  k  --cycles N (default 3) start, call, stop of `assistant serve` started with SIGINT ignored (as
     nohup, CI runners and supervisors start it): each exits under 5 s after SIGINT or SIGTERM
  l  --vanish-calls N (default 10) calls whose peer process is killed while a long answer plays: each
     slot freed, and the server's RSS per vanished call (least-squares slope after two warm-up calls)

Questions are typed, not spoken: the probes are about the transport, the history and the model backends,
and a typed message is answered without waiting for the end of speech. Answers are kept short
(--answer-tokens, default 24) so that a turn, which ends when its answer has been played, takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.webrtc_client import ClientCall, SignalMicrophone  # noqa: E402
from ui.webrtc.ice import restrict_ice_to  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?", "What colour is the sky?",
             "Name a fruit that is yellow.", "What is two plus two?", "Where do penguins live?",
             "What do bees make?", "How many days are in a week?", "What is the largest ocean?",
             "Which animal barks?"]
KEYWORDS = ["France", "spider", "sky", "fruit", "two plus two", "penguins", "bees", "week", "ocean", "barks"]
HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def helper_process(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, asyncio.StreamReader]]:
    """This script run again as one of its helpers (``--peer``, ``--half-open``, ...): the process and its
    stdout; killed and reaped on the way out, whatever the probe did with it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert child.stdout is not None  # stdout=PIPE
        yield child, child.stdout
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


@dataclass
class Row:
    probe: str
    expected: str
    observed: str
    passed: bool


# --- a peer that keeps the time of every message ------------------------------------------------------

class Peer(ClientCall):
    """ClientCall with the arrival time of each data-channel message, and helpers to ask typed questions."""

    def __init__(self, microphone: SignalMicrophone | None = None) -> None:
        super().__init__(microphone or SignalMicrophone())
        self.stamped: list[tuple[float, dict]] = []
        self.channel.on("message", self._stamp)

    def _stamp(self, message) -> None:
        try:
            self.stamped.append((time.monotonic(), json.loads(message)))
        except (ValueError, TypeError):
            self.stamped.append((time.monotonic(), {"type": "unparsable"}))

    def forget(self) -> None:
        """Drop what was received so far (a soak would otherwise grow the client's memory, not the server's)."""
        self.stamped.clear()
        self.messages.clear()
        self.voice_levels.clear()

    def since(self, index: int) -> list[tuple[float, dict]]:
        return self.stamped[index:]

    def errors(self, index: int = 0) -> list[str]:
        return [m.get("message", "") for _, m in self.since(index) if m.get("type") == "error"]

    def failed_turns(self, index: int = 0) -> list[int]:
        return [m["turn_id"] for _, m in self.since(index)
                if m.get("kind") == "TurnEnded" and m.get("status") == "failed"]

    async def ask(self, text: str, keyword: str, timeout: float = 45.0, wait_end: bool = True) -> dict:
        """Type ``text``; wait for the turn whose question holds ``keyword``, its first audio and (with
        ``wait_end``) its end. Returns status ('completed', 'interrupted', 'failed', 'no turn', 'no end'),
        latency_s (typed -> PlaybackStarted received) and the errors the server sent meanwhile."""
        index, sent = len(self.stamped), time.monotonic()
        self.send({"type": "text", "text": text})
        deadline = sent + timeout
        turn_id = latency = None
        while time.monotonic() < deadline:
            for at, m in self.since(index):
                if (turn_id is None and m.get("kind") == "TurnStarted"
                        and keyword.lower() in m.get("question", "").lower()):
                    turn_id = m["turn_id"]
                ours = turn_id is not None and m.get("turn_id") == turn_id
                if ours and latency is None and m.get("kind") == "PlaybackStarted":
                    latency = at - sent
                if ours and m.get("kind") == "TurnEnded":
                    return {"status": m["status"], "latency_s": latency, "errors": self.errors(index),
                            "answer": m.get("answer", "")}
            if turn_id is not None and latency is not None and not wait_end:
                return {"status": "started", "latency_s": latency, "errors": self.errors(index), "answer": ""}
            if not self.connected():
                break
            await asyncio.sleep(0.05)
        status = "no turn" if turn_id is None else "no end"
        return {"status": status if self.connected() else status + ", call gone", "latency_s": latency,
                "errors": self.errors(index), "answer": ""}

    async def ping(self, timeout: float = 5.0) -> bool:
        index = len(self.stamped)
        self.send({"type": "ping", "id": index})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(m.get("type") == "pong" and m.get("id") == index for _, m in self.since(index)):
                return True
            await asyncio.sleep(0.05)
        return False

    def connected(self) -> bool:
        return self.pc.connectionState == "connected" and self.channel.readyState == "open"


async def open_peer(base: str, token: str) -> Peer:
    peer = Peer()
    await peer.offer(base, token)
    if peer.status != 200:
        await peer.close()
        raise RuntimeError(f"offer refused: {peer.status} {peer.body}")
    return peer


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def trend(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs (None with fewer than three points)."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    return statistics.linear_regression(xs, ys).slope


def rss_growth(rss: list[tuple[float, float]], warm_up_s: float, window_s: float,
               elapsed: float) -> tuple[float | None, str, float | None]:
    """Growth after warm-up as the median of the last window minus the median of the first window after
    warm-up; also the range of the samples and their trend per second."""
    warm = [(t, m) for t, m in rss if t >= warm_up_s]
    first = [m for t, m in warm if t <= warm_up_s + window_s]
    last = [m for t, m in warm if t >= elapsed - window_s]
    growth = statistics.median(last) - statistics.median(first) if first and last and len(warm) >= 2 else None
    swing = f"{min(m for _, m in warm):.0f}-{max(m for _, m in warm):.0f} MiB" if warm else "none"
    return growth, swing, trend([t for t, _ in warm], [m for _, m in warm])


# --- the probes against the in-process server ---------------------------------------------------------

class Probes:
    def __init__(self, server, args, config) -> None:
        self.server, self.args, self.config = server, args, config
        self.base = f"http://{HOST}:{server.port}"
        self.token = server.token

    def call_logs(self, call_id: str) -> list[Path]:
        folder = Path(self.server.options.event_log_dir)
        return [path for path in folder.glob("*.jsonl")
                if re.search(rf"(^|-)call-{call_id}\.jsonl$|-{call_id}-", path.name)]

    def logged_failures(self, call_id: str) -> int | None:
        """Failed turns in the call's own event log (the data channel may drop events for a slow reader; the
        log has every one); None when no log of that call is found."""
        logs = self.call_logs(call_id)
        if not logs:
            return None
        failed = 0
        for path in logs:
            for line in path.read_text(errors="replace").splitlines():
                if '"TurnEnded"' in line and '"failed"' in line:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    failed += record.get("kind") == "TurnEnded" and record.get("status") == "failed"
        return failed

    async def settle(self) -> None:
        """Between probes: every call closed, so one probe's leftovers cannot fill the next one's slots."""
        try:
            await asyncio.wait_for(self.server.close_all("probe finished"), 20)
        except TimeoutError:
            print("  (closing the probe's calls took over 20 s)", flush=True)
        for _ in range(100):
            if not self.server.calls:
                break
            await asyncio.sleep(0.1)
        gc.collect()

    async def a_lone_surrogate(self) -> Row:
        peer = await open_peer(self.base, self.token)
        try:
            peer.send(json.dumps({"type": "text", "text": "\ud800 hello \udfff"}))  # valid JSON: "\ud800" escapes
            await asyncio.sleep(3.0)
            poison_failed = peer.failed_turns()
            after = await peer.ask(QUESTIONS[0], KEYWORDS[0])
            observed = (f"surrogate: {len(peer.errors())} error(s), failed turns {poison_failed or 'none'}; "
                        f"next question {after['status']} (first audio {fmt(after['latency_s'])})")
            return Row("a lone surrogate", "next question answered, no failed turn", observed,
                       after["status"] == "completed" and not peer.failed_turns())
        finally:
            await peer.close()

    async def b_cjk_text(self) -> Row:
        peer = await open_peer(self.base, self.token)
        try:
            # 1300 characters, 3900 bytes as UTF-8: under the 4096-byte message limit, over the model's context
            text = ("我想知道为什么天空是蓝色的。" * 200)[:1300]
            message = json.dumps({"type": "text", "text": text}, ensure_ascii=False)
            index = len(peer.stamped)
            peer.send(message)
            await asyncio.sleep(1.0)
            deadline = time.monotonic() + 40
            cjk_status = "no turn"
            while time.monotonic() < deadline:  # a clear error, or that turn's end (a clipped answer)
                ends = [m for _, m in peer.since(index) if m.get("kind") == "TurnEnded"]
                if peer.errors(index) and not [m for _, m in peer.since(index) if m.get("kind") == "TurnStarted"]:
                    cjk_status = "error"
                    break
                if ends:
                    cjk_status = ends[0]["status"]
                    break
                await asyncio.sleep(0.1)
            errors = peer.errors(index)
            after = await peer.ask(QUESTIONS[1], KEYWORDS[1])
            observed = (f"{len(message.encode())} bytes: {cjk_status}"
                        f"{' (' + errors[0][:60] + ')' if errors else ''}; next question {after['status']}")
            ok = cjk_status in ("error", "completed", "interrupted") and after["status"] == "completed"
            return Row("b 4 KB of CJK text", "clear error or clipped answer; next answered", observed,
                       ok and not peer.failed_turns())
        finally:
            await peer.close()

    async def c_nested_brackets(self) -> Row:
        peer = await open_peer(self.base, self.token)
        try:
            index = len(peer.stamped)
            peer.send("[" * 4000)
            await asyncio.sleep(1.0)
            errors = peer.errors(index)
            alive = await peer.ping()
            call_ok = len(self.server.calls) == 1 and peer.connected()
            observed = (f"error reply: {errors[0][:50] if errors else 'none'}; ping answered: {alive}; "
                        f"call {'up' if call_ok else 'gone'}")
            return Row("c 4000-byte '[[[['", "error reply, call survives", observed, bool(errors) and alive and call_ok)
        finally:
            await peer.close()

    async def d_offer_brackets(self) -> Row:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        async with (aiohttp.ClientSession() as http,
                    http.post(f"{self.base}/offer", data="[" * 60000, headers=headers) as r):
            status, kind, body = r.status, r.content_type, await r.text()
        is_json = False
        try:
            is_json = isinstance(json.loads(body), dict) and "error" in json.loads(body)
        except ValueError:
            pass
        observed = f"HTTP {status} {kind}" + (" with an error" if is_json else f": {body[:40]!r}")
        return Row("d 60 KB '[' to /offer", "400 JSON error", observed, status == 400 and is_json)

    async def e_offers_without_ice(self) -> Row:
        options = self.server.options
        limit = options.max_sessions
        deadline_s = getattr(options, "connect_timeout_s", None)
        wait_s = (deadline_s if deadline_s is not None else 10.0) + 5.0
        parts = [f"connect_timeout_s={deadline_s}" if deadline_s is not None else "no connect_timeout_s option"]
        ok = True
        # The offers (audio recvonly) first; a server may refuse those outright, so then offers that do
        # send audio, equally without a candidate, test the deadline itself.
        for direction in ("recvonly", "sendonly"):
            statuses = [await self._offer_without_ice(direction) for _ in range(limit)]
            held = len(self.server.calls)
            started = time.monotonic()
            while self.server.calls and time.monotonic() - started < wait_s:
                await asyncio.sleep(0.1)
            freed_after = time.monotonic() - started if not self.server.calls else None
            if freed_after is None:
                parts.append(f"{direction}: {statuses}, {len(self.server.calls)} of {held} still held "
                             f"after {wait_s:.0f}s")
                ok = False
                await self.settle()
            elif held:
                parts.append(f"{direction}: {statuses}, {held} held, freed after {freed_after:.1f}s")
                ok = ok and (deadline_s is None or freed_after <= deadline_s + 3)
            else:
                parts.append(f"{direction}: {statuses}, none held")
        sendonly_accepted = "sendonly: [200" in " ".join(parts)
        peer = Peer()
        try:
            await peer.offer(self.base, self.token)
            parts.append(f"then a new call {peer.status}")
            ok = ok and peer.status == 200 and sendonly_accepted
        finally:
            await peer.close()
        return Row(f"e {limit} offers, no ICE", "slots freed after the connect deadline", "; ".join(parts), ok)

    async def _offer_without_ice(self, direction: str) -> int:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if direction == "recvonly":
            pc.addTransceiver("audio", direction="recvonly")
        else:
            pc.addTransceiver(SignalMicrophone(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = "\r\n".join(line for line in pc.localDescription.sdp.splitlines()
                           if not line.startswith(("a=candidate", "a=end-of-candidates"))) + "\r\n"
        await pc.close()  # nothing will ever answer the server's checks
        async with aiohttp.ClientSession() as http, http.post(
                f"{self.base}/offer", json={"sdp": sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {self.token}"}) as response:
            return response.status

    async def f_vanishing_peer(self) -> Row:
        async with helper_process("--peer", self.base, self.token) as (child, stdout):
            line = await asyncio.wait_for(stdout.readline(), 60)
            if b"connected" not in line:
                return Row("f vanishing peer", "slot freed within ~5 s", f"the peer did not connect: {line!r}", False)
            await asyncio.sleep(1.0)  # the server is listening to a silent microphone
            ids = list(self.server.calls)
            child.kill()  # no goodbye of any kind: no hang-up, no DTLS close, no more packets
            killed = time.monotonic()
            while any(i in self.server.calls for i in ids) and time.monotonic() - killed < 40:
                await asyncio.sleep(0.1)
            freed = time.monotonic() - killed if not any(i in self.server.calls for i in ids) else None
            reason = self.server.ended_calls[-1].close_reason if freed is not None and self.server.ended_calls else ""
            observed = f"freed after {fmt(freed)} ({reason})" if freed is not None else "still held after 40s"
            return Row("f vanishing peer", "slot freed within ~5 s", observed, freed is not None and freed <= 6.0)

    async def g_half_open(self) -> Row:
        hold_s = 15.0
        async with helper_process("--half-open", HOST, str(self.server.port), "300", str(hold_s)) as (_, stdout):
            opened = (await asyncio.wait_for(stdout.readline(), 30)).decode().strip()
            started = time.monotonic()
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                        http.get(f"{self.base}/health", headers={"Authorization": f"Bearer {self.token}"}) as r:
                    health = f"{r.status} in {time.monotonic() - started:.2f}s"
                    health_ok = r.status == 200 and time.monotonic() - started < 2.0
            except (TimeoutError, aiohttp.ClientError) as error:
                health, health_ok = f"failed ({type(error).__name__})", False
            closed = (await asyncio.wait_for(stdout.readline(), hold_s + 30)).decode().strip()
        match = re.search(r"closed (\d+)", closed)
        dropped = int(match.group(1)) if match else 0
        observed = f"{opened}; /health {health}; server closed {dropped}/300 within {hold_s:.0f}s"
        return Row("g 300 half-open TCP", "/health answers; idle ones closed", observed, health_ok and dropped == 300)

    async def h_typed_burst(self) -> Row:
        flooder, other = await open_peer(self.base, self.token), await open_peer(self.base, self.token)
        try:
            for k in range(300):
                flooder.send({"type": "text", "text": f"Tell me about the number {k}."})
            refused = len(flooder.errors())
            answer = await other.ask(QUESTIONS[2], KEYWORDS[2], timeout=30, wait_end=False)
            refused = len(flooder.errors())
            observed = (f"other call's first audio after {fmt(answer['latency_s'])} ({answer['status']}); "
                        f"flooder got {refused} error replies, call {'up' if flooder.connected() else 'gone'}")
            return Row("h 300 typed burst", "other call answers within 5 s", observed,
                       answer["latency_s"] is not None and answer["latency_s"] < 5.0)
        finally:
            await flooder.close()
            await other.close()

    async def i_many_turns(self) -> Row:
        peer = await open_peer(self.base, self.token)
        statuses: list[str] = []
        latencies: list[float | None] = []
        errors = 0
        try:
            for k in range(self.args.turns):
                result = await peer.ask(QUESTIONS[k % len(QUESTIONS)], KEYWORDS[k % len(KEYWORDS)], timeout=60)
                statuses.append(result["status"])
                latencies.append(result["latency_s"])
                errors += len(result["errors"])
                if (k + 1) % 10 == 0 or result["status"] != "completed":
                    print(f"  turn {k + 1}: {result['status']}, first audio {fmt(result['latency_s'])}", flush=True)
                if not peer.connected() or statuses[-3:] == ["no turn"] * 3:
                    break  # bounded: a dead call or three turns in a row with no answer
                peer.forget()
                await asyncio.sleep(0.3)
        finally:
            await peer.close()
        await self.settle()  # the event log is complete once the call is closed
        logged = self.logged_failures(str(peer.body.get("call_id")))
        fifth = max(1, len(latencies) // 5)
        first = median([x for x in latencies[:fifth] if x is not None])
        last = median([x for x in latencies[-fifth:] if x is not None])
        bad = [i + 1 for i, s in enumerate(statuses) if s != "completed"]
        observed = (f"{len(statuses)}/{self.args.turns} turns, not completed: {bad[:8] or 'none'}"
                    f"{'...' if len(bad) > 8 else ''}, {errors} errors, failed in the event log: "
                    f"{'no log' if logged is None else logged}; first audio p50 first fifth {fmt(first)}, "
                    f"last fifth {fmt(last)}")
        ok = len(statuses) == self.args.turns and not bad and errors == 0 and not logged
        return Row(f"i {self.args.turns} turns, one call", "no failed turn", observed, ok)

    async def j_soak(self) -> Row:
        import psutil

        process = psutil.Process()
        minutes = self.args.soak
        window_s = min(300.0, minutes * 60 / 5)  # "first vs last 5 minutes", a fifth on short soaks
        warm_up_s = min(120.0, minutes * 60 / 5)
        peer = await open_peer(self.base, self.token)
        start = time.monotonic()
        results: list[tuple[float, dict]] = []
        rss: list[tuple[float, float]] = []
        k = 0
        try:
            while time.monotonic() - start < minutes * 60:
                due = start + k * 8.0
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                # the next question interrupts the answer if it still plays: wait at most until the next one is due
                result = await peer.ask(QUESTIONS[k % len(QUESTIONS)], KEYWORDS[k % len(KEYWORDS)], timeout=7.5,
                                        wait_end=False)
                results.append((time.monotonic() - start, result))
                k += 1
                if result["status"] not in ("started", "completed", "interrupted"):
                    print(f"  soak turn {k}: {result['status']} {result['errors'][:1]}", flush=True)
                peer.forget()
                gc.collect()
                rss.append((time.monotonic() - start, process.memory_info().rss / 2**20))
                if k % 20 == 0:
                    print(f"  soak {(time.monotonic() - start) / 60:.1f} min: {k} questions, RSS {rss[-1][1]:.0f} MiB",
                          flush=True)
                if not peer.connected():
                    break
        finally:
            await peer.close()
        elapsed = time.monotonic() - start
        await self.settle()
        logged = self.logged_failures(str(peer.body.get("call_id")))
        failed = [i + 1 for i, (_, r) in enumerate(results)
                  if r["status"] not in ("started", "completed", "interrupted") or r["errors"]]
        first = median([r["latency_s"] for t, r in results if t <= window_s and r["latency_s"] is not None])
        last = median([r["latency_s"] for t, r in results if t >= elapsed - window_s and r["latency_s"] is not None])
        growth, swing, slope = rss_growth(rss, warm_up_s, window_s, elapsed)
        for path in self.call_logs(str(peer.body.get("call_id"))):
            print_turn_stages(path)
        observed = (f"{len(results)} questions in {elapsed / 60:.1f} min, failed {len(failed)} "
                    f"({'no log' if logged is None else logged} in the event log); first audio p50 "
                    f"first {window_s / 60:.1f} min {fmt(first)}, last {fmt(last)}; RSS growth after "
                    f"{warm_up_s / 60:.1f} min warm-up {'-' if growth is None else f'{growth:+.1f} MiB'} "
                    f"(median of the last {window_s / 60:.1f} min minus the first; samples {swing}, "
                    f"trend {'-' if slope is None else f'{slope * 600:+.1f} MiB per 10 min'})")
        # flat: within a fifth (the history budget of 1500 tokens rose 37 %, from attention over a longer prompt)
        flat = first is not None and last is not None and last <= first * 1.2
        ok = not failed and not logged and flat and growth is not None and growth < 20 and elapsed >= minutes * 60 - 10
        return Row(f"j soak {minutes} min", "0 failed, latency flat, RSS +<20 MB", observed, ok)


    async def l_vanishing_long_answers(self) -> Row:
        import psutil

        process = psutil.Process()
        calls, warm_up = self.args.vanish_calls, 2
        llm = self.config.llm
        kept_tokens, llm.max_answer_tokens = llm.max_answer_tokens, 120  # the default: an answer that runs ~30 s
        samples: list[float] = []
        held: list[str] = []
        try:
            for k in range(warm_up + calls):
                async with helper_process("--long-peer", self.base, self.token) as (child, stdout):
                    line = await asyncio.wait_for(stdout.readline(), 60)
                    ids = list(self.server.calls)
                    if b"playing" not in line:
                        return Row("l vanishing long answers", "slots freed, RSS < 2 MiB per call",
                                   f"call {k + 1}: the answer did not start: {line!r}", False)
                    await asyncio.sleep(1.0)  # mid-answer: tokens, synthesis and playback all under way
                    child.kill()
                killed = time.monotonic()
                while any(i in self.server.calls for i in ids) and time.monotonic() - killed < 40:
                    await asyncio.sleep(0.1)
                held += [i for i in ids if i in self.server.calls]
                await self.settle()
                await asyncio.sleep(1.0)  # the threads that served the call have ended
                gc.collect()
                if k >= warm_up:
                    samples.append(process.memory_info().rss / 2**20)
        finally:
            llm.max_answer_tokens = kept_tokens
        slope = trend(list(range(len(samples))), samples)
        observed = (f"{len(samples)} calls after {warm_up} warm-up, slots held after 40 s: {len(held)}; RSS "
                    f"{samples[0]:.0f} -> {samples[-1]:.0f} MiB, {'-' if slope is None else f'{slope:+.2f}'} "
                    f"MiB per call")
        return Row("l vanishing long answers", "slots freed, RSS < 2 MiB per call", observed,
                   not held and slope is not None and slope < 2.0)


# --- k: the real command, started with SIGINT ignored -------------------------------------------------

async def k_stop_cycles(cycles: int) -> Row:
    assistant = Path(sys.executable).parent / "assistant"
    if not assistant.exists():
        return Row(f"k {cycles} stop cycles", "each exits < 5 s", f"{assistant} not found", False)
    exits: list[str] = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(cycles):
            sig = signal.SIGINT if n % 2 == 0 else signal.SIGTERM
            log_dir = Path(tmp) / f"cycle{n}"
            token = f"reliability-{n}-token-0123456789"
            command = [str(assistant), "serve", "--port", "0", "--quiet", "--token", token,
                       "--event-log-dir", str(log_dir)]
            # SIGINT ignored before exec, as nohup, CI runners and supervisors start it (an ignored signal stays
            # ignored across exec); a wrapper, since preexec_fn is unsafe in a process with threads.
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", IGNORE_SIGINT_THEN_EXEC, *command,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                port = await asyncio.wait_for(_read_port(process), 180)
                drain = asyncio.create_task(_drain(process))  # a full pipe would block the server's prints
                peer = await open_peer(f"http://{HOST}:{port}", token)
                result = await peer.ask(QUESTIONS[n % len(QUESTIONS)], KEYWORDS[n % len(KEYWORDS)], timeout=30,
                                        wait_end=False)
                process.send_signal(sig)  # mid-answer, with the call up
                sent = time.monotonic()
                try:
                    code = await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    code = None
                took = time.monotonic() - sent
                await peer.close()
                drain.cancel()
                logs = sorted(log_dir.glob("*.jsonl")) if log_dir.exists() else []
                last_kind = _last_kind(logs[-1]) if logs else "no log"
                exits.append(f"{sig.name[3:]} {'no exit in 15s' if code is None else f'{took:.1f}s rc={code}'} "
                             f"(answer {result['status']}, log ends {last_kind})")
                ok = ok and code == 0 and took < 5.0  # a clean exit, in time
            except Exception as error:  # noqa: BLE001 (a row, not a crash: the other probes' results still print)
                exits.append(f"{sig.name[3:]} error {type(error).__name__}: {error}"[:80])
                ok = False
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            print(f"  cycle {n + 1}: {exits[-1]}", flush=True)
    return Row(f"k {cycles} stop cycles, SIGINT ignored", "each exits < 5 s", "; ".join(exits), ok)


IGNORE_SIGINT_THEN_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                           "os.execv(sys.argv[1], sys.argv[1:])")


async def _read_port(process) -> int:
    while line := (await process.stdout.readline()).decode(errors="replace"):  # model loading, then the URL
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match:
            return int(match.group(1))
    raise RuntimeError(f"`assistant serve` printed no URL (exit status {await process.wait()})")


async def _drain(process) -> None:
    while await process.stdout.readline():
        pass


def _last_kind(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "empty"
    try:
        return json.loads(lines[-1]).get("kind", "?")
    except ValueError:
        return "a torn line"


# --- helper processes -----------------------------------------------------------------------------------

async def run_peer(base: str, token: str) -> None:
    """Probe f's peer: connects, says so, then sits silent until it is killed (bounded: 120 s)."""
    restrict_ice_to(HOST)  # aioice skips loopback otherwise, and this machine may have nothing else
    peer = await open_peer(base, token)
    print("connected", flush=True)
    await asyncio.sleep(120)
    await peer.close()


async def run_long_peer(base: str, token: str) -> None:
    """Probe l's peer: connects, asks for a long answer, says so once it plays, then waits to be killed."""
    restrict_ice_to(HOST)
    peer = await open_peer(base, token)
    result = await peer.ask("Tell me a long story about a dragon who learns to bake bread.", "dragon",
                            timeout=45, wait_end=False)
    print("playing" if result["status"] == "started" else f"not playing: {result['status']}", flush=True)
    await asyncio.sleep(120)
    await peer.close()


def run_half_open(host: str, port: int, count: int, hold_s: float) -> None:
    """Probe g's client: ``count`` connections that send half a request line and nothing more; report how many
    the server closed within ``hold_s``."""
    import select

    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no token, no end of headers
        sock.setblocking(False)
        sockets.append(sock)
    print(f"{len(sockets)} open", flush=True)
    closed: set[int] = set()
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline and len(closed) < len(sockets):
        readable, _, _ = select.select([s for s in sockets if s.fileno() not in closed], [], [], 0.5)
        for sock in readable:
            try:
                if not sock.recv(4096):
                    closed.add(sock.fileno())
            except OSError:
                closed.add(sock.fileno())
    print(f"closed {len(closed)}", flush=True)
    for sock in sockets:
        sock.close()


# --- main -------------------------------------------------------------------------------------------------

ORDER = "abcdefghijkl"


async def main(args) -> int:
    from assistant.config import AssistantConfig
    from assistant.session import AssistantModels
    from ui.webrtc.options import ServerOptions
    from ui.webrtc.server import ChatServer

    logging.basicConfig(level=logging.ERROR)  # the probes provoke warnings by the hundred
    wanted = [p for p in (args.only.split(",") if args.only else ORDER) if p]
    if args.soak and "j" not in wanted:
        wanted.append("j")
    if not args.soak and "j" in wanted and args.only:
        print("probe j needs --soak MINUTES", flush=True)
    wanted = [p for p in wanted if p != "j" or args.soak]
    restrict_ice_to(HOST)
    rows: list[Row] = []
    began = time.monotonic()
    in_process = [p for p in wanted if p != "k"]
    if in_process:
        config = AssistantConfig()
        config.llm.max_answer_tokens = args.answer_tokens
        for assignment in args.set:
            dotted, _, value = assignment.partition("=")
            config.set(dotted.strip(), value.strip())
        models = AssistantModels(config, progress=not args.quiet)
        with tempfile.TemporaryDirectory() as tmp:
            log_dir = args.keep_event_logs or str(Path(tmp) / "calls")
            server = ChatServer(models.new_session, ServerOptions(host=HOST, port=0, event_log_dir=log_dir))
            await server.start()
            probes = Probes(server, args, config)
            methods = {name[0]: getattr(probes, name) for name in dir(probes) if re.match(r"[a-jl]_", name)}
            try:
                for p in in_process:
                    limit = {"i": 60.0 * args.turns + 60, "j": 60.0 * args.soak + 120,
                             "l": 60.0 * (args.vanish_calls + 2) + 60}.get(p, 150.0)
                    print(f"probe {p} ...", flush=True)
                    t0 = time.monotonic()
                    try:
                        row = await asyncio.wait_for(methods[p](), limit)
                    except Exception as error:  # noqa: BLE001 (one probe's crash is its FAIL row)
                        row = Row(f"{p} {methods[p].__name__[2:].replace('_', ' ')}", "(see probe)",
                                  f"probe raised {type(error).__name__}: {error}"[:120], False)
                    rows.append(row)
                    print(f"  {'PASS' if row.passed else 'FAIL'} {row.observed} ({time.monotonic() - t0:.0f}s)",
                          flush=True)
                    await probes.settle()
            finally:
                await server.stop()
    if "k" in wanted:
        print("probe k ...", flush=True)
        rows.append(await k_stop_cycles(args.cycles))
    print_table(rows)
    print(f"\n{sum(r.passed for r in rows)}/{len(rows)} probes passed in {(time.monotonic() - began) / 60:.1f} min "
          f"({os.cpu_count()} cores)")
    return 0 if all(r.passed for r in rows) else 1


def print_turn_stages(path: Path, parts: int = 6) -> None:
    """Where a call's first-audio time goes, turn by turn, from its event log: the question to the model's
    first token (the prompt read), that token to the first audio (the first phrase written and voiced)."""
    turns: dict[int, dict[str, float]] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind, turn = event.get("kind"), turns.get(event.get("turn_id", -1))
        if kind == "TurnStarted":
            turns[event["turn_id"]] = {"asked": event["from_time"]}
        elif kind == "LLMToken" and turn is not None:
            turn.setdefault("token", event["time"])
        elif kind == "AssistantAudio" and turn is not None:
            turn.setdefault("audio", event["time"])
    done = [t for _, t in sorted(turns.items()) if "token" in t and "audio" in t]
    if not done:
        return
    size = max(1, -(-len(done) // parts))
    print(f"  turn stages, {path.name}: p50 question -> first token / first token -> first audio (ms)")
    for k in range(0, len(done), size):
        chunk = done[k:k + size]
        prompt = median([t["token"] - t["asked"] for t in chunk]) or 0.0
        phrase = median([t["audio"] - t["token"] for t in chunk]) or 0.0
        print(f"    turns {k + 1}-{k + len(chunk)}: {1000 * prompt:.0f} / {1000 * phrase:.0f}", flush=True)


def print_table(rows: list[Row]) -> None:
    widths = [max(len(h), *(len(getattr(r, f)) for r in rows)) if rows else len(h)
              for h, f in (("probe", "probe"), ("expected", "expected"))]
    print(f"\n{'probe':<{widths[0]}}  {'expected':<{widths[1]}}  result  observed")
    for r in rows:
        print(f"{r.probe:<{widths[0]}}  {r.expected:<{widths[1]}}  {'PASS' if r.passed else 'FAIL':<6}  {r.observed}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated probe letters, e.g. a,b,d (default: all but j)")
    parser.add_argument("--turns", type=int, default=20, help="questions in one call for probe i")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES", help="run probe j for this long")
    parser.add_argument("--cycles", type=int, default=3, help="start-call-stop cycles for probe k")
    parser.add_argument("--vanish-calls", type=int, default=10, help="calls whose peer vanishes, probe l")
    parser.add_argument("--answer-tokens", type=int, default=24, help="longest answer, in tokens")
    parser.add_argument("--quiet", action="store_true", help="no model loading progress")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="an assistant option, e.g. --set duplex.history_token_budget=1500 (repeatable)")
    parser.add_argument("--keep-event-logs", metavar="DIR", help="write the calls' event logs here, kept")
    parser.add_argument("--peer", nargs=2, metavar=("BASE", "TOKEN"), help=argparse.SUPPRESS)
    parser.add_argument("--long-peer", nargs=2, metavar=("BASE", "TOKEN"), help=argparse.SUPPRESS)
    parser.add_argument("--half-open", nargs=4, metavar=("HOST", "PORT", "N", "HOLD_S"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.peer:
        asyncio.run(run_peer(*arguments.peer))
    elif arguments.long_peer:
        asyncio.run(run_long_peer(*arguments.long_peer))
    elif arguments.half_open:
        host, port, count, hold = arguments.half_open
        run_half_open(host, int(port), int(count), float(hold))
    else:
        sys.exit(asyncio.run(main(arguments)))
