"""One poller per system: each tick asks the scheduler about every live job in one call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from cloudai_nb.core.errors import SchedulerError
from cloudai_nb.core.job import Job
from cloudai_nb.systems.base import Backend, Update

log = logging.getLogger(__name__)

Sink = Callable[[Update], None]


class Poller:
    """Tracks live jobs of one backend and reports their changes to whoever submitted them.

    The interval starts at the system's ``monitor_interval``, grows by half while nothing changes
    (up to ``max_interval``) and never drops below the backend's ``min_interval`` floor. A backend
    that learns of a change by itself wakes the poller at once.
    """

    def __init__(self, backend: Backend, *, interval: float, max_interval: float | None = None) -> None:
        self.backend = backend
        self.loop = asyncio.get_running_loop()
        self.interval = max(interval, backend.min_interval)
        self.max_interval = max_interval if max_interval is not None else max(self.interval * 8, 10.0)
        self.wake = asyncio.Event()
        backend.wake = self.wake
        self.ticks = 0  # scheduler calls made: one per tick, whatever the number of jobs
        self.problem: str | None = None  # why the scheduler cannot be asked right now
        self.health_listeners: list[Callable[[str | None], None]] = []
        self._tracked: dict[str, tuple[Job, Sink]] = {}
        self._task: asyncio.Task[None] | None = None

    def track(self, job: Job, sink: Sink) -> None:
        self._tracked[job.uid] = (job, sink)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cloudai_nb poller")

    def untrack(self, job: Job) -> None:
        self._tracked.pop(job.uid, None)

    @property
    def tracked(self) -> int:
        return len(self._tracked)

    async def _run(self) -> None:
        interval = self.interval
        loop = asyncio.get_running_loop()
        last = 0.0
        while self._tracked:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, last + interval - loop.time()))
            self.wake.clear()
            floor = last + self.backend.min_interval - loop.time()
            if floor > 0:
                await asyncio.sleep(floor)
            last = loop.time()
            entries = list(self._tracked.values())
            try:
                updates = await self.backend.poll([job for job, _ in entries])
            except SchedulerError as exc:
                log.warning("%s (retrying in %.1f s)", exc, interval)
                self._set_problem(str(exc))
                interval = min(interval * 2, self.max_interval)
                continue
            finally:
                self.ticks += 1
            self._set_problem(None)
            for update in updates:
                entry = self._tracked.get(update.job.uid)
                if entry is None:
                    continue
                if update.state.is_done:
                    del self._tracked[update.job.uid]
                try:
                    entry[1](update)
                except Exception:  # one run's problem must not stop the news for the others
                    log.exception("handling %s of %s failed", update.state, update.job.key)
            interval = self.interval if updates else min(interval * 1.5, self.max_interval)

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        for listener in list(self.health_listeners):
            try:
                listener(problem)
            except Exception:
                log.exception("a scheduler health listener failed")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.backend.close()


_pollers: dict[tuple[int, str], Poller] = {}


def poller_for(backend_factory: Callable[[], Backend], system_key: str, interval: float) -> Poller:
    """The poller (and backend) of a system on the running loop, made on first use."""
    loop = asyncio.get_running_loop()
    for stale in [k for k, p in _pollers.items() if p.loop.is_closed()]:
        _pollers.pop(stale).backend.close()
    key = (id(loop), system_key)
    poller = _pollers.get(key)
    if poller is None or poller.backend.closed:
        poller = Poller(backend_factory(), interval=interval)
        _pollers[key] = poller
    return poller
