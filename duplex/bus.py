"""A per-session publish/subscribe bus with bounded queues and a control lane.

Publishing never blocks: each subscriber has its own queue; when a subscriber falls behind, its oldest
*data* events are dropped (and counted) rather than letting memory grow. Control events are never dropped
and are delivered before any queued data.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TypeVar

from duplex.events import Event

E = TypeVar("E", bound=Event)


class Subscription:
    def __init__(self, bus: EventBus, name: str, kinds: tuple[type[Event], ...] | None, max_data: int) -> None:
        self.bus, self.name, self.kinds, self.max_data = bus, name, kinds, max_data
        self._control: deque[Event] = deque()
        self._data: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        return self.kinds is None or isinstance(event, self.kinds)

    def put(self, event: Event) -> None:
        if event.control:
            self._control.append(event)
        else:
            if len(self._data) >= self.max_data:
                self._data.popleft()
                self.dropped += 1
            self._data.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while True:
            if self._control:
                return self._control.popleft()
            if self._data:
                return self._data.popleft()
            if self.closed:
                raise EOFError(f"subscription {self.name} is closed")
            self._ready.clear()
            await self._ready.wait()

    def get_nowait(self) -> Event | None:
        if self._control:
            return self._control.popleft()
        if self._data:
            return self._data.popleft()
        return None

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self.bus.unsubscribe(self)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._loop_thread = loop, threading.get_ident()

    def on_loop_thread(self) -> bool:
        """True on the session's event loop thread (or before the session started)."""
        return self._loop is None or threading.get_ident() == self._loop_thread

    def call_on_loop(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on the session's loop, from any thread (RuntimeError once it has closed)."""
        if self._loop is None:
            raise RuntimeError("the bus is not bound to a loop yet")
        self._loop.call_soon_threadsafe(callback, *args)

    def subscribe(self, name: str, kinds: Iterable[type[Event]] | None = None, max_data: int = 1000) -> Subscription:
        subscription = Subscription(self, name, tuple(kinds) if kinds is not None else None, max_data)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def add_listener(self, callback: Callable[[Event], None], first: bool = False) -> None:
        """Call ``callback`` synchronously for every event (for the event log and metrics; keep it cheap).

        ``first``: before every listener added so far, so that it sees an event before the events that the
        core's own listeners publish in answer to it (a query before the turn it starts)."""
        if first:
            self._listeners.insert(0, callback)
        else:
            self._listeners.append(callback)

    def publish(self, event: Event) -> None:
        if not self.on_loop_thread():
            self.call_on_loop(self.publish, event)  # from a model thread: hop onto the loop
            return
        for listener in self._listeners:
            listener(event)
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.put(event)


class EventLog:
    """Keeps every event (``events``, typed) and writes each as one JSON line (audio summarised by its
    duration): the log file is the edge where events become JSON."""

    def __init__(self, path: str | Path | None = None, keep: bool = True,
                 skip: tuple[type[Event], ...] = ()) -> None:
        self.events: list[Event] = []
        self.records: list[dict] = []  # the same, as the JSON-ready dicts the file holds
        self.keep = keep
        self.skip = skip
        self._file: IO[str] | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", buffering=1)

    def __call__(self, event: Event) -> None:
        if isinstance(event, self.skip):
            return
        record = event.to_log()
        if self.keep:
            self.events.append(event)
            self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, default=str) + "\n")

    def of_kind(self, *kinds: str) -> list[dict]:
        return [r for r in self.records if r["kind"] in kinds]

    def of_type(self, *types: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, types)]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
