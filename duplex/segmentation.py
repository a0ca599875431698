"""Segmentation: scored VAD frames in, segments of user speech out, each ending in a verdict on the bus.

Per frame: the VAD stream is cut into segments (``audio.vad.SpeechSegmenter``: speech start, silence start,
speech end with hangover). At a silence's start the listener already transcribes and, when the words read
finished, decides (speculation): most pauses that get that far end the turn. Once the pause lasts, the turn
ends there if the transcript reads finished (else the long silence decides), and the segment is judged.
A long segment over the assistant's voice is judged every ``interim_decision_s`` while it goes on. When the
user goes on after a pause, the next segment is heard together with the last one ("I went to book." ...
"a table for two").

Verdicts go out as events: ``StateDecided`` for every decision, then ``QueryHeard`` (the floor takes it) or
``SpeechDismissed`` (the voice comes back). Nothing here calls the floor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from audio.asr import Transcript
from audio.vad import SegmenterEventKind, SpeechSegmenter
from duplex.clock import Clock
from duplex.decision import StateDecision, StateToken
from duplex.events import Event, QueryHeard, SpeechDismissed, SpeechEnded, SpeechStarted, StateDecided, UserTranscript
from duplex.hearing import Hearing
from duplex.input import ScoredFrame
from duplex.options import DuplexOptions
from duplex.segment import MERGEABLE_STATES, Heard, Interim, Segment, SegmentState, Speculation
from duplex.tasks import BackgroundTasks
from duplex.turn_end import turn_looks_complete
from duplex.worker import Worker

INTERIM_QUERY_PROBABILITY = 0.8  # an interim decision this sure of a query cuts the answer before the user ends


class Segmentation:
    def __init__(self, options: DuplexOptions, frame_s: float, hearing: Hearing, tasks: BackgroundTasks,
                 publish: Callable[[Event], None], clock: Clock, listener: Callable[[], Worker],
                 assistant_busy: Callable[[], bool], output_speaking: Callable[[], bool],
                 turn_started: Callable[[], bool]) -> None:
        self.options, self.frame_s, self.hearing, self.tasks = options, frame_s, hearing, tasks
        self.publish, self.clock = publish, clock
        self.listener = listener  # the worker that listens now (the floor decides)
        self.assistant_busy, self.output_speaking, self.turn_started = assistant_busy, output_speaking, turn_started
        self._vad_segmenter = SpeechSegmenter(frame_s, options.vad_start_threshold, options.vad_end_threshold,
                                              options.vad_start_frames, options.short_silence_s,
                                              max(1, round(options.speculate_after_s / frame_s)))
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, int(options.pre_roll_s / frame_s)))
        self._counter = 0
        self.segment: Segment | None = None  # the segment the user is in (speaking or pausing)
        # The last idle segment not taken as a query (or still being judged): the next one may carry its words.
        self._last_closed: Segment | None = None
        self.stream_time: float | None = None  # the microphone stream's clock: the end of the last frame

    @property
    def user_speaking(self) -> bool:
        return self.segment is not None

    def start_stream(self, at: float) -> None:
        if self.stream_time is None:
            self.stream_time = at

    # --- frames --------------------------------------------------------------------------------------

    def on_frame(self, frame: ScoredFrame, frame_time: float) -> None:
        """One scored VAD frame that began at ``frame_time`` (``stream_time`` already moved past it)."""
        segment = self.segment
        if segment is not None:
            segment.audio.append(frame.samples)
            segment.probabilities.append(frame.probability)
            if frame.echo_share is not None:
                segment.echo_shares.append(frame.echo_share)
            segment.overlapped_assistant |= self.output_speaking()
        else:
            self._pre_roll.append(frame.samples)
        event = self._vad_segmenter.push(frame.probability, frame_time)
        if event is not None and event.kind is SegmenterEventKind.SPEECH_START:
            self._speech_started(event.time)
        elif event is not None and segment is not None and segment.open:
            if event.kind is SegmenterEventKind.SILENCE_START:
                # Transcribe and decide now, while waiting to see whether the pause lasts: they are the slow
                # steps before an answer, and most pauses that reach this point end the turn.
                heard = segment.heard_now()
                segment.speculation = Speculation(event.time, heard,
                                                  self.tasks.spawn(self._speculate(segment, event.time, heard)))
            elif event.kind is SegmenterEventKind.SPEECH_END:
                segment.pause_at = event.time
                if segment.state is SegmentState.SPEAKING:
                    segment.move(SegmentState.PAUSED)
                early = segment.speculation_for(event.time)
                segment.heard_at_pause = early.heard if early else segment.heard_now()
                self.tasks.spawn(self._paused(segment, event.time))
        self._check_length()

    def _check_length(self) -> None:
        segment = self.segment
        if segment is None or not segment.open or self.stream_time is None:
            return
        length = self.stream_time - segment.onset
        if length >= self.options.max_segment_s:  # cut here: ``pause_at`` marks the end while the close waits
            segment.pause_at = self.stream_time
            segment.heard_at_pause = segment.heard_now()
            self.tasks.spawn(self._close(segment, None))
        elif (segment.overlapped_assistant and segment.interim is Interim.IDLE and segment.pause_at is None
              and length - segment.interim_at >= self.options.interim_decision_s):
            segment.interim, segment.interim_at = Interim.RUNNING, length
            self.tasks.spawn(self._interim(segment))

    def _speech_started(self, onset: float) -> None:
        segment = self.segment
        if segment is not None and segment.open and segment.pause_at is not None:
            segment.pause_at = None  # the user went on after a pause: same turn, keep listening
            segment.heard_at_pause = None
            if segment.state is SegmentState.PAUSED:
                segment.move(SegmentState.SPEAKING)
            return
        self._counter += 1
        assistant_busy = self.assistant_busy()
        audio = list(self._pre_roll)
        previous = self._last_closed
        if (previous is not None and previous.state in MERGEABLE_STATES and previous.end is not None
                and onset - previous.end <= self.options.long_silence_s):
            previous.move(SegmentState.ABSORBED)  # its words are heard again as the start of this segment
            audio = previous.audio + audio
        self._last_closed = None
        self.segment = Segment(self._counter, onset, self.listener(), audio, [], assistant_busy)
        self._pre_roll.clear()
        self.publish(SpeechStarted(time=self.clock.now(), onset=onset, segment_id=self._counter,
                                   overlaps_assistant=assistant_busy))

    # --- pauses ------------------------------------------------------------------------------------

    async def _paused(self, segment: Segment, pause_at: float) -> None:
        """After a short silence: end the turn now if it reads finished, else give the user longer."""
        if pause_at - segment.onset < self.options.min_segment_s:
            await self._close(segment, None, reason="too short to be speech")
            return
        early, speculation = None, segment.speculation_for(pause_at)
        if speculation is not None:
            transcript, early = await speculation.task  # begun at the start of this same pause
        else:
            transcript = await self.hearing.transcribe(segment)
        if transcript is None or not segment.open or segment.pause_at != pause_at:
            return  # the listener failed, or the user went on speaking meanwhile
        if not self._reads_finished(segment, transcript):
            self._publish_transcript(segment, transcript, final=False)
            wait = pause_at + self.options.long_silence_s - (self.stream_time or pause_at)
            await self.clock.sleep(max(0.0, wait))
            if not segment.open or segment.pause_at != pause_at:
                return
        await self._close(segment, transcript, early=early)

    @staticmethod
    def _reads_finished(segment: Segment, transcript: Transcript) -> bool:
        """May the turn end at a short pause? (Else the long silence decides.)"""
        return turn_looks_complete(transcript.text) or transcript.looks_like_noise or segment.overlapped_assistant

    async def _speculate(self, segment: Segment, silence_at: float,
                         heard: Heard) -> tuple[Transcript | None, tuple[StateDecision, float] | None]:
        """At a pause's start: transcribe, and when the words read finished, decide (unpublished); ``_paused``
        uses the result only if this same pause lasts."""
        transcript = await self.hearing.transcribe(segment)
        if (transcript is None or not segment.open or segment.speculation_for(silence_at) is None
                or not self._reads_finished(segment, transcript)):
            return transcript, None
        return transcript, await self._judge(segment, transcript, heard, settle_vision=True)

    async def _interim(self, segment: Segment) -> None:
        """Decide on a long segment that overlaps the assistant's voice before it ends."""
        try:
            transcript = await self.hearing.transcribe(segment)
            if transcript is None or not segment.open:
                return
            decision = await self._decide(segment, transcript, interim=True)
            if not segment.open or decision is None:
                return
            if decision.token is StateToken.IGNORE:
                segment.interim = Interim.RELEASED
                self.publish(SpeechDismissed(time=self.clock.now(), segment_id=segment.id, interim=True,
                                             reason="interim decision: not a query"))
            elif decision.query_probability >= INTERIM_QUERY_PROBABILITY and self.turn_started():
                segment.interim = Interim.INTERRUPTED
                self.publish(QueryHeard(time=self.clock.now(), worker=segment.listener.name, segment_id=segment.id,
                                        text=transcript.text, from_time=self.clock.now(), interim=True))
        finally:
            if segment.interim is Interim.RUNNING:
                segment.interim = Interim.IDLE

    # --- the end of a segment: its verdict ---------------------------------------------------------

    async def _close(self, segment: Segment, transcript: Transcript | None, reason: str = "",
                     early: tuple[StateDecision, float] | None = None) -> None:
        if not segment.open:
            return
        segment.move(SegmentState.JUDGING)
        if self.segment is segment:
            self.segment = None
        end = segment.pause_at if segment.pause_at is not None else self.stream_time
        segment.end = end
        if not segment.overlapped_assistant:
            self._last_closed = segment
        self.publish(SpeechEnded(time=self.clock.now(), onset=segment.onset, end=end or 0.0, segment_id=segment.id))
        if transcript is None and not reason:
            transcript = await self.hearing.transcribe(segment)
            if transcript is None:
                return  # the listener failed: the segment stays undecided
        decision: StateDecision | None
        if transcript is None:
            decision = StateDecision(StateToken.IGNORE, 0.0, reason)
            self._publish_decision(segment, decision, "", False, 0.0)
        else:
            self._publish_transcript(segment, transcript, final=True)
            if early is not None:  # decided while the pause was still being timed
                decision = early[0]
                self._publish_decision(segment, decision, transcript.text, False, early[1])
            else:
                decision = await self._decide(segment, transcript)
        query = decision is not None and decision.token is StateToken.QUERY
        noise = transcript is None or transcript.looks_like_noise
        if not query and segment.interim is Interim.INTERRUPTED and not noise:
            # Its first part already stopped the answer as a confident query: answer the whole segment
            # rather than leave the user with neither the old answer nor a new one.
            query = True
        if segment.state is SegmentState.ABSORBED:
            return  # the user went on speaking; the segment that carries these words decides
        segment.move(SegmentState.QUERY if query else SegmentState.NOISE if noise else SegmentState.IGNORED)
        if query and transcript is not None:
            self.publish(QueryHeard(time=self.clock.now(), worker=segment.listener.name, segment_id=segment.id,
                                    text=transcript.text, from_time=end or 0.0,
                                    visual_context=segment.visual_context, view_just_shown=segment.view_just_shown,
                                    avg_logprob=transcript.avg_logprob))
        else:
            self.publish(SpeechDismissed(time=self.clock.now(), segment_id=segment.id, reason="not a query"))

    async def _decide(self, segment: Segment, transcript: Transcript, interim: bool = False) -> StateDecision | None:
        judged = await self._judge(segment, transcript, segment.heard_at_pause, settle_vision=not interim)
        if judged is None:
            return None
        decision, decide_ms = judged
        self._publish_decision(segment, decision, transcript.text, interim, decide_ms)
        return decision

    async def _judge(self, segment: Segment, transcript: Transcript, heard: Heard | None,
                     settle_vision: bool) -> tuple[StateDecision, float] | None:
        end = segment.end or self.stream_time or 0.0
        return await self.hearing.judge(segment, transcript, heard, end, settle_vision)

    def _publish_transcript(self, segment: Segment, transcript: Transcript, final: bool) -> None:
        self.publish(UserTranscript(time=self.clock.now(), segment_id=segment.id, text=transcript.text, final=final,
                                    no_speech_prob=transcript.no_speech_prob, avg_logprob=transcript.avg_logprob))

    def _publish_decision(self, segment: Segment, decision: StateDecision, text: str, interim: bool,
                          decide_ms: float) -> None:
        self.publish(StateDecided(
            time=self.clock.now(), worker=segment.listener.name, segment_id=segment.id, token=decision.token,
            query_probability=decision.query_probability, reason=decision.reason, text=text, interim=interim,
            assistant_speaking=segment.overlapped_assistant, decide_ms=decide_ms,
            echo_share=segment.mean_echo_share()))
