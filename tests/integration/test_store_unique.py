"""The store translates a unique-key clash into the domain's AlreadyExists once, so services
never catch a database exception; the clash writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from paytools import MID as PAY_MID
from paytools import sale, seed_shop

from autosettle.domain.errors import AlreadyExists, ErrorCode
from autosettle.domain.merchants import MerchantType
from autosettle.services import merchants
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

MID, TID = "898310054110001", "HL000001"


def _merchant(ctx: ServiceContext) -> None:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian", MerchantType.ENTERPRISE, "5411"))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))


def test_second_merchant_and_terminal_insert_is_already_exists(ctx: ServiceContext) -> None:
    _merchant(ctx)
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(MID)
        terminal = uow.terminals.get(MID, TID)
    assert merchant is not None and terminal is not None
    for add in (lambda uow: uow.merchants.add(merchant),
                lambda uow: uow.terminals.add(terminal)):
        with pytest.raises(AlreadyExists) as caught, ctx.db.unit_of_work() as uow:
            add(uow)
        assert caught.value.code is ErrorCode.ALREADY_EXISTS


def test_second_batch_and_transaction_on_a_trace_is_already_exists(
        ctx: ServiceContext) -> None:
    _merchant(ctx)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        uow.batches.add(MID, TID, "000001", now)
    with pytest.raises(AlreadyExists), ctx.db.unit_of_work() as uow:
        uow.batches.add(MID, TID, "000001", now)
    with ctx.db.unit_of_work() as uow:
        batch = uow.batches.get(MID, TID, "000001")
    assert batch is not None and batch.next_stan == 1


def test_second_transaction_on_a_trace_is_already_exists(ctx: ServiceContext,
                                                         sim: IssuerSimulator) -> None:
    seed_shop(ctx, sim)
    paid = sale(ctx, 1234, key="u-1")
    assert paid.approved and paid.record is not None
    twin = replace(paid.record, txn_id="twin", idempotency_key=None)
    with pytest.raises(AlreadyExists), ctx.db.unit_of_work() as uow:
        uow.transactions.add(twin)
    with ctx.db.unit_of_work() as uow:
        assert uow.transactions.get(PAY_MID, "twin") is None
        assert uow.transactions.count() == 1
