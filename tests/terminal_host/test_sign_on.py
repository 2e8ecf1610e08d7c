"""Sign-on, working keys, sign-off, echo, MAC checks and terminal identity, over TCP."""

from __future__ import annotations

import pytest
from hosttools import (
    DEBIT,
    MID,
    OTHER_TID,
    PIN,
    TID,
    UNTOUCHED,
    client,
    money,
    provision,
    record_count,
)

from autosettle.domain.errors import ConflictError
from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.fields import parse_field60
from autosettle.services import terminal_keys
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.key_module import MacAlgorithm
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import TerminalHostHandle


def _stored_kcvs(ctx: ServiceContext) -> tuple[str | None, str | None, int]:
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
    assert keys is not None
    return keys.pik_kcv, keys.mak_kcv, keys.key_generation


def _pending_generation(ctx: ServiceContext) -> int | None:
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
    assert keys is not None
    return keys.pending_generation


def test_sign_on_delivers_keys_that_rotate_once_used(shop: ServiceContext,
                                                     sim: IssuerSimulator,
                                                     host: TerminalHostHandle,
                                                     profile: TerminalProfile) -> None:
    with client(profile, host.port) as pos:
        first = pos.sign_on()
        assert first.code == "00"
        assert first.fields["t"] == "0810"
        assert len(bytes.fromhex(first.fields["62"])) == 40  # 003: PIK + MAK, 16 + 4 each
        assert parse_field60(first.fields["60"]).batch_no == 1
        keys_1 = pos.keys
        assert keys_1 is not None
        pik_kcv, mak_kcv, generation = _stored_kcvs(shop)
        assert (pik_kcv, mak_kcv, generation) == (
            crypto.key_check_value(keys_1.pik).hex().upper(),
            crypto.key_check_value(keys_1.mak).hex().upper(), 1)
        assert _pending_generation(shop) is None  # the first keys are current at once
        pos.sign_on()
        keys_2 = pos.keys
        assert keys_2 is not None and keys_2.mak != keys_1.mak
        assert _stored_kcvs(shop)[2] == 1 and _pending_generation(shop) == 2
        pos.sign_on()  # not used yet: the same pending keys again
        assert pos.keys == keys_2 and _pending_generation(shop) == 2
        assert pos.sale(DEBIT, 300, PIN).code == "00"  # used: they become current
        assert _stored_kcvs(shop) == (crypto.key_check_value(keys_2.pik).hex().upper(),
                                      crypto.key_check_value(keys_2.mak).hex().upper(), 2)
        assert _pending_generation(shop) is None
        pos.sign_on()
        assert pos.keys is not None and pos.keys.mak not in (keys_1.mak, keys_2.mak)
        assert _pending_generation(shop) == 3
    assert money(shop, sim).unsettled == 300


def test_answer_echoes_tpdu_swapped(host: TerminalHostHandle, profile: TerminalProfile) -> None:
    with client(profile, host.port) as pos:
        wire = pos.send_raw(pos.encode(pos.prepare_sign_on()))
    assert wire is not None
    request_tpdu = profile.tpdu.to_bytes()
    assert wire[2:7] == request_tpdu[:1] + request_tpdu[3:5] + request_tpdu[1:3]


def test_keys_are_sealed_at_rest(shop: ServiceContext, terminal: TerminalClient) -> None:
    assert terminal.keys is not None
    with shop.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
    assert keys is not None and keys.mak_sealed is not None and keys.tmk_sealed is not None
    for clear in (terminal.keys.mak, terminal.keys.pik, terminal.profile.tmk):
        for blob in (keys.mak_sealed, keys.pik_sealed, keys.tmk_sealed):
            assert blob is not None and clear not in blob
    assert "b'" not in repr(keys)  # sealed blobs never show in a repr


@pytest.mark.parametrize(("mode", "size"), [("001", 24), ("004", 60)])
def test_single_length_and_track_key_layouts(sim: IssuerSimulator, host: TerminalHostHandle,
                                             shop: ServiceContext, mode: str,
                                             size: int) -> None:
    profile = provision(shop, mode=mode)
    with client(profile, host.port) as pos:
        answer = pos.sign_on()
        assert answer.code == "00"
        assert len(bytes.fromhex(answer.fields["62"])) == size
        assert pos.sale(DEBIT, 1_000, PIN).code == "00"
    assert money(shop, sim).unsettled == 1_000


def test_x919_terminal(sim: IssuerSimulator, host: TerminalHostHandle,
                       shop: ServiceContext) -> None:
    profile = provision(shop, mac=MacAlgorithm.X919)
    with client(profile, host.port) as pos:
        assert pos.sign_on().code == "00"
        answer = pos.sale(DEBIT, 2_500, PIN)
        assert answer.code == "00" and answer.mac_ok is True
        assert pos.sign_on("001").code == "12"  # X9.19 needs a double-length MAK


