"""The engine thread: one event loop, on its own thread, drives every run started from Python.

A run keeps going whatever the caller's thread does: a notebook cell may compute for minutes or
block in ``run.wait()``, and dependent jobs are still submitted the moment they may start. Whoever
shows progress (the notebook's live view) hands its updates to its own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EngineThread:
    """Starts on first use and stops when it has no run left to drive.

    ``daemon`` decides whether live runs keep the process alive at exit: yes for scripts (a script
    that starts a run and ends still sees it through), no in a kernel (a restart must not wait for
    jobs; the ledger lets the next kernel take the runs over).
    """

    daemon = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._active = 0

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the engine loop; the returned future completes with its result."""
        with self._lock:
            loop = self._ensure_loop()
            self._active += 1
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        future.add_done_callback(self._one_done)
        return future

    def call(self, function: Any, *args: Any) -> None:
        """Call ``function(*args)`` on the engine loop (thread-safe, fire and forget)."""
        with self._lock:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(function, *args)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            return self._loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="cloudai_nb engine", daemon=self.daemon)
        self._loop = loop
        self._thread.start()
        ready.wait()
        return loop

    def _one_done(self, _: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


engine = EngineThread()
