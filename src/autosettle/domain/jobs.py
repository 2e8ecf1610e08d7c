"""Job runs: one run of a scheduled or manual job under a database lease, as a pure value.

The lease protocol itself (claim, renew, finish, defer) lives in
:mod:`autosettle.services.leases`; this module names the statuses and says how a run is
shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Status of one job run (one row per job name and run key)."""

    RUNNING = "running"
    """An owner holds the lease and renews it."""
    DONE = "done"
    """Finished; never run again under the same key."""
    FAILED = "failed"
    """Its function raised; due again once its retry delay (the lease) has expired."""
    DEFERRED = "deferred"
    """Held back by a maintenance window until the window's end."""
    ABANDONED = "abandoned"
    """Its owner stopped renewing the lease before the end."""
    SUPERSEDED = "superseded"
    """A deferred run that a later run of the same job has covered."""


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job, keyed by (job name, run key)."""

    job_name: str
    run_key: str
    status: JobStatus
    owner: str
    lease_expires_at: datetime
    started_at: datetime
    finished_at: datetime | None
    counts: Mapping[str, Any]
    error: str | None

    def expired_at(self, now: datetime) -> bool:
        """True when the lease ran out before ``now``."""
        return self.lease_expires_at < now

    def as_shown(self, now: datetime) -> JobRun:
        """The run as lists show it at ``now``: ``running`` with an expired lease is
        ``abandoned`` even before that has been recorded."""
        if self.status is JobStatus.RUNNING and self.expired_at(now):
            return replace(self, status=JobStatus.ABANDONED)
        return self
