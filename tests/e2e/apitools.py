"""Helpers shared by the end-to-end tests: merchants, keys, and a census of every table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from autosettle.domain.merchants import AccountType, MerchantType
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.merchants import NewMerchant, NewSettlementAccount, NewTerminal
from autosettle.store.tables import metadata

MID_A = "898310054110001"
MID_B = "898310058120001"
TID_A1 = "HL000001"
TID_A2 = "HL000002"
TID_B1 = "LW000001"
LEGAL_A = "华联超市有限公司 Hualian Supermarket Co., Ltd."
LEGAL_B = "王建国 Wang Jianguo"
ACCOUNT_A = "6212260200001234567"
ACCOUNT_B = "6217000010002345678"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def row_counts(ctx: ServiceContext) -> dict[str, int]:
    """How many rows every table holds (to prove a rejected request wrote nothing)."""
    with ctx.db.unit_of_work() as uow:
        return {table.name: int(uow.connection.execute(
            select(func.count()).select_from(table)).scalar() or 0)
            for table in metadata.sorted_tables}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with exactly the error shape and ``code``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    return error


def add_merchant(ctx: ServiceContext, merchant_id: str, legal_name: str = LEGAL_A,
                 merchant_type: MerchantType = MerchantType.ENTERPRISE,
                 mcc: str = "5411") -> None:
    merchants.create_merchant(ctx, SYSTEM, NewMerchant(merchant_id, legal_name,
                                                       merchant_type, mcc))


@dataclass(frozen=True)
class World:
    """Two merchants with terminals and accounts, and a key for every kind of caller."""

    operator: dict[str, str]
    merchant_a: dict[str, str]
    merchant_b: dict[str, str]
    terminal_a1: dict[str, str]


def build_world(ctx: ServiceContext) -> World:
    add_merchant(ctx, MID_A, LEGAL_A, MerchantType.ENTERPRISE, "5411")
    add_merchant(ctx, MID_B, LEGAL_B, MerchantType.INDIVIDUAL, "5812")
    merchants.add_settlement_account(ctx, SYSTEM, MID_A, NewSettlementAccount(
        "ICBC", ACCOUNT_A, LEGAL_A, AccountType.CORPORATE, "102"))
    merchants.add_settlement_account(ctx, SYSTEM, MID_B, NewSettlementAccount(
        "CCB", ACCOUNT_B, LEGAL_B, AccountType.PERSONAL, "105"))
    for mid, tid in ((MID_A, TID_A1), (MID_A, TID_A2), (MID_B, TID_B1)):
        merchants.add_terminal(ctx, SYSTEM, mid, NewTerminal(tid, f"SN-{tid}"))

    def key(role: Role, mid: str | None = None, tid: str | None = None) -> dict[str, str]:
        return bearer(apikeys.create_api_key(ctx, SYSTEM, role, f"{role}", mid, tid).key)

    return World(operator=key(Role.OPERATOR), merchant_a=key(Role.MERCHANT, MID_A),
                 merchant_b=key(Role.MERCHANT, MID_B),
                 terminal_a1=key(Role.TERMINAL, MID_A, TID_A1))
