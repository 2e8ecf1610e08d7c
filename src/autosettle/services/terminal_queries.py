"""Small operator reads about merchants' set-up and terminals, for tools that drive the
product from outside (the terminal simulator, the demo fleet, the demo seed).

Each function is one read in one unit of work and answers with plain values or frozen
dataclasses, never a store row; every one requires the operator role.
"""

from __future__ import annotations

from dataclasses import dataclass

from autosettle.services.context import Principal, ServiceContext


@dataclass(frozen=True, slots=True)
class MerchantSetup:
    """Whether a merchant exists and has a settlement account."""

    exists: bool
    has_account: bool


@dataclass(frozen=True, slots=True)
class TerminalKeyState:
    """The public facts of a terminal's master key (check value, generation, status)."""

    status: str
    tmk_kcv: str | None
    tmk_generation: int


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One transaction of a terminal batch as a terminal's journal would hold it."""

    txn_type: str
    status: str
    amount_minor: int
    stan: str
    pan_masked: str | None


def merchant_setup(ctx: ServiceContext, who: Principal, merchant_id: str) -> MerchantSetup:
    """Whether ``merchant_id`` exists and has at least one settlement account."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        exists = uow.merchants.get(merchant_id) is not None
        has_account = exists and bool(uow.settlement_accounts.list_for(merchant_id))
    return MerchantSetup(exists, has_account)


def terminal_exists(ctx: ServiceContext, who: Principal, merchant_id: str,
                    terminal_id: str) -> bool:
    """Whether the terminal is registered for the merchant."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return uow.terminals.get(merchant_id, terminal_id) is not None


def terminal_key_state(ctx: ServiceContext, who: Principal, merchant_id: str,
                       terminal_id: str) -> TerminalKeyState | None:
    """The terminal's TMK facts, or None when it has no keys."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id)
    if keys is None:
        return None
    return TerminalKeyState(str(keys.status), keys.tmk_kcv, keys.tmk_generation)


def batch_entries(ctx: ServiceContext, who: Principal, merchant_id: str, terminal_id: str,
                  batch_no: str, limit: int) -> list[BatchEntry]:
    """The transactions of one terminal batch, by trace number (at most ``limit``)."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        lines = uow.terminal_host.batch_lines(merchant_id, terminal_id, batch_no, limit)
    return [BatchEntry(line.txn_type, line.status, line.amount_minor, line.stan,
                       line.pan_masked) for line in lines]


def host_batch_totals(ctx: ServiceContext, who: Principal, merchant_id: str,
                      terminal_id: str, batch_no: str) -> str | None:
    """The host's field 48 totals of a closed batch, or None when it was not closed."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        record = uow.terminal_host.get_settlement(merchant_id, terminal_id, batch_no)
    return None if record is None else record.host_totals