def test_not_signed_on_gets_a0(shop: ServiceContext, sim: IssuerSimulator,
                               host: TerminalHostHandle, profile: TerminalProfile) -> None:
    with client(profile, host.port) as pos:
        pos.keys = crypto.WorkingKeys(crypto.generate_key(), crypto.generate_key())
        answer = pos.sale(DEBIT, 100, PIN)
    assert answer.code == "A0" and "64" not in answer.fields
    assert record_count(shop) == 0 and money(shop, sim) == UNTOUCHED


def test_bad_mac_gets_a0_and_nothing_happens(shop: ServiceContext, sim: IssuerSimulator,
                                             terminal: TerminalClient) -> None:
    outgoing = terminal.prepare(MessageKind.SALE, pan=DEBIT, amount_minor=900, pin=PIN)
    wire = bytearray(terminal.encode(outgoing))
    wire[-1] ^= 0x01
    answer = terminal.send_raw(bytes(wire))
    assert answer is not None
    assert terminal.accept(outgoing, answer).code == "A0"
    assert record_count(shop) == 0 and money(shop, sim) == UNTOUCHED


def test_stale_keys_get_a0_once_the_new_keys_are_used(shop: ServiceContext,
                                                      sim: IssuerSimulator,
                                                      host: TerminalHostHandle,
                                                      terminal: TerminalClient) -> None:
    with client(terminal.profile, host.port) as twin:  # the same terminal signs on again
        twin.trace = 100  # its own trace numbers (one terminal, one counter)
        assert twin.sign_on().code == "00"
        assert terminal.sale(DEBIT, 100, PIN).code == "00"  # old keys: still current
        assert twin.sale(DEBIT, 200, PIN).code == "00"  # new keys used: now current
    stale = terminal.sale(DEBIT, 700, PIN)
    assert stale.code == "A0"
    assert record_count(shop) == 2
    assert terminal.sign_on().code == "00"
    assert terminal.sale(DEBIT, 700, PIN).code == "00"
    assert money(shop, sim).unsettled == 1_000


def test_sign_off_is_recorded_but_revokes_no_keys(shop: ServiceContext, sim: IssuerSimulator,
                                                  terminal: TerminalClient) -> None:
    """A sign-off carries no MAC (anyone can send one), so it only shows in the status;
    a message MAC'd under the terminal's keys is still served and shows it signed on."""
    assert terminal.echo().code == "00"
    keys = terminal.keys
    assert terminal.sign_off().code == "00"
    with shop.db.unit_of_work() as uow:
        state = uow.terminal_host.get_state(MID, TID)
    assert state is not None and not state.signed_on
    assert state.software_version == "311301"
    terminal.keys = keys
    answer = terminal.sale(DEBIT, 100, PIN)
    assert answer.code == "00" and answer.mac_ok is True
    with shop.db.unit_of_work() as uow:
        state = uow.terminal_host.get_state(MID, TID)
    assert state is not None and state.signed_on
    assert money(shop, sim).unsettled == 100


def test_unknown_terminal_and_wrong_merchant(shop: ServiceContext, host: TerminalHostHandle,
                                             profile: TerminalProfile) -> None:
    stranger = TerminalProfile(MID, "ZZ999999", profile.tmk)
    with client(stranger, host.port) as pos:
        assert pos.sign_on().code == "97"
        pos.keys = crypto.WorkingKeys(crypto.generate_key(), crypto.generate_key())
        assert pos.sale(DEBIT, 100, PIN).code == "97"
    borrowed = TerminalProfile(MID, OTHER_TID, profile.tmk)  # OTHER_TID is another shop's
    with client(borrowed, host.port) as pos:
        assert pos.sign_on().code == "03"
        assert pos.echo().code == "03"
    assert record_count(shop) == 0


def test_reset_tmk_locks_out_until_reprovisioned(shop: ServiceContext, sim: IssuerSimulator,
                                                 host: TerminalHostHandle,
                                                 terminal: TerminalClient) -> None:
    with pytest.raises(ConflictError, match="active TMK"):
        provision(shop)  # a second TMK needs an explicit reset first
    terminal_keys.reset_tmk(shop, SYSTEM, MID, TID)
    assert terminal.sale(DEBIT, 100, PIN).code == "A0"
    assert terminal.sign_on().code == "97"
    assert record_count(shop) == 0
    fresh = provision(shop)
    assert fresh.tmk != terminal.profile.tmk
    with client(fresh, host.port) as pos:
        assert pos.sign_on().code == "00"
        assert pos.sale(DEBIT, 100, PIN).code == "00"
    with shop.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
    assert keys is not None and keys.tmk_generation == 2 and keys.status == "active"
    assert money(shop, sim).unsettled == 100
