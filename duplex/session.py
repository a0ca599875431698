"""A full-duplex conversation: the wiring of the core's parts, and the API transports use.

Transports call ``push_audio``, ``push_image``, ``push_text`` and ``output.read`` (and, where the client plays
from its own buffer or decides turns itself, ``interrupt``, ``truncate_answer``, ``set_instructions`` and
``transcribe``); they never see the parts:

  push_audio -> (VAD thread) InputAnalysis: 16 kHz frames scored for speech and for the assistant's own echo
  -> Ducking (softens the voice at a level rise) and Segmentation (segments, speculation, interim decisions,
     merging), which asks Hearing (the listener's ASR and state decision, off the loop) and publishes verdicts
  -> the bus: QueryHeard -> Floor (interrupt, hand-off, answer; the one way a turn ends); SpeechStarted /
     SpeechDismissed -> Ducking (give way, come back); PlaybackStopped -> Floor (a turn completes)
  push_text -> TextMessage, StateDecided <3>, QueryHeard (typed)
  push_image -> VisionInput: sampled, described off the loop, attached to the queries around them

The bus calls its listeners synchronously, in the order added (the event log first), so a decision is acted
on the moment it is published; displays read it from queued subscriptions, where control events jump ahead.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from audio.frames import AudioFrame
from duplex.bus import EventBus, EventLog
from duplex.clock import Clock, RealClock
from duplex.conversation import Conversation, Turn
from duplex.decision import StateToken
from duplex.ducking import Ducking
from duplex.events import ErrorEvent, QueryHeard, StateDecided, TextMessage
from duplex.floor import Floor
from duplex.hearing import Hearing
from duplex.input import InputAnalysis
from duplex.loop_lag import watch_loop_lag
from duplex.models import FrameDescriber, GenerationOptions, StateDecider, VoiceActivityDetector, WorkerModels
from duplex.options import DuplexOptions
from duplex.playback import PlaybackBuffer
from duplex.recovery import Recovery
from duplex.segmentation import Segmentation
from duplex.tasks import BackgroundTasks
from duplex.text import clean_text
from duplex.vision import VisionInput
from duplex.worker import Worker

INPUT_QUEUE_FRAMES = 500  # 10 s of 20 ms frames; past this, input is dropped (and counted), never blocks


class DuplexSession:
    def __init__(self, models: WorkerModels | Sequence[WorkerModels], decider: StateDecider,
                 vad_factory: Callable[[], VoiceActivityDetector], options: DuplexOptions | None = None,
                 system_prompt: str = "You are a helpful voice assistant. Answer briefly.",
                 generation: GenerationOptions | None = None, clock: Clock | None = None,
                 event_log: EventLog | None = None, vision: FrameDescriber | None = None) -> None:
        self.options = options = options or DuplexOptions()
        self.clock = clock = clock or RealClock()
        self.bus = EventBus()
        self.event_log = event_log
        if event_log is not None:
            self.bus.add_listener(event_log)
        publish = self.bus.publish
        pair = [models, models] if isinstance(models, WorkerModels) else list(models)
        if len(pair) != 2:
            raise ValueError("a duplex session takes one WorkerModels (shared) or a pair (one per worker)")
        self.output = PlaybackBuffer(options.output_sample_rate, clock, publish, options.duck_gain)
        self.conversation = Conversation(system_prompt, options.history_token_budget,
                                         count_tokens=pair[0].language_model.count_tokens,
                                         max_message_tokens=options.max_message_tokens)
        generation = generation or GenerationOptions()
        self.workers = [Worker(name, m, self.bus, clock, self.output, generation, options.llm_stall_s,
                               options.tts_lookahead_s, options.first_phrase_words) for name, m in zip("AB", pair)]
        self.tasks = BackgroundTasks(publish, clock)
        turn_ids = itertools.count(1)
        recovery = Recovery(self.output, publish, clock, options.apology, turn_ids)
        self.input = InputAnalysis(vad_factory(), self.output.echo_reference, options)
        self.floor = Floor(self.workers, self.conversation, self.output, publish, clock, self.tasks, recovery,
                           turn_ids, user_speaking=lambda: self.segmentation.user_speaking, options=options)
        # A frame's analysis waits while the listener transcribes or decides (the ASR needs both cores).
        self.vision = VisionInput(vision, publish, clock, options,
                                  user_speaking=lambda: self.segmentation.user_speaking,
                                  audio_busy=lambda: self.hearing.busy)
        self.hearing = Hearing(decider, self.vision, self.conversation, options,
                               assistant_text=lambda: self.output.current_text() or self.floor.answer_text(),
                               on_failure=recovery.listener_failed)
        self.segmentation = Segmentation(options, self.input.frame_s, self.hearing, self.tasks, publish, clock,
                                         listener=lambda: self.floor.listener,
                                         assistant_busy=lambda: self.floor.assistant_busy,
                                         output_speaking=lambda: self.output.speaking,
                                         turn_started=lambda: self.floor.turn is not None)
        self.ducking = Ducking(self.output, publish, clock, options, self.input.frame_s,
                               current_turn_id=lambda: self.floor.current_turn_id,
                               user_speaking=lambda: self.segmentation.user_speaking)
        self.bus.add_listener(self.floor.on_event)
        self.bus.add_listener(self.ducking.on_event)
        self._input: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=INPUT_QUEUE_FRAMES)
        self._vad_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self._main_tasks: list[asyncio.Task] = []
        self.dropped_input_frames = 0
        self.loop_lag_ms: list[float] = []
        self.closed = False
        self._close_done = asyncio.Event()

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.bus.bind_loop(asyncio.get_running_loop())
        self._main_tasks = [asyncio.create_task(self._input_loop(), name="session-input")]
        if isinstance(self.clock, RealClock):
            self._main_tasks.append(asyncio.create_task(
                watch_loop_lag(self.loop_lag_ms, self.bus.publish, self.clock), name="loop-lag"))

    async def close(self) -> None:
        """Stop everything; returns once done, also when another close began first (a caller that then
        stops the loop must not cut a half-done close: its threads would run on)."""
        if self.closed:
            await self._close_done.wait()
            return
        self.closed = True
        try:
            self.floor.close()
            for task in self._main_tasks:
                task.cancel()
            await asyncio.gather(*self._main_tasks, *self.tasks.cancel_all(), return_exceptions=True)
        finally:  # even when this close is cancelled: no thread pool may outlive the session
            for worker in self.workers:
                worker.close()
            self._vad_executor.shutdown(wait=False, cancel_futures=True)
            try:
                await self.vision.close()
            finally:
                if self.event_log is not None:
                    self.event_log.close()
                self._close_done.set()

    async def __aenter__(self) -> DuplexSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- what transports call ----------------------------------------------------------------------

    def push_audio(self, frame: AudioFrame) -> None:
        """Microphone audio at any rate, mono or stereo. Never blocks; drops (and counts) on overload."""
        try:
            self._input.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped_input_frames += 1

    def push_image(self, image: np.ndarray | bytes, timestamp: float | None = None) -> None:
        """A camera frame: RGB uint8 HxWx3 (HxW grey and HxWx4 RGBA are converted; JPEG/PNG bytes are decoded
        on the vision thread). Never blocks or raises: frames are sampled, a bad one is logged and dropped;
        ``timestamp`` is on the session clock (default now). May be called from a camera's capture thread:
        the frame then hops onto the event loop."""
        if not self.bus.on_loop_thread():
            try:
                self.bus.call_on_loop(self.push_image, image, timestamp)
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
            self.tasks.spawn(self._typed(text))

    def interrupt(self, reason: str = "the client stopped the answer") -> None:
        """Stop the answer being written or spoken, as a query would (the history keeps what was heard)."""
        self.floor.interrupt(reason)
        self.output.resume()

    def truncate_answer(self, turn_id: int, heard_s: float) -> str | None:
        """The user heard only the first ``heard_s`` seconds of turn ``turn_id``'s voice (a transport whose
        client plays from its own buffer knows better than the playback count): the history keeps those words.
        Returns them, or None when the history no longer holds that answer."""
        return self.floor.truncate(turn_id, heard_s)

    def set_instructions(self, text: str) -> None:
        """A new system prompt, from the next answer on."""
        self.conversation.system_prompt = clean_text(text)

    async def transcribe(self, frame: AudioFrame) -> str:
        """The words in ``frame`` by the listener's recognizer, off the loop (for transports whose client
        decides where a turn ends, and so sends no audio through the duplex core)."""
        transcript = await self.floor.listener.transcribe(frame.convert(sample_rate=16000).mono_float32())
        return transcript.text.strip()

    @property
    def history(self) -> list[Turn]:
        return self.conversation.turns

    @property
    def listener(self) -> Worker:
        return self.floor.listener

    @property
    def speaker(self) -> Worker | None:
        return self.floor.speaker

    # --- inside ------------------------------------------------------------------------------------

    async def _input_loop(self) -> None:
        loop = asyncio.get_running_loop()
        segmentation = self.segmentation
        while True:
            frame = await self._input.get()
            segmentation.start_stream(self.clock.now() - frame.duration)
            scored_frames = await loop.run_in_executor(self._vad_executor, self.input.analyse, frame)
            for scored in scored_frames:
                frame_time = segmentation.stream_time or 0.0
                segmentation.stream_time = frame_time + self.input.frame_s
                self.ducking.on_frame(frame_time, scored.level_dbfs, scored.echo)
                segmentation.on_frame(scored, frame_time)

    async def _typed(self, text: str) -> None:
        now = self.clock.now()
        self.bus.publish(TextMessage(time=now, text=text))
        self.bus.publish(StateDecided(time=now, worker=self.floor.listener.name, segment_id=-1,
                                      token=StateToken.TEXT_QUERY, query_probability=1.0, reason="typed message",
                                      text=text))
        await self.vision.settle(now, now, self.options.vision_wait_s)
        self.bus.publish(QueryHeard(time=self.clock.now(), worker=self.floor.listener.name, segment_id=-1, text=text,
                                    from_time=now, typed=True, visual_context=self.vision.context(now, now),
                                    view_just_shown=self.vision.newly_shown(now, now)))
