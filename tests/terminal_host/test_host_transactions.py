"""Every transaction type and the reversal of each reversible one, over TCP: the answer on
the wire, and the money at the issuer simulator and in our ledger."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hosttools import DEBIT, OPENING_MINOR, PIN, UNTOUCHED, Money, money, record_count

from autosettle.domain.iso8583.fields import parse_balance_amount
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import Answer, LocalTxn, Outgoing, TerminalClient
from autosettle.terminal_host.messages import MessageKind

K = MessageKind


def _ok(answer: Answer) -> LocalTxn:
    assert answer.code == "00", answer.fields
    assert answer.mac_ok is True
    assert answer.txn is not None
    return answer.txn


def test_sale_answer_fields(shop: ServiceContext, sim: IssuerSimulator,
                            terminal: TerminalClient) -> None:
    answer = terminal.sale(DEBIT, 12_345, PIN)
    _ok(answer)
    fields = answer.fields
    assert fields["t"] == "0210"
    assert fields["3"] == "000000" and fields["4"] == "000000012345"
    assert len(fields["37"]) == 12 and len(fields["38"]) == 6
    assert fields["15"] == "0918"  # business date 2026-09-18 (clock: 10:00 Shanghai)
    assert fields["41"] == terminal.profile.terminal_id
    assert "2" not in fields and "52" not in fields  # no card data comes back
    assert money(shop, sim) == Money(OPENING_MINOR - 12_345, 0, 12_345, 0)
    assert terminal.pending_reversal is None


def test_void_and_refund(shop: ServiceContext, sim: IssuerSimulator,
                         terminal: TerminalClient) -> None:
    sale = _ok(terminal.sale(DEBIT, 1_000, PIN))
    _ok(terminal.void(sale))
    assert money(shop, sim) == UNTOUCHED
    assert terminal.void(sale).code == "12"  # already voided
    other = _ok(terminal.sale(DEBIT, 2_000, PIN))
    refund = terminal.refund(other, 1_500)
    assert refund.fields["t"] == "0230"
    _ok(refund)
    assert terminal.refund(other, 501).code == "61"  # more than what is left
    assert money(shop, sim) == Money(OPENING_MINOR - 500, 0, 500, 0)


def test_preauth_void_completion_and_completion_void(shop: ServiceContext,
                                                     sim: IssuerSimulator,
                                                     terminal: TerminalClient) -> None:
    pre = terminal.preauth(DEBIT, 10_000, PIN)
    assert pre.fields["t"] == "0110" and pre.fields["25"] == "06"
    hold = _ok(pre)
    assert money(shop, sim) == Money(OPENING_MINOR, 10_000, 0, 10_000)
    _ok(terminal.preauth_void(hold))
    assert money(shop, sim) == UNTOUCHED
    second = _ok(terminal.preauth(DEBIT, 10_000, PIN))
    completion = _ok(terminal.completion(second, 11_000))
    assert money(shop, sim) == Money(OPENING_MINOR - 11_000, 0, 11_000, 0)
    _ok(terminal.completion_void(completion))
    assert money(shop, sim) == Money(OPENING_MINOR, 10_000, 0, 10_000)


def test_balance_inquiry_answers_field_54(shop: ServiceContext, sim: IssuerSimulator,
                                          terminal: TerminalClient) -> None:
    _ok(terminal.preauth(DEBIT, 3_000, PIN))
    answer = terminal.balance(DEBIT, PIN)
    assert answer.code == "00" and answer.mac_ok is True
    balance = parse_balance_amount(answer.fields["54"])
    assert balance.currency_numeric == "156" and not balance.negative
    assert answer.balance_minor == OPENING_MINOR - 3_000
    assert terminal.pending_reversal is None  # a balance inquiry is not reversible


Flow = Callable[[TerminalClient], Outgoing]


def _sale(pos: TerminalClient) -> Outgoing:
    return pos.prepare(K.SALE, pan=DEBIT, amount_minor=4_000, pin=PIN)


def _void(pos: TerminalClient) -> Outgoing:
    sale = _ok(pos.sale(DEBIT, 4_000, PIN))
    return pos.prepare(K.VOID, amount_minor=4_000, original=sale)


def _refund(pos: TerminalClient) -> Outgoing:
    sale = _ok(pos.sale(DEBIT, 4_000, PIN))
    return pos.prepare(K.REFUND, amount_minor=1_000, original=sale)


def _preauth(pos: TerminalClient) -> Outgoing:
    return pos.prepare(K.PREAUTH, pan=DEBIT, amount_minor=4_000, pin=PIN)


def _preauth_void(pos: TerminalClient) -> Outgoing:
    hold = _ok(pos.preauth(DEBIT, 4_000, PIN))
    return pos.prepare(K.PREAUTH_VOID, amount_minor=4_000, original=hold)


def _completion(pos: TerminalClient) -> Outgoing:
    hold = _ok(pos.preauth(DEBIT, 4_000, PIN))
    return pos.prepare(K.COMPLETION, amount_minor=4_000, original=hold)


def _completion_void(pos: TerminalClient) -> Outgoing:
    hold = _ok(pos.preauth(DEBIT, 4_000, PIN))
    completion = _ok(pos.completion(hold, 4_000))
    return pos.prepare(K.COMPLETION_VOID, amount_minor=4_000, original=completion)


@pytest.mark.parametrize(("flow", "after_reversal"), [
    (_sale, UNTOUCHED),
    (_void, Money(OPENING_MINOR - 4_000, 0, 4_000, 0)),  # the sale stands again
    (_refund, Money(OPENING_MINOR - 4_000, 0, 4_000, 0)),
    (_preauth, UNTOUCHED),
    (_preauth_void, Money(OPENING_MINOR, 4_000, 0, 4_000)),  # the hold is back
    (_completion, Money(OPENING_MINOR, 4_000, 0, 4_000)),
    (_completion_void, Money(OPENING_MINOR - 4_000, 0, 4_000, 0)),
], ids=["sale", "void", "refund", "preauth", "preauth_void", "completion",
        "completion_void"])
def test_reversal_of_each_reversible(shop: ServiceContext, sim: IssuerSimulator,
                                     terminal: TerminalClient, flow: Flow,
                                     after_reversal: Money) -> None:
    outgoing = flow(terminal)
    _ok(terminal.send(outgoing))
    reversal = terminal.prepare_reversal(outgoing, reason="06")
    answer = terminal.send(reversal)
    assert answer.fields["t"] == ("0430" if outgoing.kind is K.REFUND else "0410")
    assert answer.code == "00" and answer.mac_ok is True
    assert money(shop, sim) == after_reversal
    again = terminal.send(terminal.prepare_reversal(outgoing, reason="06"))
    assert again.code == "00"  # idempotent
    assert money(shop, sim) == after_reversal


def test_reversal_naming_the_original_in_field_61(shop: ServiceContext, sim: IssuerSimulator,
                                                  terminal: TerminalClient) -> None:
    """Some terminals copy the void's field 61 (the sale) into its reversal; the host then
    finds the void by 60.2 + field 11 and reverses the void, never the sale."""
    void = _void(terminal)
    _ok(terminal.send(void))
    reversal = terminal.prepare_reversal(void)
    reversal.fields["61"] = void.fields["61"]
    assert terminal.send(reversal).code == "00"
    assert money(shop, sim) == Money(OPENING_MINOR - 4_000, 0, 4_000, 0)


def test_reversal_of_unknown_message_is_acknowledged(shop: ServiceContext,
                                                     terminal: TerminalClient) -> None:
    outgoing = _sale(terminal)  # never sent
    answer = terminal.send(terminal.prepare_reversal(outgoing))
    assert answer.code == "00"
    assert record_count(shop) == 1  # a tombstone on the trace: status reversed, amount 0
    late = terminal.send(outgoing)  # the original overtaken by its reversal arrives late
    assert late.code == "94"  # refused: it can never move the money already reversed
    assert record_count(shop) == 1


def test_wrong_pin_three_times(shop: ServiceContext, sim: IssuerSimulator,
                               terminal: TerminalClient) -> None:
    codes = [terminal.sale(DEBIT, 100, "654321").code for _ in range(3)]
    assert codes == ["55", "55", "75"]
    assert terminal.sale(DEBIT, 100, PIN).code == "75"  # locked at the issuer
    assert money(shop, sim) == UNTOUCHED


def test_bad_pin_block_gets_99(shop: ServiceContext, sim: IssuerSimulator,
                               terminal: TerminalClient) -> None:
    outgoing = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=100, pin=PIN)
    outgoing.fields["52"] = "0123456789ABCDEF"
    answer = terminal.send(outgoing)
    assert answer.code == "99" and answer.mac_ok is True
    assert record_count(shop) == 0 and money(shop, sim) == UNTOUCHED


def test_duplicate_trace_replays_the_first_answer(shop: ServiceContext, sim: IssuerSimulator,
                                                  terminal: TerminalClient) -> None:
    outgoing = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=2_222, pin=PIN)
    wire = terminal.encode(outgoing)
    first, second = terminal.send_raw(wire), terminal.send_raw(wire)
    assert first is not None and second is not None
    a, b = terminal.accept(outgoing, first), terminal.accept(outgoing, second)
    assert a.code == b.code == "00"
    assert (a.rrn, a.auth_code) == (b.rrn, b.auth_code)
    assert money(shop, sim).unsettled == 2_222 and record_count(shop) == 1
    clash = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=3_333, pin=PIN)
    clash.fields["11"] = outgoing.fields["11"]
    assert terminal.send(clash).code == "94"
    assert money(shop, sim).unsettled == 2_222


def test_wrong_batch_number_is_refused(shop: ServiceContext, sim: IssuerSimulator,
                                       terminal: TerminalClient) -> None:
    _ok(terminal.sale(DEBIT, 100, PIN))
    terminal.batch_no = 7
    assert terminal.sale(DEBIT, 100, PIN).code == "22"
    assert money(shop, sim).unsettled == 100


def test_track2_card_data(shop: ServiceContext, sim: IssuerSimulator,
                          terminal: TerminalClient) -> None:
    outgoing = terminal.prepare(K.SALE, amount_minor=300, pin=PIN, pan=DEBIT,
                                track2=f"{DEBIT}=3012101")
    assert "2" not in outgoing.fields
    _ok(terminal.send(outgoing))
    assert money(shop, sim).unsettled == 300
