"""The key module: provisioning, sealing bound to terminal and generation, PIN handling."""

from __future__ import annotations

import pytest
from hosttools import MID, OTHER_MID, OTHER_TID, PIN, TID

from autosettle.domain.errors import AuthError, ValidationError
from autosettle.domain.iso8583 import crypto
from autosettle.services import terminal_keys
from autosettle.services.context import SYSTEM, Principal, Role, ServiceContext
from autosettle.services.key_module import KeyRole, PinRejected, SealedKey, SoftwareHsm, key_label

PAN = "6222020200112345679"


def test_provisioning_shows_components_once(shop: ServiceContext) -> None:
    transport = crypto.generate_key()
    made = terminal_keys.provision_terminal(shop, SYSTEM, MID, TID, components=3,
                                            transport_key=transport)
    tmk = made.tmk()
    assert crypto.key_check_value(tmk).hex().upper() == made.tmk_kcv
    assert len(made.components) == 3
    assert all(bytes.fromhex(c.value_hex) != tmk for c in made.components)
    assert made.tmk_under_transport_key_hex is not None
    assert crypto.decrypt_key_under(
        transport, bytes.fromhex(made.tmk_under_transport_key_hex)) == tmk
    assert made.tmk_kcv in repr(made) and made.components[0].value_hex not in repr(made)
    with shop.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(MID, TID)
        audit = uow.connection.exec_driver_sql(
            "SELECT action, detail FROM audit_log WHERE action = 'terminal.provision'"
        ).all()
    assert keys is not None and keys.tmk_kcv == made.tmk_kcv and keys.tmk_sealed
    assert tmk not in keys.tmk_sealed
    assert len(audit) == 1 and made.components[0].value_hex not in str(audit)


def test_only_operators_provision(shop: ServiceContext) -> None:
    with pytest.raises(AuthError):
        terminal_keys.provision_terminal(shop, Principal("m", Role.MERCHANT, MID), MID, TID)
    with pytest.raises(Exception, match="not found"):
        terminal_keys.provision_terminal(shop, SYSTEM, MID, OTHER_TID)


def test_sealed_keys_are_bound_to_terminal_and_generation(shop: ServiceContext) -> None:
    hsm = SoftwareHsm(shop.sealer)
    made = hsm.generate_tmk(key_label(KeyRole.TMK, MID, TID, 1), 2)
    labels = {role: key_label(role, MID, TID, 1) for role in KeyRole}
    issued = hsm.issue_working_keys(made.sealed, labels, True, True)
    assert len(issued.field62) == 60 and issued.tdk is not None
    for wrong in (key_label(KeyRole.TMK, OTHER_MID, OTHER_TID, 1),
                  key_label(KeyRole.TMK, MID, TID, 2), key_label(KeyRole.MAK, MID, TID, 1)):
        moved = SealedKey(made.sealed.blob, wrong, made.sealed.kcv)
        with pytest.raises(ValidationError, match="does not open"):
            hsm.issue_working_keys(moved, labels, True, False)


def test_pin_only_inside_the_key_module(shop: ServiceContext) -> None:
    hsm = SoftwareHsm(shop.sealer)
    made = hsm.generate_tmk(key_label(KeyRole.TMK, MID, TID, 1), 2)
    labels = {role: key_label(role, MID, TID, 1) for role in KeyRole}
    issued = hsm.issue_working_keys(made.sealed, labels, True, False)
    tmk = crypto.combine_components([bytes.fromhex(c.value_hex) for c in made.components])
    clear = crypto.parse_working_keys_field(tmk, issued.field62, True)
    block = crypto.encrypt_pin_block(clear.pik, crypto.pin_block_iso0(PIN, PAN))
    assert hsm.reveal_pin(issued.pik, block, PAN) == PIN
    with pytest.raises(PinRejected):
        hsm.reveal_pin(issued.pik, block, "6222020200112345687")  # another card's PAN
    with pytest.raises(PinRejected):
        hsm.reveal_pin(issued.pik, block[:4], PAN)
    session = terminal_keys.TerminalSession(MID, TID, terminal_keys.SessionStatus.READY,
                                            pik=issued.pik, mak=issued.mak)
    with pytest.raises(PinRejected, match="scheme"):
        terminal_keys.reveal_pin(shop, session, block, PAN, "2300000000000000", hsm)  # SM4
    assert terminal_keys.reveal_pin(shop, session, block, PAN, "2600000000000000", hsm) == PIN
    assert "pik" in repr(session) and issued.pik.blob.hex() not in repr(session)
