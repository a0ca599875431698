"""The floor: who answers, who listens, and the one way a turn ends.

It acts on the bus: ``QueryHeard`` (a spoken or typed query) interrupts whatever is being said and hands the
floor to the worker that heard it, while the other listens; an interim one only cuts the answer. A turn ends in
``end_turn`` alone, with a ``TurnStatus``:
  COMPLETED    its audio finished playing (or it had nothing to say): the whole answer joins the history
  INTERRUPTED  the user took the floor: the history keeps only the words the user heard
  FAILED       the model failed or hung: the question leaves the history, the worker restarts, an apology plays
  CLOSED       the session ended during the answer
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from duplex.answer_guard import EchoGuard
from duplex.clarify import repeat_reason
from duplex.clock import Clock
from duplex.conversation import Conversation, Turn
from duplex.events import (
    AnswerTruncated,
    ErrorEvent,
    Event,
    HandOff,
    Interrupt,
    PlaybackReason,
    PlaybackStopped,
    QueryHeard,
    SpeechStarted,
    TurnEnded,
    TurnStarted,
    TurnStatus,
)
from duplex.options import DuplexOptions
from duplex.playback import PlaybackBuffer, heard_text, heard_text_until
from duplex.recovery import Recovery
from duplex.state import asks_for_silence
from duplex.tasks import BackgroundTasks
from duplex.view_reference import about_view, latest_view
from duplex.worker import Worker

NEXT_QUESTION_TOKENS = 100  # room kept for the next question when the history is read ahead after an answer
KEPT_ANSWERS = 16  # answers a transport may still cut to what its user heard (the last few turns)


@dataclass
class OpenTurn:
    turn_id: int
    worker: Worker
    question: str
    from_time: float
    question_turn: Turn  # in the history; dropped again if the answer fails
    closed: bool = False


class Floor:
    def __init__(self, workers: list[Worker], conversation: Conversation, output: PlaybackBuffer,
                 publish: Callable[[Event], None], clock: Clock, tasks: BackgroundTasks, recovery: Recovery,
                 turn_ids: itertools.count, user_speaking: Callable[[], bool],
                 options: DuplexOptions | None = None) -> None:
        self.workers = workers
        self.options = options or DuplexOptions()
        self.conversation, self.output, self.publish, self.clock = conversation, output, publish, clock
        self.tasks, self.recovery, self.turn_ids = tasks, recovery, turn_ids
        self.user_speaking = user_speaking
        self.listener: Worker = workers[0]
        self.speaker: Worker | None = None
        self.turn: OpenTurn | None = None  # the latest turn (closed or not)
        self.answers: dict[int, Turn] = {}  # turn id -> its answer in the history, for the last few turns
        self._idle_reading = threading.Event()  # set: stop reading the next prompt ahead (the user speaks)

    # --- what the bus brings ---------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, QueryHeard):
            if event.interim:
                self.interrupt("user query (interim decision)")
            else:
                self.take(self.worker(event.worker), event.text, event.from_time, event.typed, event.visual_context,
                          event.avg_logprob, event.view_just_shown)
        elif isinstance(event, PlaybackStopped) and event.reason is PlaybackReason.FINISHED:
            turn = self.turn
            if turn is not None and turn.turn_id == event.turn_id and not turn.closed:
                self.end_turn(turn, TurnStatus.COMPLETED)
        elif isinstance(event, SpeechStarted):
            self._idle_reading.set()  # the listener's ASR needs the cores now

    def worker(self, name: str) -> Worker:
        return next(w for w in self.workers if w.name == name)

    # --- state others read -------------------------------------------------------------------------

    @property
    def current_turn_id(self) -> int:
        return self.turn.turn_id if self.turn else -1

    @property
    def assistant_busy(self) -> bool:
        """Speaking, or about to: audio is queued or an answer is being written."""
        return self.output.speaking or any(w.answering for w in self.workers)

    def answer_text(self) -> str:
        return self.turn.worker.answer_text if self.turn else ""

    # --- taking the floor ----------------------------------------------------------------------------

    def take(self, worker: Worker, question: str, from_time: float, typed: bool = False,
             visual_context: str = "", avg_logprob: float | None = None, view_just_shown: bool = False) -> None:
        """``worker`` heard a query: stop whatever is being said, then it answers and the other listens."""
        if asks_for_silence(question):  # "Stop.": be quiet and listen; the words stay in the history
            self.interrupt("user asked for silence")
            self.output.resume()
            self.conversation.add_user(question, from_time, typed=typed, visual_context=visual_context)
            return
        self.interrupt("typed message" if typed else "user query")
        other = self.workers[1] if worker is self.workers[0] else self.workers[0]
        if self.speaker is not worker or self.listener is not other:
            self.speaker, self.listener = worker, other
            self.publish(HandOff(time=self.clock.now(), speaker=worker.name, listener=other.name,
                                 reason="typed message" if typed else "query heard"))
        self.output.resume()
        # The view reaches the model only with a question about it: a small model repeats what it is shown.
        options = self.options
        shown = bool(visual_context) and about_view(question, self.conversation.last_view_question_time(),
                                                    from_time, options.vision_follow_up_s, view_just_shown)
        # Too unsure of the words to answer: ask again (the question and the request stay in the history).
        unsure = repeat_reason(question, avg_logprob, typed, options.repeat_below_logprob,
                               options.repeat_lone_function_word)
        question_turn = self.conversation.add_user(question, from_time, typed=typed, visual_context=visual_context,
                                                   about_view=shown)
        turn_id = next(self.turn_ids)
        self.turn = OpenTurn(turn_id, worker, question, from_time, question_turn)
        self.publish(TurnStarted(time=self.clock.now(), worker=worker.name, turn_id=turn_id, question=question,
                                 from_time=from_time, view_in_prompt=shown, asks_to_repeat=unsure))
        # Then it goes in the system prompt too, where even a small model heeds it.
        seen = f"The user's camera shows: {latest_view(visual_context)}" if shown else ""
        messages = [] if unsure else self.conversation.messages(extra_system=seen)  # asking again needs no prompt
        guard = EchoGuard(question, options.repeat_phrase) if options.echo_guard and not typed else None
        worker.start_answer(turn_id, messages, self._answer_done, fixed_text=options.repeat_phrase if unsure else None,
                            guard=guard)

    def interrupt(self, reason: str) -> None:
        if self.turn is not None and not self.turn.closed:
            self.end_turn(self.turn, TurnStatus.INTERRUPTED, reason=reason)

    def _answer_done(self, worker: Worker, turn_id: int, task: asyncio.Task) -> None:
        turn = self.turn
        if task.cancelled() or turn is None or turn.turn_id != turn_id or turn.closed:
            return
        error = task.exception()
        if error is not None:
            self.tasks.spawn(self._fail(turn, error))
        elif self.output.turn(turn_id).enqueued_samples == 0:  # nothing to say (an empty answer)
            self.end_turn(turn, TurnStatus.COMPLETED)

    async def _fail(self, turn: OpenTurn, error: BaseException) -> None:
        self.end_turn(turn, TurnStatus.FAILED, error=error)
        await self.recovery.answer_failed(turn.worker)

    # --- the one way a turn ends -----------------------------------------------------------------

    def end_turn(self, turn: OpenTurn, status: TurnStatus, reason: str = "",
                 error: BaseException | None = None) -> None:
        turn.closed = True
        worker = turn.worker
        if status is TurnStatus.COMPLETED:
            answer = spoken = worker.answer_text.strip()
            self._keep_answer(turn.turn_id, self.conversation.add_assistant(answer, self.clock.now()))
        else:
            if status is not TurnStatus.FAILED:
                worker.cancel_answer()
            playback = self.output.interrupt(turn.turn_id)
            answer, spoken = worker.answer_text, heard_text(playback)
            if status is TurnStatus.INTERRUPTED:
                self._keep_answer(turn.turn_id,
                                  self.conversation.add_assistant(spoken, self.clock.now(), interrupted=True))
                self.publish(Interrupt(time=self.clock.now(), turn_id=turn.turn_id, reason=reason,
                                       played_s=playback.played_samples / self.output.sample_rate))
            elif status is TurnStatus.FAILED:
                self.publish(ErrorEvent(time=self.clock.now(), worker=worker.name,
                                        message=f"{type(error).__name__}: {error}", recovered=True))
                # The question leaves the history with its half answer: were it what broke the model (too
                # long, a character the tokenizer chokes on), every later turn would fail on it too.
                self.conversation.drop(turn.question_turn)
        self.publish(TurnEnded(time=self.clock.now(), worker=worker.name, turn_id=turn.turn_id, status=status,
                               answer=answer, spoken=spoken))
        if status is TurnStatus.COMPLETED:
            self._read_ahead(worker)

    def _keep_answer(self, turn_id: int, answer: Turn) -> None:
        self.answers[turn_id] = answer
        while len(self.answers) > KEPT_ANSWERS:
            del self.answers[next(iter(self.answers))]

    def truncate(self, turn_id: int, heard_s: float) -> str | None:
        """The user heard only the first ``heard_s`` of turn ``turn_id``'s voice (a client playing from its own
        buffer says so): the history keeps those words. Ends the turn first if it is still going on. Returns
        what the history keeps, or None for a turn it no longer holds."""
        turn = self.turn
        if turn is not None and turn.turn_id == turn_id and not turn.closed:
            self.end_turn(turn, TurnStatus.INTERRUPTED, reason="the client stopped playing it")
        answer = self.answers.get(turn_id)
        if answer is None:
            return None
        heard = heard_text_until(self.output.turn(turn_id), int(max(0.0, heard_s) * self.output.sample_rate))
        self.conversation.cut_answer(answer, heard)
        self.publish(AnswerTruncated(time=self.clock.now(), turn_id=turn_id, heard_s=heard_s, spoken=answer.text))
        return answer.text

    def _read_ahead(self, worker: Worker) -> None:
        """Idle time until the user speaks: the model reads the history now (trimmed now, if the next question
        would overflow it), so that the next answer reads only the new question."""
        if self.user_speaking():  # not while the user already speaks: the ASR needs the cores
            return
        self._idle_reading = threading.Event()
        messages = self.conversation.messages(reserve_tokens=NEXT_QUESTION_TOKENS)
        self.tasks.spawn(worker.prepare(messages, self._idle_reading))

    def close(self) -> None:
        """The session ends: a turn still open ends CLOSED (the event log ends with it, not in its middle)."""
        self._idle_reading.set()  # a prompt read ahead for a next turn that will not come
        if self.turn is not None and not self.turn.closed:
            self.end_turn(self.turn, TurnStatus.CLOSED)
