"""A thread that runs periodic tasks until stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TICK_S = 0.5


@dataclass
class PeriodicTask:
    """``fn`` runs every ``interval_s`` seconds; the first run is at start-up."""

    name: str
    interval_s: float
    fn: Callable[[], object]
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    _next_at: float = field(default=0.0, repr=False)


class JobRunner:
    """Runs tasks in one background thread; a failing task is logged and retried later."""

    def __init__(self, tasks: list[PeriodicTask]) -> None:
        self.tasks = tasks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autosettle-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def run_due(self) -> None:
        now = time.monotonic()
        for task in self.tasks:
            if now < task._next_at:
                continue
            task._next_at = now + task.interval_s
            try:
                task.fn()
                task.runs += 1
            except Exception as exc:  # a job must never kill the runner
                task.failures += 1
                task.last_error = type(exc).__name__
                log.exception("job %s failed", task.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(TICK_S)
