"""A stranger's sign-on (or sign-off) cannot knock a terminal off (issue 9, defect 6).

The 0800 carries no MAC: anyone who read the merchant and terminal ids off a slip can send
one. Keys it issues while the terminal has working keys are pending: the current keys stay
valid until a message MAC'd under the pending MAK proves the sender decrypted field 62 with
the TMK. Everything over real sockets on 127.0.0.1.
"""

from __future__ import annotations

from hosttools import DEBIT, MID, PIN, TID, client, money, record_count

from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.frame import decode_frame
from autosettle.domain.iso8583.message import decode_message
from autosettle.domain.terminal_records import KeyRecord
from autosettle.services import terminal_keys
from autosettle.services import terminal_status as status_service
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import TerminalHostHandle


def _attacker(port: int, mode: str = "003", kind: MessageKind = MessageKind.SIGN_ON) -> str:
    """Send a sign-on (or sign-off) as a stranger who does not know the TMK; field 39."""
    stranger = TerminalProfile(MID, TID, crypto.generate_key())
    with client(stranger, port) as pos:
        pos.trace = 500
        outgoing = (pos.prepare_sign_on(mode) if kind is MessageKind.SIGN_ON
                    else pos.prepare_network(kind))
        wire = pos.send_raw(pos.encode(outgoing))
    assert wire is not None
    return decode_message(decode_frame(wire).payload).fields["39"]


def _keys(ctx: ServiceContext) -> KeyRecord:
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
    assert keys is not None
    return keys


def test_a_strangers_sign_on_does_not_knock_the_terminal_off(
        shop: ServiceContext, sim: IssuerSimulator, host: TerminalHostHandle,
        terminal: TerminalClient) -> None:
    assert _attacker(host.port) == "00"  # the host cannot tell: it answers with keys
    pending = _keys(shop).pending_generation
    assert pending == 2 and _keys(shop).key_generation == 1
    for _ in range(3):  # a flood of sign-ons delivers the same pending keys
        assert _attacker(host.port) == "00"
    assert _keys(shop).pending_generation == pending
    answer = terminal.sale(DEBIT, 1_200, PIN)  # MAC and PIN block under the current keys
    assert answer.code == "00" and answer.mac_ok is True
    assert _attacker(host.port, kind=MessageKind.SIGN_OFF) == "00"
    assert _attacker(host.port, mode="001") == "00"  # another key length: a new pending set
    assert _keys(shop).pending_generation == pending + 1
    answer = terminal.sale(DEBIT, 800, PIN)
    assert answer.code == "00" and answer.mac_ok is True
    assert _keys(shop).key_generation == 1  # the terminal never used the pending keys
    assert money(shop, sim).unsettled == 2_000
    assert money(shop, sim).card_balance == 100_000 - 2_000


def test_the_real_terminal_signs_on_again_after_a_stranger(
        shop: ServiceContext, sim: IssuerSimulator, host: TerminalHostHandle,
        terminal: TerminalClient) -> None:
    old = terminal.keys
    assert _attacker(host.port) == "00"
    assert terminal.sign_on().code == "00"  # it gets the pending keys the stranger could not
    assert _keys(shop).pending_generation == 2
    assert _attacker(host.port) == "00"  # in between: the same pending keys again
    answer = terminal.sale(DEBIT, 500, PIN)  # PIN under the new PIK, MAC under the new MAK
    assert answer.code == "00" and answer.mac_ok is True
    keys = _keys(shop)
    assert keys.key_generation == 2 and keys.pending_generation is None
    assert terminal.keys is not None
    assert keys.mak_kcv == crypto.key_check_value(terminal.keys.mak).hex().upper()
    assert terminal.balance(DEBIT, PIN).code == "00"  # the promoted keys keep working
    # The old keys are gone once the new ones are used.
    with client(terminal.profile, host.port) as old_copy:
        old_copy.keys, old_copy.trace = old, 300
        assert old_copy.sale(DEBIT, 100, PIN).code == "A0"
    assert money(shop, sim).unsettled == 500 and record_count(shop) == 2


def test_pending_keys_are_sealed_shown_and_reset(shop: ServiceContext,
                                                 host: TerminalHostHandle,
                                                 terminal: TerminalClient) -> None:
    with client(terminal.profile, host.port) as twin:
        twin.trace = 100
        assert twin.sign_on().code == "00"
        assert twin.keys is not None
        keys = _keys(shop)
        for clear in (twin.keys.mak, twin.keys.pik):
            for blob in (keys.pending_mak_sealed, keys.pending_pik_sealed):
                assert blob is not None and clear not in blob
        assert "b'" not in repr(keys)
    view = status_service.terminal_status(shop, SYSTEM, MID).items[0]
    assert (view.key_generation, view.pending_key_generation) == (1, 2)
    terminal_keys.reset_tmk(shop, SYSTEM, MID, TID)
    keys = _keys(shop)
    assert keys.pending_generation is None and keys.pending_mak_sealed is None
    assert keys.mak_sealed is None
