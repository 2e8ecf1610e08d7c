"""The issuer simulator's rows give away neither card numbers nor PINs (issue 9, defect 5).

Its card keys and PIN hashes used to be plain SHA-256 (``sha256("sim-card:" + PAN)`` and
``sha256(card_key + ":" + PIN)``): every card number and PIN of a copied ``issuer-sim.db``
was recovered in seconds. They are HMAC-SHA256 under a secret kept outside the database
now; a database made before (or under another secret) loses its unusable cards when
opened, and seeding makes them again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from datetime import date
from itertools import product
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, insert

from autosettle.channels.base import ChannelRequest
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode
from autosettle.simulators.demo_traffic import DEMO_CARDS, seed_cards
from autosettle.simulators.issuer import (
    IssuerSimulator,
    default_key_file,
    sim_auths,
    sim_cards,
    sim_metadata,
)

PAN = "6222020200112345679"
PIN = "4711"
DAY = date(2026, 9, 18)


def _url(directory: Path) -> str:
    return f"sqlite:///{directory / 'issuer-sim.db'}"


def _sale(sim: IssuerSimulator, reference: str, pin: str | None,
          pan: str = PAN) -> ResponseCode:
    answer = sim.authorize(ChannelRequest(reference, "sale", Money(1_000), "898310054110001",
                                          "HL000001", DAY, pan=pan, expiry="3012", pin=pin))
    return answer.response_code


def _rows(directory: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(directory / "issuer-sim.db") as conn:
        return list(conn.execute("SELECT card_key, pin_hash FROM sim_cards"))


def _pins() -> list[str]:
    return ["".join(digits) for length in (4, 5, 6)
            for digits in product("0123456789", repeat=length)]


def test_a_row_alone_gives_away_neither_the_card_nor_the_pin(tmp_path: Path) -> None:
    sim = IssuerSimulator(_url(tmp_path))
    sim.add_card(PAN, balance_minor=100_000, pin=PIN)
    [(card_key, pin_hash)] = _rows(tmp_path)
    assert pin_hash is not None
    # What an attacker computes from the PAN alone: the old unkeyed keys.
    assert card_key not in {hashlib.sha256(b"sim-card:" + PAN.encode()).hexdigest(),
                            hashlib.sha256(PAN.encode()).hexdigest()}
    # Every 4-6 digit PIN against the row, as the old scheme allowed: nothing matches.
    hits = [pin for pin in _pins()
            if hashlib.sha256(f"{card_key}:{pin}".encode()).hexdigest() == pin_hash
            or hashlib.sha256(f"{pin}".encode()).hexdigest() == pin_hash]
    assert hits == []
    raw = (tmp_path / "issuer-sim.db").read_bytes()
    secret = (tmp_path / "issuer-sim.key").read_bytes().strip()
    assert PAN.encode() not in raw and secret not in raw  # the key is not in the database
    assert stat.S_IMODE(os.stat(tmp_path / "issuer-sim.key").st_mode) == 0o600
    # With the key (another process, the same key file) the issuer still decides right.
    sim.close()
    again = IssuerSimulator(_url(tmp_path))
    assert _sale(again, "r-good", PIN) is ResponseCode.APPROVED
    assert _sale(again, "r-bad", "4712") is ResponseCode.INCORRECT_PIN
    assert again.card(PAN).balance_minor == 100_000 - 1_000
    assert again.card(PAN).pin_tries == 1
    again.close()


def test_without_the_key_file_the_cards_are_made_again(tmp_path: Path) -> None:
    sim = IssuerSimulator(_url(tmp_path))
    seed_cards(sim)
    sim.close()
    (tmp_path / "issuer-sim.key").unlink()              # lost: a new secret is made
    fresh = IssuerSimulator(_url(tmp_path))
    assert _rows(tmp_path) == []                        # unusable rows were deleted
    assert not fresh.has_card(PAN)
    seed_cards(fresh)
    assert _sale(fresh, "r-1", "123456") is ResponseCode.APPROVED
    fresh.close()


def test_an_explicit_secret_and_the_default_key_file(tmp_path: Path) -> None:
    assert default_key_file(_url(tmp_path)) == tmp_path / "issuer-sim.key"
    assert default_key_file("sqlite://") is None
    assert default_key_file("postgresql://u@127.0.0.1/x") is None
    with pytest.raises(ValueError, match="needs a secret"):
        IssuerSimulator._own_secret("postgresql://u@h/x", None)
    one = IssuerSimulator(_url(tmp_path), secret=b"k" * 32)
    one.add_card(PAN, balance_minor=5_000, pin=PIN)
    assert not (tmp_path / "issuer-sim.key").exists()   # a given secret needs no file
    other = IssuerSimulator(_url(tmp_path / "other"), secret=b"j" * 32)
    other.add_card(PAN, balance_minor=5_000, pin=PIN)
    assert _rows(tmp_path) != _rows(tmp_path / "other")  # the key decides every hash
    assert _sale(one, "r-1", PIN) is ResponseCode.APPROVED
    one.close()
    other.close()


def test_a_database_of_the_unkeyed_version_is_migrated(tmp_path: Path) -> None:
    """A version-1 file (no sim_meta, no sim_daily_counts; unkeyed hashes): its cards are
    deleted, the card keys of its authorizations cleared (no trace left in the file), and
    seeding makes the demo cards again."""
    old_key = hashlib.sha256(b"sim-card:" + PAN.encode()).hexdigest()
    old = MetaData()
    for table in (sim_cards, sim_auths):
        table.to_metadata(old)
    engine = create_engine(_url(tmp_path))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(old.tables["sim_cards"]).values(
            card_key=old_key, masked="622202*********5679", kind="debit", status="active",
            expiry="3012", pin_hash=hashlib.sha256(f"{old_key}:123456".encode()).hexdigest(),
            pin_tries=0, balance_minor=1, credit_limit_minor=0, held_minor=0,
            currency="CNY"))
        conn.execute(insert(old.tables["sim_auths"]).values(
            reference="old-1", card_key=old_key, txn_type="sale", amount_minor=1,
            response_code="00", auth_code="123456", balance_delta=-1, hold_delta=0,
            state="applied"))
    engine.dispose()
    assert "sim_meta" not in old.tables and "sim_meta" in sim_metadata.tables

    sim = IssuerSimulator(_url(tmp_path))
    with sqlite3.connect(tmp_path / "issuer-sim.db") as conn:
        assert list(conn.execute("SELECT card_key FROM sim_cards")) == []
        assert list(conn.execute("SELECT card_key, state FROM sim_auths")) == [
            (None, "applied")]
        assert dict(conn.execute("SELECT name, value FROM sim_meta"))["hash_version"] == "2"
    assert sim.reverse("old-1", "test")                 # an old authorization: still known
    assert sim.auth_state("old-1") == "reversed"
    seed_cards(sim)
    assert len(_rows(tmp_path)) == len(DEMO_CARDS)
    assert _sale(sim, "r-new", "123456") is ResponseCode.APPROVED
    for path in tmp_path.glob("issuer-sim.db*"):      # no trace left in free pages
        assert old_key.encode() not in path.read_bytes(), path
    sim.close()
