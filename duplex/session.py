"""A full-duplex conversation: two workers, one event bus, one playback queue.

Flow of one stretch of user speech:
  push_audio -> (thread) resample + VAD -> segmenter -> SpeechStarted -> duck the assistant's voice
  -> short silence -> (listener's thread) ASR -> does the transcript read finished? if not, wait longer
  -> (listener's thread) state decision -> <1>: interrupt the speaker, cut history to what was heard,
     the listener answers and the other worker listens (HandOff); <2>: resume the voice where it paused.
A typed message (``push_text``) is decided ``<3>`` and takes the floor the same way.

Transports only call ``push_audio``, ``push_text`` and ``output.read``; they never see the workers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from audio.echo import echo_share
from audio.frames import AudioFrame, StreamResampler, rms_dbfs, to_int16
from audio.onset import LevelRise
from audio.vad import VAD_SAMPLE_RATE, SpeechSegmenter
from duplex.bus import EventBus, EventLog
from duplex.clock import Clock, RealClock
from duplex.conversation import Conversation, Turn
from duplex.decision import SegmentEvidence, StateDecision, StateToken
from duplex.events import (
    Duck, ErrorEvent, Event, HandOff, Interrupt, Metric, PlaybackStopped, Resume, SpeechEnded, SpeechStarted,
    PlaybackReason, StateDecided, TextMessage, TurnEnded, TurnStarted, TurnStatus, UserTranscript,
)
from duplex.models import FrameDescriber, GenerationOptions, StateDecider, VoiceActivityDetector
from duplex.options import DuplexOptions
from duplex.playback import PlaybackBuffer, heard_text
from duplex.state import asks_for_silence
from duplex.turn_end import turn_looks_complete
from duplex.vision import VisionInput
from duplex.models import WorkerModels
from duplex.worker import Worker

LISTENER_TIMEOUT_S = 20.0  # ASR + decision on one segment; past this the listener is declared hung
NEXT_QUESTION_TOKENS = 100  # room kept for the next question when the history is read ahead after an answer


class _ScoredFrame(NamedTuple):
    """One VAD frame as the VAD thread scored it."""

    samples: np.ndarray  # int16, 16 kHz
    probability: float  # of speech; 0 when the frame is the assistant's own voice coming back
    echo_share: float | None  # how much of a voiced frame the recent output explains (None: not measured)
    level_dbfs: float
    echo: bool  # mostly the assistant's own voice


@dataclass
class _Speculation:
    """Work begun at a pause's start, used only if that same pause lasts."""

    pause_start: float
    heard: tuple[int, int]  # (audio frames, VAD frames) at that start: what the work listens to
    task: asyncio.Task  # -> (transcript, (decision, decide_ms) when the words read finished, else None)


@dataclass
class _Segment:
    id: int
    onset: float
    listener: Worker
    audio: list[np.ndarray]
    probabilities: list[float]
    overlapped_assistant: bool
    echo_shares: list[float] = field(default_factory=list)  # of the voiced frames heard while output played
    visual_context: str = ""  # what the camera showed around this segment, as the decision saw it
    pause_at: float | None = None  # set while the user is silent after speaking
    # (audio frames, VAD frames) heard when the pause began: the decision sees exactly these, so a busy
    # machine (a slower ASR, more trailing silence piling up meanwhile) does not change its evidence.
    heard_at_pause: tuple[int, int] | None = None
    closed: bool = False
    interim_running: bool = False
    interim_at: float = 0.0
    released: bool = False  # an interim decision judged it not a query: the assistant's voice went on
    early_interrupt: bool = False
    end: float | None = None
    speculative: _Speculation | None = None
    verdict: str = "open"  # open -> pending (being judged) -> query / ignored / noise
    absorbed: bool = False  # the user went on speaking: the next segment carries these words

    def speculation_for(self, pause_start: float) -> _Speculation | None:
        """The work begun at this pause's start, if any (not an earlier pause's)."""
        early = self.speculative
        return early if early is not None and early.pause_start == pause_start else None

    def samples(self, frames: int | None = None) -> np.ndarray:
        audio = self.audio[:frames] if frames is not None else self.audio
        return np.concatenate(audio).astype(np.float32) / 32768.0 if audio else np.zeros(0, np.float32)


