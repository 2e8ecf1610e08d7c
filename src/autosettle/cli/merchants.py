"""``autosettle merchants add|list|add-account``: onboarding merchants and their accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, fail, guarded
from autosettle.domain.errors import AutosettleError
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.services import merchants
from autosettle.services.context import SYSTEM

app = typer.Typer(help="Merchants.", no_args_is_help=True)


@app.command("add")
@guarded
def merchants_add(
    merchant_id: Annotated[str, typer.Option(help="15-character merchant id (field 42).")],
    legal_name: Annotated[str, typer.Option(help="Registered legal name.")],
    mcc: Annotated[str, typer.Option(help="4-digit merchant category code.")],
    merchant_type: Annotated[MerchantType, typer.Option("--type")] = MerchantType.ENTERPRISE,
    cycle: Annotated[CycleCode, typer.Option(help="Settlement cycle.")] = CycleCode.T1,
    short_name: Annotated[str | None, typer.Option()] = None,
    single_limit_minor: Annotated[int | None, typer.Option(help="Per-sale limit, fen.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Onboard a merchant."""
    try:
        merchant = merchants.create_merchant(context(), SYSTEM, merchants.NewMerchant(
            merchant_id, legal_name, merchant_type, mcc, short_name, cycle, single_limit_minor))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(merchant)
    else:
        console.print(f"merchant {merchant.merchant_id} created")


@app.command("list")
@guarded
def merchants_list(as_json: JsonFlag = False,
                   limit: Annotated[int, typer.Option(min=1, max=200)] = 200) -> None:
    """List merchants."""
    page = merchants.list_merchants(context(), SYSTEM, None, limit)
    if as_json:
        emit_json(list(page.items))
        return
    table = Table("merchant id", "name", "type", "mcc", "cycle", "status")
    for m in page.items:
        table.add_row(m.merchant_id, m.short_name, m.merchant_type, m.mcc, m.settlement_cycle,
                      m.status)
    console.print(table)


@app.command("add-account")
@guarded
def merchants_add_account(
    merchant_id: Annotated[str, typer.Option()],
    bank_name: Annotated[str, typer.Option()],
    account_number: Annotated[str, typer.Option()],
    holder_name: Annotated[str, typer.Option()],
    account_type: Annotated[AccountType, typer.Option()] = AccountType.CORPORATE,
    as_json: JsonFlag = False,
) -> None:
    """Register a merchant's settlement bank account."""
    try:
        account = merchants.add_settlement_account(context(), SYSTEM, merchant_id,
                                                   merchants.NewSettlementAccount(
                                                       bank_name, account_number, holder_name,
                                                       account_type))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(account)
    else:
        console.print(f"account {account.account_number_masked} added "
                      f"({'verified' if account.verified else 'NOT verified: holder mismatch'})")
