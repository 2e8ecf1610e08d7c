"""Merchants, their settlement accounts, terminals and balances."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from autosettle.api.deps import Ctx, Idem, Who
from autosettle.api.schemas import (
    MERCHANT_CURSOR_PATTERN,
    MERCHANT_ID_PATTERN,
    TERMINAL_CURSOR_PATTERN,
    TERMINAL_ID_PATTERN,
    BalancePublic,
    BalancesPublic,
    MerchantCreate,
    MerchantPage,
    MerchantPublic,
    MerchantStatusUpdate,
    SettlementAccountCreate,
    SettlementAccountPublic,
    TerminalCreate,
    TerminalPage,
    TerminalPublic,
    TerminalStatusUpdate,
)
from autosettle.domain.money import Money, currency
from autosettle.services import ledger, merchants
from autosettle.services.merchants import NewMerchant, NewSettlementAccount, NewTerminal

router = APIRouter(prefix="/v1", tags=["merchants"])
Limit = Annotated[int, Query(ge=1, le=merchants.PAGE_SIZE_MAX)]
# Ids and cursors are checked here, so no stray byte (NUL, a lone surrogate) reaches SQL.
Cursor = Annotated[str | None, Query(pattern=MERCHANT_CURSOR_PATTERN)]
TerminalCursor = Annotated[str | None, Query(pattern=TERMINAL_CURSOR_PATTERN)]
MidPath = Annotated[str, Path(pattern=MERCHANT_ID_PATTERN)]
TidPath = Annotated[str, Path(pattern=TERMINAL_ID_PATTERN)]
MidQuery = Annotated[str | None, Query(pattern=MERCHANT_ID_PATTERN)]


@router.post("/merchants", status_code=201, response_model=MerchantPublic)
def create_merchant(body: MerchantCreate, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Onboard a merchant (operator)."""
    return idem.run(lambda: MerchantPublic.of(merchants.create_merchant(
        ctx, who, NewMerchant(**body.model_dump()))), status_code=201)


@router.get("/merchants", response_model=MerchantPage)
def list_merchants(ctx: Ctx, who: Who, cursor: Cursor = None, limit: Limit = 50
                   ) -> MerchantPage:
    page = merchants.list_merchants(ctx, who, cursor, limit)
    return MerchantPage(items=[MerchantPublic.of(m) for m in page.items],
                        next_cursor=page.next_cursor)


@router.get("/merchants/{merchant_id}", response_model=MerchantPublic)
def get_merchant(merchant_id: MidPath, ctx: Ctx, who: Who) -> MerchantPublic:
    return MerchantPublic.of(merchants.get_merchant(ctx, who, merchant_id))


@router.patch("/merchants/{merchant_id}/status", response_model=MerchantPublic)
def set_merchant_status(merchant_id: MidPath, body: MerchantStatusUpdate, ctx: Ctx,
                        who: Who, idem: Idem) -> Response:
    return idem.run(lambda: MerchantPublic.of(
        merchants.set_merchant_status(ctx, who, merchant_id, body.status)))


@router.post("/merchants/{merchant_id}/settlement-accounts", status_code=201,
             response_model=SettlementAccountPublic)
def add_settlement_account(merchant_id: MidPath, body: SettlementAccountCreate,
                           ctx: Ctx, who: Who, idem: Idem) -> Response:
    return idem.run(lambda: SettlementAccountPublic.of(merchants.add_settlement_account(
        ctx, who, merchant_id, NewSettlementAccount(**body.model_dump()))), status_code=201)


@router.get("/merchants/{merchant_id}/settlement-accounts",
            response_model=list[SettlementAccountPublic])
def list_settlement_accounts(merchant_id: MidPath, ctx: Ctx,
                             who: Who) -> list[SettlementAccountPublic]:
    return [SettlementAccountPublic.of(a)
            for a in merchants.list_settlement_accounts(ctx, who, merchant_id)]


@router.post("/merchants/{merchant_id}/terminals", status_code=201,
             response_model=TerminalPublic)
def add_terminal(merchant_id: MidPath, body: TerminalCreate, ctx: Ctx, who: Who,
                 idem: Idem) -> Response:
    return idem.run(lambda: TerminalPublic.of(merchants.add_terminal(
        ctx, who, merchant_id, NewTerminal(terminal_id=body.terminal_id,
                                           serial_no=body.serial_no or "",
                                           model=body.model))), status_code=201)


@router.get("/merchants/{merchant_id}/terminals", response_model=TerminalPage)
def list_merchant_terminals(merchant_id: MidPath, ctx: Ctx, who: Who,
                            cursor: TerminalCursor = None,
                            limit: Limit = 50) -> TerminalPage:
    page = merchants.list_terminals(ctx, who, merchant_id, cursor, limit)
    return TerminalPage(items=[TerminalPublic.of(t) for t in page.items],
                        next_cursor=page.next_cursor)


@router.get("/terminals", response_model=TerminalPage, tags=["terminals"])
def list_terminals(ctx: Ctx, who: Who, cursor: TerminalCursor = None, limit: Limit = 50,
                   merchant_id: MidQuery = None) -> TerminalPage:
    page = merchants.list_terminals(ctx, who, merchant_id, cursor, limit)
    return TerminalPage(items=[TerminalPublic.of(t) for t in page.items],
                        next_cursor=page.next_cursor)


@router.get("/merchants/{merchant_id}/terminals/{terminal_id}", response_model=TerminalPublic)
def get_terminal(merchant_id: MidPath, terminal_id: TidPath, ctx: Ctx,
                 who: Who) -> TerminalPublic:
    return TerminalPublic.of(merchants.get_terminal(ctx, who, merchant_id, terminal_id))


@router.patch("/merchants/{merchant_id}/terminals/{terminal_id}/status",
              response_model=TerminalPublic)
def set_terminal_status(merchant_id: MidPath, terminal_id: TidPath,
                        body: TerminalStatusUpdate, ctx: Ctx, who: Who,
                        idem: Idem) -> Response:
    return idem.run(lambda: TerminalPublic.of(merchants.set_terminal_status(
        ctx, who, merchant_id, terminal_id, body.status)))


@router.get("/merchants/{merchant_id}/balances", response_model=BalancesPublic,
            tags=["ledger"])
def balances(merchant_id: MidPath, ctx: Ctx, who: Who) -> BalancesPublic:
    """Balances of the merchant's ledger accounts, derived from journal lines."""
    rows = ledger.merchant_balances(ctx, who, merchant_id)
    return BalancesPublic(merchant_id=merchant_id, balances=[
        BalancePublic(account=r.account, account_type=r.account_type, kind=r.kind,
                      currency=r.currency, balance_minor=r.balance_minor,
                      balance=Money(r.balance_minor, currency(r.currency)).format())
        for r in rows
    ])