@dataclass
class _OpenTurn:
    turn_id: int
    worker: Worker
    question: str
    from_time: float
    question_turn: Turn  # in the history; dropped again if the answer fails
    closed: bool = False


class DuplexSession:
    def __init__(self, models: WorkerModels | Sequence[WorkerModels], decider: StateDecider,
                 vad_factory: Callable[[], VoiceActivityDetector], options: DuplexOptions | None = None,
                 system_prompt: str = "You are a helpful voice assistant. Answer briefly.",
                 generation: GenerationOptions | None = None, clock: Clock | None = None,
                 event_log: EventLog | None = None, vision: FrameDescriber | None = None) -> None:
        self.options = options or DuplexOptions()
        self.clock = clock or RealClock()
        self.bus = EventBus()
        self.event_log = event_log
        if event_log is not None:
            self.bus.add_listener(event_log)
        self.bus.add_listener(self._on_event)
        self.decider = decider
        self.output = PlaybackBuffer(self.options.output_sample_rate, self.clock, self.bus.publish,
                                     self.options.duck_gain)
        pair = [models, models] if isinstance(models, WorkerModels) else list(models)
        if len(pair) != 2:
            raise ValueError("a duplex session takes one WorkerModels (shared) or a pair (one per worker)")
        self.conversation = Conversation(system_prompt, self.options.history_token_budget,
                                         count_tokens=pair[0].language_model.count_tokens)
        generation = generation or GenerationOptions()
        self.workers = [Worker(name, m, self.bus, self.clock, self.output, generation, self.options.llm_stall_s,
                               self.options.tts_lookahead_s, self.options.first_phrase_words)
                        for name, m in zip("AB", pair)]
        self.listener: Worker = self.workers[0]
        self.speaker: Worker | None = None
        self._turn: _OpenTurn | None = None
        self._turn_counter = 0
        self._segment_counter = 0
        self._segment: _Segment | None = None
        # The last idle segment that was not taken as a query (or is still being judged): when the user goes
        # on after a pause, the next segment is heard together with it ("I went to book." ... "a table for two").
        self._last_closed: _Segment | None = None
        self.vad = vad_factory()
        opts = self.options
        self._frame_s = self.vad.frame_samples / VAD_SAMPLE_RATE
        self._segmenter = SpeechSegmenter(self._frame_s, opts.vad_start_threshold, opts.vad_end_threshold,
                                          opts.vad_start_frames, opts.short_silence_s,
                                          max(1, round(opts.speculate_after_s / self._frame_s)))
        self._level_rise = LevelRise(self._frame_s, opts.quick_duck_rise_db, opts.quick_duck_min_dbfs,
                                     frames=opts.quick_duck_frames)
        self._lowered_at: float | None = None  # when a level rise lowered the voice, until confirmed or undone
        self._quick_duck_after = 0.0
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, int(opts.pre_roll_s / self._frame_s)))
        self._pending = np.zeros(0, dtype=np.int16)
        self._resamplers: dict[int, StreamResampler] = {}
        self._stream_time: float | None = None
        self._input: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=500)  # 10 s of 20 ms frames
        self._vad_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self._tasks: set[asyncio.Task] = set()
        self._main_tasks: list[asyncio.Task] = []
        self.dropped_input_frames = 0
        self.loop_lag_ms: list[float] = []
        self.closed = False
        self._idle_reading = threading.Event()  # set: stop reading the next prompt ahead (the user speaks)
        # Camera frames (push_image): sampled, described off the loop, attached to the queries around them;
        # a frame's analysis waits while the listener transcribes or decides (the ASR needs both cores).
        self._listening_jobs = 0
        self.vision = VisionInput(vision, self.bus.publish, self.clock, self.options,
                                  user_speaking=lambda: self._segment is not None and not self._segment.closed,
                                  audio_busy=lambda: self._listening_jobs > 0)

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.bus.bind_loop(asyncio.get_running_loop())
        self._main_tasks = [asyncio.create_task(self._input_loop(), name="session-input")]
        if isinstance(self.clock, RealClock):
            self._main_tasks.append(asyncio.create_task(self._watch_loop_lag(), name="loop-lag"))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._idle_reading.set()  # a prompt read ahead for a next turn that will not come
        turn = self._turn
        if turn is not None and not turn.closed:  # the event log ends with the turn, not in its middle
            turn.closed = True
            turn.worker.cancel_answer()
            self.bus.publish(TurnEnded(time=self.clock.now(), worker=turn.worker.name, turn_id=turn.turn_id,
                                       status=TurnStatus.CLOSED, answer=turn.worker.answer_text,
                                       spoken=heard_text(self.output.interrupt(turn.turn_id))))
        for task in [*self._main_tasks, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._main_tasks, *self._tasks, return_exceptions=True)
        for worker in self.workers:
            worker.close()
        self._vad_executor.shutdown(wait=False, cancel_futures=True)
        await self.vision.close()
        if self.event_log is not None:
            self.event_log.close()

    async def __aenter__(self) -> DuplexSession:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- what transports call ----------------------------------------------------------------------

    def push_audio(self, frame: AudioFrame) -> None:
        """Microphone audio at any rate, mono or stereo. Never blocks; drops (and counts) on overload."""
        try:
            self._input.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped_input_frames += 1

    def push_image(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """A camera frame: RGB uint8 HxWx3 (HxW grey and HxWx4 RGBA are converted; JPEG/PNG bytes are decoded
        on the vision thread). Never blocks or raises:
        frames are sampled, a bad one is logged and dropped; ``timestamp`` is on the session clock (default now).
        May be called from a camera's capture thread: the frame then hops onto the event loop."""
        loop, loop_thread = self.bus._loop, self.bus._loop_thread
        if loop is not None and threading.get_ident() != loop_thread:
            try:
                loop.call_soon_threadsafe(self.push_image, image, timestamp)
            except RuntimeError:  # the loop has closed: the session is over
                pass
            return
        try:
            self.vision.push(image, timestamp)
        except Exception as error:  # a transport's frame must never take the session down
            self.bus.publish(ErrorEvent(time=self.clock.now(), worker="vision",
                                        message=f"camera frame dropped: {type(error).__name__}: {error}",
                                        recovered=True))

    def push_text(self, text: str) -> None:
        """A typed message: decided ``<3>`` and answered at once, interrupting like speech.

        Control characters and invalid code points are removed first. Raises ``MessageTooLong`` (a
        ValueError) for a message over one message's share of the history budget, in the model's tokens;
        nothing changes then."""
        text = self.conversation.check_typed(text)
        if text:
            self._spawn(self._typed(text))

    @property
    def history(self) -> list:
        return self.conversation.turns

    # --- input: VAD and segments -----------------------------------------------------------------

    async def _input_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._input.get()
            if self._stream_time is None:
                self._stream_time = self.clock.now() - frame.duration
            frames = await loop.run_in_executor(self._vad_executor, self._analyse, frame)
            for scored in frames:
                self._on_vad_frame(scored)

    def _analyse(self, frame: AudioFrame) -> list[_ScoredFrame]:
        """(VAD thread) resample to 16 kHz mono and score each complete VAD frame."""
        mono = frame.mono_float32()
        if frame.sample_rate != VAD_SAMPLE_RATE:
            resampler = self._resamplers.setdefault(frame.sample_rate,
                                                    StreamResampler(frame.sample_rate, VAD_SAMPLE_RATE))
            mono = resampler.process(mono)
        self._pending = np.concatenate([self._pending, to_int16(mono)])
        size = self.vad.frame_samples
        reference = self.output.echo_reference
        out = []
        while len(self._pending) >= size:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            probability = self.vad.speech_probability(chunk)
            level = rms_dbfs(chunk)
            voiced, share, echo = probability >= self.options.vad_end_threshold, None, False
            loud = self.options.quick_duck_gain is not None and level >= self.options.quick_duck_min_dbfs
            if reference.level > 1e-6 and (voiced or loud):
                explained = echo_share(chunk, reference.recent())
                echo = explained >= self.options.echo_share_threshold
                if echo:
                    probability = 0.0  # the assistant's own voice coming back is not the user talking
                share = explained if voiced else None  # the own-voice rule averages voiced frames only
            out.append(_ScoredFrame(chunk, probability, share, level, echo))
        return out

    def _on_vad_frame(self, scored: _ScoredFrame) -> None:
        samples, probability, share = scored.samples, scored.probability, scored.echo_share
        frame_time = self._stream_time
        self._stream_time += self._frame_s
        self._quick_duck(frame_time, self._level_rise.push(scored.level_dbfs, eligible=not scored.echo))
        segment = self._segment
        if segment is not None:
            segment.audio.append(samples)
            segment.probabilities.append(probability)
            if share is not None:
                segment.echo_shares.append(share)
            segment.overlapped_assistant |= self.output.speaking
        else:
            self._pre_roll.append(samples)
        event = self._segmenter.push(probability, frame_time)
        if event is not None and event.kind == "speech_start":
            self._on_speech_start(event.time)
        elif event is not None and event.kind == "silence_start" and segment is not None and not segment.closed:
            # Transcribe and decide now, while waiting to see whether the pause lasts: they are the slow
            # steps before an answer, and most pauses that reach this point end the turn.
            heard = (len(segment.audio), len(segment.probabilities))
            segment.speculative = _Speculation(event.time, heard,
                                               self._spawn(self._speculate(segment, event.time, heard)))
        elif event is not None and event.kind == "speech_end" and segment is not None and not segment.closed:
            segment.pause_at = event.time
            early = segment.speculation_for(event.time)
            segment.heard_at_pause = early.heard if early else (len(segment.audio), len(segment.probabilities))
            self._spawn(self._on_pause(segment, event.time))
        segment = self._segment
        if segment is None or segment.closed:
            return
        length = self._stream_time - segment.onset
        if length >= self.options.max_segment_s:
            segment.pause_at = self._stream_time
            segment.heard_at_pause = (len(segment.audio), len(segment.probabilities))
            self._spawn(self._finalize(segment, None))
        elif (segment.overlapped_assistant and not (segment.released or segment.early_interrupt)
              and not segment.interim_running and segment.pause_at is None
              and length - segment.interim_at >= self.options.interim_decision_s):
            segment.interim_running, segment.interim_at = True, length
            self._spawn(self._interim(segment))

    def _current_turn_id(self) -> int:
        return self._turn.turn_id if self._turn else -1

    def _quick_duck(self, frame_time: float, level_rose: bool) -> None:
        """Lower the voice at the first hint of speech (a level rise); undo it if no onset follows."""
        gain = self.options.quick_duck_gain
        if gain is None:
            return
        if self._lowered_at is not None:
            confirmed = self._segment is not None or self.output.ducked
            if confirmed or not self.output.lowered:  # paused by the onset, or resumed/interrupted meanwhile
                self._lowered_at = None
            elif frame_time - self._lowered_at >= self.options.quick_duck_confirm_s:
                self._lowered_at, self._quick_duck_after = None, frame_time + self.options.quick_duck_holdoff_s
                self.output.resume()
                self.bus.publish(Resume(time=self.clock.now(), turn_id=self._current_turn_id(),
                                        reason="no speech followed the sound"))
            return
        if (level_rose and self._segment is None and frame_time >= self._quick_duck_after
                and self.output.speaking and not self.output.ducked):
            self._lowered_at = frame_time
            self.output.lower(gain)
            self.bus.publish(Duck(time=self.clock.now(), turn_id=self._current_turn_id(),
                                  reason="a sound that may be speech", gain=gain))

    def _on_speech_start(self, onset: float) -> None:
        self._idle_reading.set()  # the listener's ASR needs the cores now
        now = self.clock.now()
        segment = self._segment
        if segment is not None and not segment.closed and segment.pause_at is not None:
            segment.pause_at = None  # the user went on after a pause: same turn, keep listening
            segment.heard_at_pause = None
            return
        self._segment_counter += 1
        assistant_busy = self.output.speaking or any(w.answering for w in self.workers)
        audio = list(self._pre_roll)
        previous = self._last_closed
        if (previous is not None and previous.verdict in ("pending", "ignored") and previous.end is not None
                and onset - previous.end <= self.options.long_silence_s):
            previous.absorbed = True  # its words are heard again as the start of this segment
            audio = previous.audio + audio
        self._last_closed = None
        self._segment = _Segment(self._segment_counter, onset, self.listener, audio, [], assistant_busy)
        self._pre_roll.clear()
        self.bus.publish(SpeechStarted(time=now, onset=onset, segment_id=self._segment_counter))
        if assistant_busy and not self.output.ducked:
            self.output.duck()
            self.bus.publish(Duck(time=self.clock.now(), turn_id=self._current_turn_id(),
                                  reason="user speech onset"))

    async def _on_pause(self, segment: _Segment, pause_at: float) -> None:
        """After a short silence: end the turn now if it reads finished, else give the user longer."""
        if pause_at - segment.onset < self.options.min_segment_s:
            await self._finalize(segment, None, reason="too short to be speech")
            return
        early, speculation = None, segment.speculation_for(pause_at)
        if speculation is not None:
            transcript, early = await speculation.task  # begun at the start of this same pause
        else:
            transcript = await self._transcribe(segment)
        if transcript is None or segment.closed or segment.pause_at != pause_at:
            return  # the listener failed, or the user went on speaking meanwhile
        if not self._reads_finished(segment, transcript):
            self.bus.publish(UserTranscript(time=self.clock.now(), segment_id=segment.id, text=transcript.text,
                                            final=False, no_speech_prob=transcript.no_speech_prob,
                                            avg_logprob=transcript.avg_logprob))
            wait = pause_at + self.options.long_silence_s - self._stream_time
            await self.clock.sleep(max(0.0, wait))
            if segment.closed or segment.pause_at != pause_at:
                return
        await self._finalize(segment, transcript, early=early)

    @staticmethod
    def _reads_finished(segment: _Segment, transcript) -> bool:
        """May the turn end at a short pause? (Else the long silence decides.)"""
        return (turn_looks_complete(transcript.text) or transcript.looks_like_noise
                or segment.overlapped_assistant)

    async def _speculate(self, segment: _Segment, silence_at: float, heard: tuple[int, int]):
        """At a pause's start: transcribe, and when the words read finished, decide (unpublished). Returns
        (transcript, (decision, decide_ms) or None); ``_on_pause`` uses it only if this same pause lasts."""
        transcript = await self._transcribe(segment)
        if (transcript is None or segment.closed or segment.speculation_for(silence_at) is None
                or not self._reads_finished(segment, transcript)):
            return transcript, None
        judged = await self._judge(segment, transcript, heard, settle_vision=True)
        return transcript, judged

    def _listening(self, delta: int) -> None:
        """Count the listener's ASR and decision jobs; the camera's describer pauses while there are any."""
        before, self._listening_jobs = self._listening_jobs, self._listening_jobs + delta
        if (before == 0) != (self._listening_jobs == 0):
            self.vision.audio_busy_changed(self._listening_jobs > 0)

    async def _transcribe(self, segment: _Segment):
        self._listening(+1)
        try:
            return await asyncio.wait_for(segment.listener.transcribe(segment.samples()), LISTENER_TIMEOUT_S)
        except Exception as error:  # a hung or failing ASR: restart that worker, tell the user
            await self._listener_failed(segment.listener, error)
            return None
        finally:
            self._listening(-1)

    async def _interim(self, segment: _Segment) -> None:
        """Decide on a long segment that overlaps the assistant's voice before it ends."""
        try:
            transcript = await self._transcribe(segment)
            if transcript is None or segment.closed:
                return
            decision = await self._decide(segment, transcript, interim=True)
            if segment.closed or decision is None:
                return
            if decision.token is StateToken.IGNORE:
                segment.released = True
                self._resume_output("interim decision: not a query")
            elif decision.query_probability >= 0.8 and self._turn is not None:
                segment.early_interrupt = True
                self._interrupt_turn("user query (interim decision)")
        finally:
            segment.interim_running = False

    async def _finalize(self, segment: _Segment, transcript, reason: str = "",
                        early: tuple[StateDecision, float] | None = None) -> None:
        if segment.closed:
            return
        segment.closed = True
        if self._segment is segment:
            self._segment = None
        end = segment.pause_at if segment.pause_at is not None else self._stream_time
        segment.end, segment.verdict = end, "pending"
        if not segment.overlapped_assistant:
            self._last_closed = segment
        self.bus.publish(SpeechEnded(time=self.clock.now(), onset=segment.onset, end=end, segment_id=segment.id))
        if transcript is None and not reason:
            transcript = await self._transcribe(segment)
            if transcript is None:
                return
        if transcript is None:
            decision = StateDecision(StateToken.IGNORE, 0.0, reason)
            self._publish_decision(segment, decision, "", False, 0.0)
        else:
            self.bus.publish(UserTranscript(time=self.clock.now(), segment_id=segment.id, text=transcript.text,
                                            final=True, no_speech_prob=transcript.no_speech_prob,
                                            avg_logprob=transcript.avg_logprob))
            if early is not None:  # decided while the pause was still being timed
                decision = early[0]
                self._publish_decision(segment, decision, transcript.text, False, early[1])
            else:
                decision = await self._decide(segment, transcript)
        query = decision is not None and decision.token is StateToken.QUERY
        noise = transcript is None or transcript.looks_like_noise
        if not query and segment.early_interrupt and not noise:
            # Its first part already stopped the answer as a confident query: answer the whole segment
            # rather than leave the user with neither the old answer nor a new one.
            query = True
        segment.verdict = "query" if query else ("noise" if noise else "ignored")
        if segment.absorbed:
            return  # the user went on speaking; the segment that carries these words decides
        if query:
            self._take_floor(segment.listener, transcript.text, end, visual_context=segment.visual_context)
        elif self._segment is None:
            self._resume_output("not a query")

    async def _decide(self, segment: _Segment, transcript, interim: bool = False) -> StateDecision | None:
        judged = await self._judge(segment, transcript, segment.heard_at_pause, settle_vision=not interim)
        if judged is None:
            return None
        decision, decide_ms = judged
        self._publish_decision(segment, decision, transcript.text, interim, decide_ms)
        return decision

    async def _judge(self, segment: _Segment, transcript, window: tuple[int, int] | None,
                     settle_vision: bool) -> tuple[StateDecision, float] | None:
        """The decider's verdict on the segment heard up to ``window`` (audio frames, VAD frames), and its
        cost in ms; None when the listener failed (it is restarted). Publishes nothing."""
        end = segment.end or self._stream_time or 0.0
        if settle_vision:  # a frame shown while asking may still be being analysed
            await self.vision.settle(segment.onset, end, self.options.vision_wait_s)
        segment.visual_context = self.vision.context(segment.onset, end)
        audio_frames, vad_frames = window or (None, None)
        evidence = SegmentEvidence(
            audio_16k=segment.samples(audio_frames), transcript=transcript,
            speech_probabilities=np.asarray(segment.probabilities[:vad_frames], dtype=np.float32),
            assistant_speaking=segment.overlapped_assistant, assistant_text=self.output.current_text()
            or (self._turn.worker.answer_text if self._turn else ""),
            conversation_tail=self.conversation.tail(), visual_context=segment.visual_context,
            echo_share=float(np.mean(segment.echo_shares)) if segment.echo_shares else 0.0)
        started = time.perf_counter()
        self._listening(+1)
        try:
            decision = await asyncio.wait_for(segment.listener.decide(self.decider, evidence), LISTENER_TIMEOUT_S)
        except Exception as error:
            await self._listener_failed(segment.listener, error)
            return None
        finally:
            self._listening(-1)
        return decision, (time.perf_counter() - started) * 1000

    def _publish_decision(self, segment: _Segment, decision: StateDecision, text: str, interim: bool,
                          decide_ms: float) -> None:
        self.bus.publish(StateDecided(
            time=self.clock.now(), worker=segment.listener.name, segment_id=segment.id, token=decision.token,
            query_probability=decision.query_probability, reason=decision.reason, text=text, interim=interim,
            assistant_speaking=segment.overlapped_assistant, decide_ms=decide_ms,
            echo_share=float(np.mean(segment.echo_shares)) if segment.echo_shares else 0.0))

    async def _typed(self, text: str) -> None:
        now = self.clock.now()
        self.bus.publish(TextMessage(time=now, text=text))
        self.bus.publish(StateDecided(time=now, worker=self.listener.name, segment_id=-1,
                                      token=StateToken.TEXT_QUERY, query_probability=1.0,
                                      reason="typed message", text=text))
        await self.vision.settle(now, now, self.options.vision_wait_s)
        self._take_floor(self.listener, text, now, typed=True, visual_context=self.vision.context(now, now))

    # --- turns: interrupt, hand-off, answer ------------------------------------------------------

    def _resume_output(self, reason: str) -> None:
        if self.output.ducked:
            self.output.resume()
            self.bus.publish(Resume(time=self.clock.now(), turn_id=self._current_turn_id(),
                                    reason=reason))

    def _interrupt_turn(self, reason: str) -> None:
        turn = self._turn
        if turn is None or turn.closed:
            return
        turn.closed = True
        turn.worker.cancel_answer()
        playback = self.output.interrupt(turn.turn_id)
        spoken = heard_text(playback)
        self.conversation.add_assistant(spoken, self.clock.now(), interrupted=True)
        now = self.clock.now()
        self.bus.publish(Interrupt(time=now, turn_id=turn.turn_id, reason=reason,
                                   played_s=playback.played_samples / self.output.sample_rate))
        self.bus.publish(TurnEnded(time=now, worker=turn.worker.name, turn_id=turn.turn_id, status=TurnStatus.INTERRUPTED,
                                   answer=turn.worker.answer_text, spoken=spoken))

    def _take_floor(self, worker: Worker, question: str, from_time: float, typed: bool = False,
                    visual_context: str = "") -> None:
        """``worker`` heard a query: stop whatever is being said, then it answers and the other listens."""
        if asks_for_silence(question):  # "Stop.": be quiet and listen; the words stay in the history
            self._interrupt_turn("user asked for silence")
            self.output.resume()
            self.conversation.add_user(question, from_time, typed=typed, visual_context=visual_context)
            return
        self._interrupt_turn("typed message" if typed else "user query")
        other = self.workers[1] if worker is self.workers[0] else self.workers[0]
        if self.speaker is not worker or self.listener is not other:
            self.speaker, self.listener = worker, other
            self.bus.publish(HandOff(time=self.clock.now(), speaker=worker.name, listener=other.name,
                                     reason="typed message" if typed else "query heard"))
        self.output.resume()
        question_turn = self.conversation.add_user(question, from_time, typed=typed, visual_context=visual_context)
        self._turn_counter += 1
        self._turn = _OpenTurn(self._turn_counter, worker, question, from_time, question_turn)
        self.bus.publish(TurnStarted(time=self.clock.now(), worker=worker.name, turn_id=self._turn_counter,
                                     question=question, from_time=from_time))
        # The view at the question goes in the system prompt too, where even a small model heeds it.
        seen = f"The user's camera shows: {visual_context}" if visual_context else ""
        worker.start_answer(self._turn_counter, self.conversation.messages(extra_system=seen), self._answer_done)

    def _answer_done(self, worker: Worker, turn_id: int, task: asyncio.Task) -> None:
        turn = self._turn
        if task.cancelled() or turn is None or turn.turn_id != turn_id or turn.closed:
            return
        error = task.exception()
        if error is not None:
            self._spawn(self._recover(worker, turn, error))
        elif self.output.turn(turn_id).enqueued_samples == 0:  # nothing to say (an empty answer)
            self._close_turn(turn, TurnStatus.COMPLETED)

    def _on_event(self, event: Event) -> None:
        """Bus listener: a turn is complete when its audio has finished playing."""
        if isinstance(event, PlaybackStopped) and event.reason is PlaybackReason.FINISHED:
            turn = self._turn
            if turn is not None and turn.turn_id == event.turn_id and not turn.closed:
                self._close_turn(turn, TurnStatus.COMPLETED)

    def _close_turn(self, turn: _OpenTurn, status: TurnStatus) -> None:
        turn.closed = True
        answer = turn.worker.answer_text.strip()
        self.conversation.add_assistant(answer, self.clock.now())
        self.bus.publish(TurnEnded(time=self.clock.now(), worker=turn.worker.name, turn_id=turn.turn_id,
                                   status=status, answer=answer, spoken=answer))
        # Idle time until the user speaks: the model reads the history now (trimmed now, if the next question
        # would overflow it), so that the next answer reads only the new question.
        if self._segment is None:  # not while the user already speaks: the ASR needs the cores
            self._idle_reading = threading.Event()
            messages = self.conversation.messages(reserve_tokens=NEXT_QUESTION_TOKENS)
            self._spawn(turn.worker.prepare(messages, self._idle_reading))

    # --- faults ------------------------------------------------------------------------------------

    async def _recover(self, worker: Worker, turn: _OpenTurn, error: BaseException) -> None:
        turn.closed = True
        playback = self.output.interrupt(turn.turn_id)
        spoken = heard_text(playback)
        now = self.clock.now()
        self.bus.publish(ErrorEvent(time=now, worker=worker.name, message=f"{type(error).__name__}: {error}",
                                    recovered=True))
        self.bus.publish(TurnEnded(time=now, worker=worker.name, turn_id=turn.turn_id, status=TurnStatus.FAILED,
                                   answer=worker.answer_text, spoken=spoken))
        # The question leaves the history with its half answer: were it what broke the model (too long, a
        # character the tokenizer chokes on), every later turn would fail on it too.
        self.conversation.drop(turn.question_turn)
        worker.restart()
        await self._apologise(worker)

    async def _listener_failed(self, worker: Worker, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        self.bus.publish(ErrorEvent(time=self.clock.now(), worker=worker.name, message=message, recovered=True))
        worker.restart()
        if not self.output.speaking:
            await self._apologise(worker)

    async def _apologise(self, worker: Worker) -> None:
        self._turn_counter += 1
        turn_id = self._turn_counter
        try:
            await worker.speak(turn_id, self.options.apology)
        except Exception as error:  # even the voice failed: say so in the log, stay up
            self.bus.publish(ErrorEvent(time=self.clock.now(), worker=worker.name,
                                        message=f"apology failed: {error}", recovered=False))
        self.output.finish_turn(turn_id)  # not in the history: it answers no question the model saw

    # --- housekeeping ------------------------------------------------------------------------------

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self.closed:
            error = task.exception()
            self.bus.publish(ErrorEvent(time=self.clock.now(), worker="session",
                                        message=f"{type(error).__name__}: {error}", recovered=True))

    async def _watch_loop_lag(self, interval: float = 0.02) -> None:
        """Measure how late the event loop wakes up: the figure that says whether models block it."""
        report_at = time.perf_counter() + 5.0
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            lag_ms = (time.perf_counter() - start - interval) * 1000
            self.loop_lag_ms.append(lag_ms)
            if len(self.loop_lag_ms) > 30000:
                del self.loop_lag_ms[:10000]
            if time.perf_counter() >= report_at:
                report_at += 5.0
                recent = sorted(self.loop_lag_ms[-250:])
                self.bus.publish(Metric(time=self.clock.now(), name="loop_lag_p99_ms",
                                        value=recent[int(0.99 * (len(recent) - 1))]))
