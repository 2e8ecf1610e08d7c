"""Follow-ups and reversals of odd records (issue 9, defect 3).

An odd record is one a refusal left behind: a follow-up naming an original that does not
exist (kept without one), a follow-up naming an original of the wrong type (a cancellation
of a sale, a completion of a sale, ...), a declined sale, pre-authorization or inquiry, a
reversal's tombstone, a reversed sale, and the declined follow-ups of all of these. Every
follow-up of every kind is tried against every one of them: no exception escapes, each
answer is the documented code, and no money moves on either side.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from paytools import (
    DEBIT,
    MID,
    TID,
    assert_ledger_balanced,
    card,
    on_original,
    preauth,
    sale,
    seed_shop,
    txn_id,
)

from autosettle.domain.transactions import TxnType
from autosettle.services import payments, reversals
from autosettle.services.context import ServiceContext
from autosettle.services.payments import OriginalRef, PaymentRequest, PaymentResult
from autosettle.simulators.issuer import IssuerSimulator

FOLLOW_UPS = (TxnType.VOID, TxnType.REFUND, TxnType.PREAUTH_VOID, TxnType.COMPLETION,
              TxnType.COMPLETION_VOID)
NEEDS_AMOUNT = frozenset({TxnType.REFUND, TxnType.COMPLETION})
REFUSED = frozenset({"12", "25"})  # invalid transaction / original not found
ACCOUNTS = ("merchant_unsettled:" + MID, "channel_receivable", "card_holds", "holds_contra")


@dataclass(frozen=True)
class Where:
    """Every balance a payment can move: our ledger's accounts and the card at the issuer."""

    ledger: tuple[int, ...]
    card_balance: int
    card_held: int


def _where(ctx: ServiceContext, sim: IssuerSimulator) -> Where:
    assert_ledger_balanced(ctx)
    with ctx.db.unit_of_work() as uow:
        ledger = tuple(uow.ledger.balance(account, "CNY") for account in ACCOUNTS)
    held = sim.card(DEBIT)
    return Where(ledger, held.balance_minor, held.held_minor)


def _follow_up(ctx: ServiceContext, kind: TxnType, original: str) -> PaymentResult:
    return on_original(ctx, kind, original, 100 if kind in NEEDS_AMOUNT else None)


def _odd_records(ctx: ServiceContext) -> dict[str, str]:
    """Odd records by name, next to an approved sale and pre-authorization they name."""
    sold, held = txn_id(sale(ctx, 1_000)), txn_id(preauth(ctx, 2_000))
    odd: dict[str, str] = {}
    for kind in FOLLOW_UPS:  # originals nobody knows: kept without one
        odd[f"{kind} of nothing"] = _declined(_follow_up(ctx, kind, "doesnotexist"))
    wrong = {TxnType.PREAUTH_VOID: sold, TxnType.COMPLETION: sold,
             TxnType.COMPLETION_VOID: sold, TxnType.VOID: held, TxnType.REFUND: held}
    for kind, original in wrong.items():  # originals of the wrong type
        odd[f"{kind} of a {'sale' if original == sold else 'preauth'}"] = _declined(
            _follow_up(ctx, kind, original))
    odd["declined sale"] = _declined(sale(ctx, 300, pin="000000"))
    odd["declined preauth"] = _declined(preauth(ctx, 300, pin="000000"))
    odd["declined inquiry"] = _declined(payments.authorize(ctx, PaymentRequest(
        TxnType.BALANCE_INQUIRY, MID, TID, card=card(pin="000000"))))
    reversed_sale = txn_id(sale(ctx, 400))
    assert reversals.reverse(ctx, MID, TID, OriginalRef(txn_id=reversed_sale)).approved
    odd["reversed sale"] = reversed_sale
    tombstone = reversals.reverse(ctx, MID, TID, OriginalRef(stan="000099"))
    assert tombstone.approved and tombstone.record is None
    with ctx.db.unit_of_work() as uow:
        batch = uow.batches.open_batch(MID, TID)
        assert batch is not None
        found = uow.transactions.find_by_trace(MID, TID, batch.batch_no, "000099")
    assert found is not None
    odd["tombstone"] = found.txn_id
    return odd


