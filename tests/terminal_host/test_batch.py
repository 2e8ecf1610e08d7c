"""Batch close (0500) with the totals check, batch upload (0320) and what a closed batch
refuses, over TCP."""

from __future__ import annotations

import dataclasses

from hosttools import DEBIT, MID, PIN, SECOND, TEST_LIMITS, TID, client, money, record_count

from autosettle.domain.iso8583.fields import parse_settlement_totals
from autosettle.services import terminal_batches
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import LocalTxn, TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import start_terminal_host

K = MessageKind


def _approved(pos: TerminalClient, kind: MessageKind, **kwargs: object) -> LocalTxn:
    answer = pos.send(pos.prepare(kind, **kwargs))  # type: ignore[arg-type]
    assert answer.code == "00" and answer.txn is not None, answer.fields
    return answer.txn


def test_balanced_batch_closes_and_refuses_voids(shop: ServiceContext, sim: IssuerSimulator,
                                                 terminal: TerminalClient) -> None:
    a = _approved(terminal, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    b = _approved(terminal, K.SALE, pan=SECOND, amount_minor=2_000, pin=PIN)
    _approved(terminal, K.VOID, amount_minor=2_000, original=b)
    _approved(terminal, K.REFUND, amount_minor=300, original=a)
    hold = _approved(terminal, K.PREAUTH, pan=DEBIT, amount_minor=5_000, pin=PIN)
    _approved(terminal, K.COMPLETION, amount_minor=4_000, original=hold)
    _approved(terminal, K.BALANCE_INQUIRY, pan=DEBIT, pin=PIN)

    totals = terminal.totals().domestic
    assert (totals.debit_amount_minor, totals.debit_count) == (5_000, 2)
    assert (totals.credit_amount_minor, totals.credit_count) == (300, 1)
    answer = terminal.settle()
    assert answer.fields["t"] == "0510" and answer.code == "00" and answer.mac_ok is True
    assert answer.balanced is True
    assert terminal.batch_no == 2

    void = terminal.void(a)  # the batch is closed: refund instead
    assert void.code == "22"
    assert terminal.refund(a, 100).code == "00"
    terminal.batch_no = 1
    assert terminal.sale(DEBIT, 100, PIN).code == "22"  # the next batch is expected
    terminal.batch_no = 2
    assert terminal.sale(DEBIT, 100, PIN).code == "00"
    assert not terminal_batches.batch_flags(shop, SYSTEM, MID)


def test_settlement_is_idempotent(shop: ServiceContext, terminal: TerminalClient) -> None:
    _approved(terminal, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    outgoing = terminal.prepare_settlement()
    first = terminal.send(outgoing)
    again = terminal.send(outgoing)
    assert first.fields["48"] == again.fields["48"]
    assert first.balanced is True and again.balanced is True


def test_unbalanced_batch_upload_flags_and_posts_nothing(
        shop: ServiceContext, sim: IssuerSimulator, terminal: TerminalClient) -> None:
    a = _approved(terminal, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    b = _approved(terminal, K.SALE, pan=SECOND, amount_minor=2_000, pin=PIN)
    c = _approved(terminal, K.SALE, pan=DEBIT, amount_minor=3_000, pin=PIN)
    # The terminal's journal disagrees with ours three ways:
    terminal.journal.remove(b)  # we have b, the terminal lost it
    c.amount_minor = 3_001  # the terminal has another amount for c
    ghost = LocalTxn(K.SALE, terminal.batch_no, 999, 7_777, SECOND)  # only the terminal
    terminal.journal.append(ghost)
    before, records = money(shop, sim), record_count(shop)

    answer = terminal.settle()
    assert answer.code == "00" and answer.balanced is False
    assert parse_settlement_totals(answer.fields["48"]).domestic.code.value == "2"
    assert terminal.batch_no == 1  # waits for the upload
    uploads = terminal.upload()
    assert [u.fields["t"] for u in uploads] == ["0330", "0330"]
    assert all(u.code == "00" for u in uploads)
    assert terminal.batch_no == 2

    flags = terminal_batches.batch_flags(shop, SYSTEM, MID)
    found = {(f.kind, f.stan) for f in flags}
    assert found == {("host_only", f"{b.trace:06d}"), ("mismatch", f"{c.trace:06d}"),
                     ("terminal_only", "000999")}
    ghost_flag = next(f for f in flags if f.kind == "terminal_only")
    assert ghost_flag.terminal_amount_minor == 7_777 and ghost_flag.txn_id is None
    assert ghost_flag.pan_masked is not None and "*" in ghost_flag.pan_masked
    assert money(shop, sim) == before and record_count(shop) == records  # nothing posted
    with shop.db.unit_of_work() as uow:
        alerts = uow.alerts.open_alerts(MID)
        settled = uow.terminal_host.get_settlement(MID, TID, "000001")
    assert any(a.kind == "terminal_batch_unbalanced" for a in alerts)
    assert settled is not None and settled.upload_state == "done"
    assert settled.uploaded_count == 3
    assert terminal.void(a).code == "22"  # closed whatever the verdict


def test_upload_without_settlement_and_settling_another_batch(
        shop: ServiceContext, terminal: TerminalClient) -> None:
    _approved(terminal, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    assert [a.code for a in terminal.upload()] == ["12", "12"]
    terminal.batch_no = 5  # the host's open batch is 1
    assert terminal.settle().code == "22"


def test_batch_messages_without_a_mac_close_nothing(shop: ServiceContext,
                                                    terminal: TerminalClient) -> None:
    """A stranger who knows the terminal id cannot close its batch: 0500 and 0320 need a MAC."""
    _approved(terminal, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    unsigned = dataclasses.replace(terminal.prepare_settlement(), mac=False)
    answer = terminal.send(unsigned)
    assert answer.code == "A0" and "64" not in answer.fields
    assert terminal.batch_no == 1
    for message in terminal.prepare_uploads():
        assert terminal.send(dataclasses.replace(message, mac=False)).code == "A0"
    assert terminal.batch_no == 1
    assert terminal.settle().code == "00" and terminal.batch_no == 2  # the real one closes it


def test_old_terminals_may_settle_unmacd_when_the_setting_allows(
        shop: ServiceContext, profile: TerminalProfile) -> None:
    lenient = dataclasses.replace(shop, settings=shop.settings.model_copy(
        update={"terminal_host_batch_mac_required": False}))
    handle = start_terminal_host(lenient, "127.0.0.1", 0, limits=TEST_LIMITS)
    try:
        with client(profile, handle.port) as pos:
            assert pos.sign_on().code == "00"
            _approved(pos, K.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
            answer = pos.send(dataclasses.replace(pos.prepare_settlement(), mac=False))
            assert answer.code == "00" and answer.balanced is True and answer.mac_ok is None
            assert pos.sale(DEBIT, 100, PIN).code == "22"  # batch 1 is closed
            pos.batch_no = 2
            assert pos.sale(DEBIT, 100, PIN).code == "00"
    finally:
        handle.stop()
