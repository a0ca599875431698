"""The listener's work on a segment: transcribe it, and judge it (the state decision), each off the event
loop on the segment's listener worker, with a timeout. A failure or a hang restarts that worker (see
``Recovery``) and reads as None: the segment is left undecided, the session goes on.

While any of this runs, the camera's describer waits (the ASR needs both cores): ``VisionInput`` is told
when the listener becomes busy and idle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np

from audio.asr import Transcript
from duplex.conversation import Conversation
from duplex.decision import SegmentEvidence, StateDecision
from duplex.models import StateDecider
from duplex.options import DuplexOptions
from duplex.segment import Heard, Segment
from duplex.vision import VisionInput
from duplex.worker import Worker

LISTENER_TIMEOUT_S = 20.0  # ASR + decision on one segment; past this the listener is declared hung


class Hearing:
    def __init__(self, decider: StateDecider, vision: VisionInput, conversation: Conversation,
                 options: DuplexOptions, assistant_text: Callable[[], str],
                 on_failure: Callable[[Worker, BaseException], Awaitable[None]]) -> None:
        self.decider, self.vision, self.conversation, self.options = decider, vision, conversation, options
        self.assistant_text = assistant_text  # what the assistant is saying around now (the own-voice check)
        self.on_failure = on_failure
        self._jobs = 0

    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _count(self, delta: int) -> None:
        before, self._jobs = self._jobs, self._jobs + delta
        if (before == 0) != (self._jobs == 0):
            self.vision.audio_busy_changed(self._jobs > 0)

    async def transcribe(self, segment: Segment) -> Transcript | None:
        self._count(+1)
        try:
            return await asyncio.wait_for(segment.listener.transcribe(segment.samples()), LISTENER_TIMEOUT_S)
        except Exception as error:  # a hung or failing ASR: restart that worker, tell the user
            await self.on_failure(segment.listener, error)
            return None
        finally:
            self._count(-1)

    async def judge(self, segment: Segment, transcript: Transcript, heard: Heard | None, end: float,
                    settle_vision: bool) -> tuple[StateDecision, float] | None:
        """The decider's verdict on the segment as ``heard`` (all of it when None), ended at ``end``, and its
        cost in ms; None when the listener failed. Publishes nothing."""
        if settle_vision:  # a frame shown while asking may still be being analysed
            await self.vision.settle(segment.onset, end, self.options.vision_wait_s)
        segment.visual_context = self.vision.context(segment.onset, end)
        segment.view_just_shown = self.vision.newly_shown(segment.onset, end)
        audio_frames, vad_frames = heard or (None, None)
        evidence = SegmentEvidence(
            audio_16k=segment.samples(audio_frames), transcript=transcript,
            speech_probabilities=np.asarray(segment.probabilities[:vad_frames], dtype=np.float32),
            assistant_speaking=segment.overlapped_assistant, assistant_text=self.assistant_text(),
            conversation_tail=self.conversation.tail(), visual_context=segment.visual_context,
            echo_share=segment.mean_echo_share())
        started = time.perf_counter()
        self._count(+1)
        try:
            decision = await asyncio.wait_for(segment.listener.decide(self.decider, evidence), LISTENER_TIMEOUT_S)
        except Exception as error:
            await self.on_failure(segment.listener, error)
            return None
        finally:
            self._count(-1)
        return decision, (time.perf_counter() - started) * 1000