def _declined(result: PaymentResult) -> str:
    assert not result.approved, result
    return txn_id(result)


def _reverse_answer(ctx: ServiceContext, original: str) -> str:
    result = reversals.reverse(ctx, MID, TID, OriginalRef(txn_id=original))
    assert result.record is None or result.record.txn_id == original
    return result.response_code.value


def test_every_follow_up_of_every_odd_record_is_answered_and_moves_nothing(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    seed_shop(ctx, sim)
    odd = _odd_records(ctx)
    before = _where(ctx, sim)
    second_round: dict[str, str] = {}
    for name, original in odd.items():
        for kind in FOLLOW_UPS:
            result = _follow_up(ctx, kind, original)
            assert result.response_code.value in REFUSED, (name, kind, result)
            assert result.record is not None and result.record.status == "declined"
            second_round[f"{kind} of {name}"] = result.record.txn_id
        inquiry = name == "declined inquiry"
        assert _reverse_answer(ctx, original) == ("12" if inquiry else "00"), name
        assert _where(ctx, sim) == before, name
    for name, original in second_round.items():  # the refusals of refusals
        for kind in FOLLOW_UPS:
            assert _follow_up(ctx, kind, original).response_code.value in REFUSED, name
        assert _reverse_answer(ctx, original) == "00", name
    assert _where(ctx, sim) == before
    assert sim.card(DEBIT).balance_minor == 100_000 - 1_000
    assert sim.card(DEBIT).held_minor == 2_000


@pytest.mark.parametrize("kind", FOLLOW_UPS)
def test_a_follow_up_of_an_unknown_original_then_everything_on_it(
        ctx: ServiceContext, sim: IssuerSimulator, kind: TxnType) -> None:
    """The issue's repro: record X answered 25 with no original, then every operation on
    X; each answered (12 or 25; a reversal 00) instead of an internal error."""
    seed_shop(ctx, sim)
    first = _follow_up(ctx, kind, "doesnotexist")
    assert first.response_code.value == "25"
    x = txn_id(first)
    assert first.record is not None and first.record.original_txn_id is None
    for follow in FOLLOW_UPS:
        assert _follow_up(ctx, follow, x).response_code.value in REFUSED, follow
    assert _reverse_answer(ctx, x) == "00"
    assert _reverse_answer(ctx, x) == "00"  # and again
    assert _where(ctx, sim) == Where((0, 0, 0, 0), 100_000, 0)


def test_reversals_of_refused_follow_ups_of_a_sale(ctx: ServiceContext,
                                                   sim: IssuerSimulator) -> None:
    """Sale S; a cancellation of S (12, record Y) and a completion of S (12, record Z);
    reversing Y or Z answers 00 and leaves S exactly as it was."""
    seed_shop(ctx, sim)
    s = txn_id(sale(ctx, 1_000))
    y = on_original(ctx, TxnType.PREAUTH_VOID, s)
    z = on_original(ctx, TxnType.COMPLETION, s, 1_000)
    assert (y.response_code.value, z.response_code.value) == ("12", "12")
    for record in (txn_id(y), txn_id(z)):
        result = reversals.reverse(ctx, MID, TID, OriginalRef(txn_id=record))
        assert result.response_code.value == "00", result
        assert "nothing to reverse" in result.message
    assert _where(ctx, sim) == Where((-1_000, 1_000, 0, 0), 100_000 - 1_000, 0)
    void = on_original(ctx, TxnType.VOID, s)  # S itself is untouched and still voidable
    assert void.approved, void
    assert _where(ctx, sim) == Where((0, 0, 0, 0), 100_000, 0)

