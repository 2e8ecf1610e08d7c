"""The channel interface, its request/answer values and its errors.

Errors::

    ChannelError           the channel could not give an answer
    ├── ChannelTimeout     no answer within the timeout: the outcome is unknown → reverse
    └── ChannelUnavailable refused before processing (connection refused, 91/92)
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TypeVar

from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode

CHANNEL_TIMEOUT_S_DEFAULT = 10.0
CHANNEL_WORKERS_MAX = 64

T = TypeVar("T")


class ChannelError(Exception):
    """The channel gave no usable answer."""


class ChannelTimeout(ChannelError):
    """No answer in time. The channel may still have acted: the caller must reverse."""


class ChannelUnavailable(ChannelError):
    """The channel refused the call before processing it; nothing happened there."""


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """One authorization request. Card data lives only in memory and never in a repr."""

    reference: str
    """Our transaction id: the channel's idempotency key, also used to reverse."""
    txn_type: str
    amount: Money
    merchant_id: str
    terminal_id: str
    business_date: date
    pan: str | None = field(default=None, repr=False)
    """None for operations on an original (void, refund...) sent without the card."""
    expiry: str | None = field(default=None, repr=False)
    pin: str | None = field(default=None, repr=False)
    original_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelAnswer:
    response_code: ResponseCode
    auth_code: str | None = None
    channel_ref: str | None = None
    balance_minor: int | None = None


class Channel(Protocol):
    """An issuer or acquiring channel."""

    name: str

    def authorize(self, request: ChannelRequest) -> ChannelAnswer:
        """Ask for a decision. May block; callers bound it with :func:`call_with_timeout`."""
        ...

    def reverse(self, reference: str, reason: str) -> bool:
        """Undo whatever ``reference`` did at the channel. True = acknowledged (idempotent:
        reversing an unknown or already reversed reference is acknowledged too)."""
        ...


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=CHANNEL_WORKERS_MAX, thread_name_prefix="channel")
        return _pool


def call_with_timeout(fn: Callable[[], T], timeout_s: float) -> T:
    """Run a channel call with a deadline; a late call keeps running but is abandoned.

    Exceptions other than :class:`ChannelError` are translated to ``ChannelUnavailable``
    here, once, so services only ever see the channel error hierarchy.
    """
    future = _executor().submit(fn)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError as exc:
        raise ChannelTimeout(f"no answer within {timeout_s:.3f}s") from exc
    except ChannelError:
        raise
    except Exception as exc:
        raise ChannelUnavailable(f"channel failed: {type(exc).__name__}") from exc
