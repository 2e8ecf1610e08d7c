"""Terminal health for operators (all terminals) and merchants (their own): last sign-on,
last message, open batch, software version, and whether the terminal has gone silent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from autosettle.api.deps import Ctx, Who
from autosettle.api.schemas import MERCHANT_ID_PATTERN, TERMINAL_CURSOR_PATTERN
from autosettle.services import terminal_status as status_service
from autosettle.services.terminal_status import TerminalStatusView

router = APIRouter(prefix="/v1", tags=["terminals"])
Limit = Annotated[int, Query(ge=1, le=status_service.STATUS_PAGE_MAX)]
Cursor = Annotated[str | None, Query(pattern=TERMINAL_CURSOR_PATTERN)]
MidQuery = Annotated[str | None, Query(pattern=MERCHANT_ID_PATTERN)]
SilentAfter = Annotated[float | None, Query(gt=0, le=30 * 86_400,
                                            description="Silence threshold, seconds.")]


class TerminalStatusPublic(BaseModel):
    merchant_id: str
    terminal_id: str
    terminal_status: str
    key_status: str
    key_generation: int
    pending_key_generation: int | None = Field(
        default=None, description="Keys a sign-on issued, waiting for the terminal's "
        "first MAC under them (docs/terminal-integration.md#keys).")
    signed_on: bool
    mac_algorithm: str
    last_sign_on_at: datetime | None
    last_message_at: datetime | None
    open_batch_no: str | None
    software_version: str | None
    silent: bool

    @classmethod
    def of(cls, v: TerminalStatusView) -> TerminalStatusPublic:
        return cls(merchant_id=v.merchant_id, terminal_id=v.terminal_id,
                   terminal_status=v.terminal_status, key_status=v.key_status,
                   key_generation=v.key_generation,
                   pending_key_generation=v.pending_key_generation, signed_on=v.signed_on,
                   mac_algorithm=v.mac_algorithm, last_sign_on_at=v.last_sign_on_at,
                   last_message_at=v.last_message_at, open_batch_no=v.open_batch_no,
                   software_version=v.software_version, silent=v.silent)


class TerminalStatusPage(BaseModel):
    items: list[TerminalStatusPublic]
    next_cursor: str | None


@router.get("/terminal-status", response_model=TerminalStatusPage)
def terminal_status(ctx: Ctx, who: Who, merchant_id: MidQuery = None, cursor: Cursor = None,
                    limit: Limit = 200, silent_only: bool = False,
                    silent_after_s: SilentAfter = None) -> TerminalStatusPage:
    """Heartbeat view of the terminals (operator: all; merchant: its own)."""
    page = status_service.terminal_status(ctx, who, merchant_id, cursor=cursor, limit=limit,
                                         silent_after=silent_after_s, silent_only=silent_only)
    return TerminalStatusPage(items=[TerminalStatusPublic.of(v) for v in page.items],
                              next_cursor=page.next_cursor)
