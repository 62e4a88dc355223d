"""Inference off the event loop, with a bounded number of requests in the building.

A request's upload is read first, while it holds one of the upload :class:`Places` (at most
``max_uploads`` at once, so memory stays bounded by that many uploads); a client that is slow or
stalls holds only that, never an inference place. Then :class:`InferenceQueue` runs the
blocking work (decoding, detection, the model) on a fixed pool of threads: the request takes a
:class:`Ticket` once its upload has arrived; at most ``capacity`` tickets exist at once
(``threads`` running plus ``queue`` waiting for a thread). A request that finds them all taken is
refused at once (:class:`QueueFull`, answered 503 with ``Retry-After``) instead of waiting in
an unbounded line. A ticket is given back when its work ends, not when its request stops
waiting: a request whose time ran out (:class:`InferenceTimeout`, 504) while its work runs
keeps its place until the thread is free again, so timed-out work never piles up unseen.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every place is taken: ``capacity`` requests are running or waiting."""


class InferenceTimeout(Exception):
    """The work did not finish within the request's time."""


class Ticket:
    """One admitted request's place in an :class:`InferenceQueue`; :meth:`close` gives it back
    unless work was handed to a thread (the thread gives it back when that work ends)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._handed_over = False
        self._released = False

    def hand_over(self) -> None:
        """From now on the thread running this request's work gives the place back."""
        with self._lock:
            self._handed_over = True

    def release(self) -> None:
        """Gives the place back (once; later calls do nothing)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release()

    def close(self) -> None:
        """Gives the place back unless its work was handed to a thread."""
        with self._lock:
            handed_over = self._handed_over
        if not handed_over:
            self.release()


class Places:
    """At most ``limit`` holders at once (a thread-safe counter): :meth:`take` returns a
    :class:`Ticket` that gives the place back, or raises :class:`QueueFull`. The uploads being
    read hold one kind (``--max-uploads``), the admitted requests of :class:`InferenceQueue` another."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"need limit >= 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._taken = 0

    def take(self) -> Ticket:
        with self._lock:
            if self._taken >= self.limit:
                raise QueueFull(f"all {self.limit} places are taken")
            self._taken += 1
        return Ticket(self._give_back)

    def _give_back(self) -> None:
        with self._lock:
            self._taken -= 1

    @property
    def taken(self) -> int:
        with self._lock:
            return self._taken


class InferenceQueue:
    """``threads`` worker threads and at most ``capacity`` admitted requests (``capacity`` >=
    ``threads``). Thread-safe; :meth:`run` is called from the event loop."""

    def __init__(self, *, threads: int, capacity: int) -> None:
        if threads < 1 or capacity < threads:
            raise ValueError(f"need threads >= 1 and capacity >= threads, got threads={threads}, capacity={capacity}")
        self.threads = threads
        self.capacity = capacity
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fer-nla-inference")
        self._lock = threading.Lock()
        self._places = Places(capacity)
        self._running = 0

    def admit(self) -> Ticket:
        """A place for one request; raises :class:`QueueFull` when all ``capacity`` are taken."""
        return self._places.take()

    def stats(self) -> dict[str, int]:
        """``running`` (on a thread), ``waiting`` (uploaded, waiting for a thread), ``capacity``, ``threads``."""
        with self._lock:
            running = self._running
        return {"running": running, "waiting": max(0, self._places.taken - running), "capacity": self.capacity,
                "threads": self.threads}

    async def run(self, ticket: Ticket, work: Callable[[], T], *, timeout: float) -> T:
        """``work()``'s result, computed on a worker thread; its exception is raised here.

        Raises :class:`InferenceTimeout` when it has not finished ``timeout`` seconds from now
        (work still waiting for a thread is then dropped; work already running finishes on its
        thread, which keeps ``ticket``'s place until then)."""
        def counted() -> T:
            with self._lock:
                self._running += 1
            try:
                return work()
            finally:
                with self._lock:
                    self._running -= 1

        future: Future[T] = self._executor.submit(counted)
        ticket.hand_over()
        future.add_done_callback(lambda _: ticket.release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(0.0, timeout))
        except asyncio.TimeoutError:
            future.cancel()  # only stops work that has not started; running work keeps its place
            raise InferenceTimeout(f"not done within {timeout:.3g} s") from None

    def shutdown(self) -> None:
        """Stops taking work; work not started is dropped, running work is not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)
