"""The terminal status view for operators and merchants: last sign-on, last message, open
batch, software version, and whether a terminal has gone silent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.terminal_records import StatusRow
from autosettle.services.access import Area, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.key_module import KeyStatus, MacAlgorithm

STATUS_PAGE_MAX: Final = 500


@dataclass(frozen=True, slots=True)
class TerminalStatusView:
    """One terminal's health for operators and its merchant."""

    merchant_id: str
    terminal_id: str
    terminal_status: str
    key_status: str
    key_generation: int
    pending_key_generation: int | None
    signed_on: bool
    mac_algorithm: str
    last_sign_on_at: datetime | None
    last_message_at: datetime | None
    open_batch_no: str | None
    software_version: str | None
    silent: bool


@dataclass(frozen=True, slots=True)
class StatusPage:
    """One page of the status view; ``next_cursor`` is None on the last."""

    items: Sequence[TerminalStatusView]
    next_cursor: str | None


def silent_after_s(ctx: ServiceContext) -> float:
    """The silence threshold (``Settings.terminal_silent_after_s``)."""
    return float(ctx.settings.terminal_silent_after_s)


def terminal_status(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
                    *, cursor: str | None = None, limit: int = 200,
                    silent_after: float | None = None,
                    silent_only: bool = False) -> StatusPage:
    """Last sign-on, last message, open batch, software version and the silent flag.

    Operators see every terminal; a merchant key its own merchant's; a terminal key none
    (``not_found``: a till has no business with its siblings' keys). A terminal is silent
    when it has a TMK and sent nothing for longer than the threshold (or never sent
    anything).
    """
    if not 1 <= limit <= STATUS_PAGE_MAX:
        raise ValidationError(f"limit must be 1..{STATUS_PAGE_MAX}")
    require_read(who, Area.TERMINAL_STATUS, merchant_id)
    if merchant_id is None and not who.is_operator:
        merchant_id = who.merchant_id
        if merchant_id is None:
            raise NotFoundError("no merchant in scope")
    after = _parse_cursor(cursor)
    threshold = timedelta(seconds=silent_after if silent_after is not None
                          else silent_after_s(ctx))
    now = ctx.now()
    views: list[TerminalStatusView] = []
    next_cursor: str | None = None
    with ctx.db.unit_of_work() as uow:
        rows = uow.terminal_host.status_rows(merchant_id, after, limit)
    for row in rows:
        view = _view(row, now, threshold)
        if not silent_only or view.silent:
            views.append(view)
    if len(rows) == limit:
        next_cursor = f"{rows[-1].merchant_id}:{rows[-1].terminal_id}"
    return StatusPage(views, next_cursor)


def _parse_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    merchant_id, sep, terminal_id = cursor.partition(":")
    if not sep:
        raise ValidationError("cursor must be <merchant id>:<terminal id>")
    return merchant_id, terminal_id


def _view(row: StatusRow, now: datetime, threshold: timedelta) -> TerminalStatusView:
    key_status = row.key_status or "none"
    last = row.last_message_at
    silent = key_status == KeyStatus.ACTIVE and (last is None or now - last > threshold)
    return TerminalStatusView(
        merchant_id=row.merchant_id, terminal_id=row.terminal_id,
        terminal_status=row.terminal_status, key_status=key_status,
        key_generation=row.key_generation or 0,
        pending_key_generation=row.pending_generation, signed_on=row.signed_on,
        mac_algorithm=row.mac_algorithm or MacAlgorithm.CUP_ECB.value,
        last_sign_on_at=row.last_sign_on_at, last_message_at=last,
        open_batch_no=row.open_batch_no, software_version=row.software_version,
        silent=silent)
