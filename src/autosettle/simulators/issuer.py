"""A built-in issuer simulator: card accounts, PIN tries, holds, and injectable faults.

It behaves like an issuer behind a channel: debit cards spend their balance, credit cards
their limit; pre-authorizations hold funds; three wrong PINs lock the card (75); lost (41),
stolen (43), restricted (62), not permitted (57), do not honour (05), expired (54),
insufficient funds (51) and a per-card daily count of purchases over its limit (65) are
answered as an issuer would. Faults can be injected: latency, an answer that comes too
late (the issuer acted, the caller timed out), 91/96 answers, refusals, and reversals that
are not acknowledged for a while.

The simulator keeps its own state in its own database (a SQLite file by default), so it
survives a restart of autosettle and tests can check both sides. Cards are keyed by an
HMAC-SHA256 of the PAN and PINs are stored as an HMAC-SHA256 of the card key and the PIN,
both under a secret that is not in the database (by default ``issuer-sim.key`` beside
``issuer-sim.db``, made once, mode 0600): not even the simulator keeps a PAN in clear, and
its rows alone give away neither card numbers nor PINs, however short the PIN. Every
operation is idempotent on the caller's reference; a reversal that arrives before the
authorization it reverses leaves a tombstone, so the late authorization is refused (68).

Its database carries a version and a check value of its secret (``sim_meta``). A database
made before the hashes were keyed (no version), or under another secret, has card rows
nobody can match any more: they are deleted when the simulator opens it (with a warning),
and the card keys of past authorizations are cleared; ``autosettle demo seed`` (or the
demo fleet, or the terminal simulator) makes the demo cards again.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url

from autosettle.channels.base import ChannelAnswer, ChannelRequest, ChannelUnavailable
from autosettle.domain.cards import Expiry
from autosettle.domain.money import CNY, Currency
from autosettle.domain.response_codes import ResponseCode
from autosettle.private_files import create_once
from autosettle.store.engine import make_engine, normalize_url

PIN_TRIES_MAX = 3
CLEARED_TYPES: Final = frozenset({"sale", "completion", "void", "completion_void", "refund"})
"""What the issuer puts on its clearing file (when approved and not reversed)."""
RC = ResponseCode
SECRET_BYTES: Final = 32
HASH_VERSION: Final = "2"
"""Version 1 (no ``sim_meta`` row): unkeyed SHA-256 card keys and PIN hashes."""

log = logging.getLogger("autosettle.issuer_sim")

sim_metadata = MetaData()
sim_cards = Table(
    "sim_cards", sim_metadata,
    Column("card_key", String(64), primary_key=True),
    Column("masked", String(19), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("expiry", String(4), nullable=False),
    Column("pin_hash", String(64), nullable=True),
    Column("pin_tries", Integer, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("credit_limit_minor", BigInteger, nullable=False),
    Column("held_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)
sim_auths = Table(
    "sim_auths", sim_metadata,
    Column("reference", String(64), primary_key=True),
    Column("card_key", String(64), nullable=True),
    Column("txn_type", String(20), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("response_code", String(2), nullable=True),
    Column("auth_code", String(6), nullable=True),
    Column("balance_delta", BigInteger, nullable=False),
    Column("hold_delta", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),
    Column("original_reference", String(64), nullable=True),
)
sim_daily_counts = Table(
    # A table of its own (not columns of sim_cards) so that simulator files made before it
    # existed gain it through create_all.
    "sim_daily_counts", sim_metadata,
    Column("card_key", String(64), primary_key=True),
    Column("count_max", Integer, nullable=False),
    Column("count_date", String(10), nullable=True),
    Column("count_used", Integer, nullable=False),
)
sim_meta = Table(
    # hash_version (HASH_VERSION) and key_check (which secret made the hashes).
    "sim_meta", sim_metadata,
    Column("name", String(30), primary_key=True),
    Column("value", String(64), nullable=False),
)
sim_clearing = Table(
    # What the issuer keeps of each approved authorization for its clearing file (a table of
    # its own, so older simulator files gain it through create_all).
    "sim_clearing", sim_metadata,
    Column("reference", String(64), primary_key=True),
    Column("merchant_id", String(15), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("business_date", String(10), nullable=False),
    Column("at", String(32), nullable=False),
    Column("card_key", String(64), nullable=True),
)
sim_faults = Table(
    "sim_faults", sim_metadata,
    Column("fault_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(30), nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("code", String(2), nullable=True),
)


class CardStatus(StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    STOLEN = "stolen"
    RESTRICTED = "restricted"
    NOT_PERMITTED = "not_permitted"
    DO_NOT_HONOUR = "do_not_honour"


class FaultKind(StrEnum):
    LATENCY = "latency"
    """Sleep ``latency_ms`` before processing normally."""
    LATE_ANSWER = "late_answer"
    """Process normally (money moves), then sleep ``latency_ms`` before answering."""
    ANSWER_CODE = "answer_code"
    """Answer ``code`` (e.g. 96, 91) without processing."""
    UNAVAILABLE = "unavailable"
    """Refuse the connection: nothing processed."""
    REVERSAL_UNAVAILABLE = "reversal_unavailable"
    """Do not acknowledge reversals."""


_AUTHORIZE_FAULTS = frozenset({FaultKind.LATENCY, FaultKind.LATE_ANSWER,
                               FaultKind.ANSWER_CODE, FaultKind.UNAVAILABLE})
_REVERSE_FAULTS = frozenset({FaultKind.REVERSAL_UNAVAILABLE})
_NEXT_FAULT = select(sim_faults).where(
    sim_faults.c.kind.in_(bindparam("kinds", expanding=True)), sim_faults.c.remaining > 0,
).order_by(sim_faults.c.fault_id).limit(1)
_AUTH_BY_REFERENCE = select(sim_auths).where(sim_auths.c.reference == bindparam("reference"))
_CARD_BY_KEY = select(sim_cards).where(sim_cards.c.card_key == bindparam("card_key"))
_DAILY_COUNT_BY_KEY = select(sim_daily_counts).where(
    sim_daily_counts.c.card_key == bindparam("card_key"))
_INSERT_AUTH = insert(sim_auths)
_SHIFT = update(sim_cards).where(sim_cards.c.card_key == bindparam("key")).values(
    balance_minor=sim_cards.c.balance_minor + bindparam("balance_delta"),
    held_minor=sim_cards.c.held_minor + bindparam("hold_delta"))
"""Statements of every authorization, built once (building them costs more than running
them on SQLite)."""

_STATUS_CODES = {
    CardStatus.LOST: RC.LOST_CARD,
    CardStatus.STOLEN: RC.STOLEN_CARD,
    CardStatus.RESTRICTED: RC.RESTRICTED_CARD,
    CardStatus.NOT_PERMITTED: RC.NOT_PERMITTED_TO_CARDHOLDER,
    CardStatus.DO_NOT_HONOUR: RC.DO_NOT_HONOUR,
}
_NEEDS_PIN = frozenset({"sale", "preauth", "balance_inquiry"})
_COUNTED = frozenset({"sale", "preauth"})
"""Purchases that count against a card's daily count limit (65) when approved."""


@dataclass(frozen=True, slots=True)
class CardState:
    status: str
    balance_minor: int
    credit_limit_minor: int
    held_minor: int
    pin_tries: int


def default_key_file(url: str) -> Path | None:
    """Where the simulator on ``url`` keeps its secret by default: beside its SQLite file
    (``issuer-sim.key`` for ``issuer-sim.db``); None for any other database."""
    parsed = make_url(normalize_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    path = Path(database)
    return path.with_name(path.stem + ".key")


def load_secret(key_file: Path) -> bytes:
    """The secret in ``key_file``, made (random, mode 0600) by the first caller."""
    text = create_once(key_file, secrets.token_hex(SECRET_BYTES).encode())
    try:
        secret = bytes.fromhex(text.decode("ascii").strip())
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise ValueError(f"{key_file} does not hold an issuer simulator secret (hex, "
                         ">= 16 bytes); delete it and the simulator database with it")
    return secret


def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.digest(secret, f"autosettle issuer-sim {purpose}".encode(), "sha256")


class IssuerSimulator:
    """The default channel for the demo and the tests."""

    name = "issuer-sim"

    def __init__(self, url: str, secret: bytes | None = None, *,
                 key_file: Path | None = None) -> None:
        """Open (creating) the simulator's database at ``url``.

        ``secret`` keys the card and PIN hashes. Without it, the secret is read from
        ``key_file`` (made once), by default the file beside a SQLite database (see
        :func:`default_key_file`); an in-memory database gets a random one. Any other
        database needs ``secret`` or ``key_file``.
        """
        self._engine = make_engine(url)
        secret = secret if secret is not None else self._own_secret(url, key_file)
        self._card_secret = _derive(secret, "card")
        self._pin_secret = _derive(secret, "pin")
        sim_metadata.create_all(self._engine)
        self._adopt(_derive(secret, "key check").hex()[:32])
        self._lock = threading.Lock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """When the issuer saw an authorization (tests set the platform's fake clock)."""

    @staticmethod
    def _own_secret(url: str, key_file: Path | None) -> bytes:
        key_file = key_file or default_key_file(url)
        if key_file is not None:
            return load_secret(key_file)
        if make_url(normalize_url(url)).get_backend_name() == "sqlite":
            return secrets.token_bytes(SECRET_BYTES)  # in memory: lives as long as we do
        raise ValueError("the issuer simulator needs a secret or a key file for a "
                         "database other than a SQLite file")

    def _adopt(self, key_check: str) -> None:
        """Delete the cards whose hashes no longer match: unkeyed (before version 2) or
        made under another secret; then record this version and secret."""
        with self._engine.begin() as conn:
            meta = {row.name: row.value for row in conn.execute(select(sim_meta))}
            if meta == {"hash_version": HASH_VERSION, "key_check": key_check}:
                return
            stale = conn.execute(select(func.count()).select_from(sim_cards)).scalar_one()
            if stale:
                log.warning("issuer simulator: %d card(s) hashed %s are deleted; seed the "
                            "demo again to recreate them", stale,
                            "under another secret" if meta else "without a key")
            conn.execute(sim_cards.delete())
            conn.execute(sim_daily_counts.delete())
            conn.execute(update(sim_auths).where(sim_auths.c.card_key.is_not(None))
                         .values(card_key=None))
            conn.execute(sim_meta.delete())
            conn.execute(insert(sim_meta), [{"name": "hash_version", "value": HASH_VERSION},
                                            {"name": "key_check", "value": key_check}])
        if stale and self._engine.dialect.name == "sqlite":
            self._compact()

    def _compact(self) -> None:
        """Rewrite the SQLite file so that the deleted hashes leave no trace in free pages
        or in the WAL."""
        raw = self._engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()

    def card_key(self, pan: str) -> str:
        """The card's key in the simulator's database: HMAC-SHA256 of the PAN."""
        return hmac.digest(self._card_secret, pan.encode(), "sha256").hex()

    def _pin_hash(self, key: str, pin: str) -> str:
        return hmac.digest(self._pin_secret, f"{key}:{pin}".encode(), "sha256").hex()

    def close(self) -> None:
        self._engine.dispose()

    # -- set-up and inspection (tests, demo) ------------------------------------------
    def add_card(self, pan: str, *, kind: str = "debit", balance_minor: int = 0,
                 credit_limit_minor: int = 0, pin: str | None = "123456",
                 expiry: str = "3012", status: CardStatus = CardStatus.ACTIVE,
                 cur: Currency = CNY, daily_count_max: int | None = None) -> None:
        """Create (or replace) a card account.

        ``daily_count_max`` limits the approved purchases (sales and pre-authorizations) per
        business date; the next one is declined 65 (exceeds frequency limit).
        """
        key = self.card_key(pan)
        with self._engine.begin() as conn:
            conn.execute(sim_cards.delete().where(sim_cards.c.card_key == key))
            conn.execute(sim_daily_counts.delete().where(sim_daily_counts.c.card_key == key))
            if daily_count_max is not None:
                conn.execute(insert(sim_daily_counts).values(
                    card_key=key, count_max=daily_count_max, count_date=None, count_used=0))
            conn.execute(insert(sim_cards).values(
                card_key=key, masked=pan[:6] + "*" * (len(pan) - 10) + pan[-4:], kind=kind,
                status=status.value, expiry=expiry,
                pin_hash=self._pin_hash(key, pin) if pin is not None else None, pin_tries=0,
                balance_minor=balance_minor, credit_limit_minor=credit_limit_minor,
                held_minor=0, currency=cur.code))

    def card(self, pan: str) -> CardState:
        with self._engine.connect() as conn:
            row = conn.execute(select(sim_cards).where(
                sim_cards.c.card_key == self.card_key(pan)))
            found = row.first()
        if found is None:
            raise KeyError("no such card")
        return CardState(found.status, found.balance_minor, found.credit_limit_minor,
                         found.held_minor, found.pin_tries)

    def has_card(self, pan: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(sim_cards.c.card_key).where(
                sim_cards.c.card_key == self.card_key(pan))).first() is not None

    def auth_state(self, reference: str) -> str | None:
        """``applied``, ``declined``, ``reversed`` or ``tombstone`` (None: never seen)."""
        with self._engine.connect() as conn:
            value: str | None = conn.execute(select(sim_auths.c.state).where(
                sim_auths.c.reference == reference)).scalar()
        return value

    def inject(self, kind: FaultKind, count: int = 1, latency_ms: int = 0,
               code: str | None = None) -> None:
        """Make the next ``count`` calls misbehave as ``kind`` says."""
        with self._engine.begin() as conn:
            conn.execute(insert(sim_faults).values(kind=FaultKind(kind).value, remaining=count,
                                                   latency_ms=latency_ms, code=code))

    def clear_faults(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(sim_faults.delete())

    def _take_fault(self, kinds: frozenset[FaultKind]) -> Any | None:
        with self._lock, self._engine.begin() as conn:
            return self._take_fault_in(conn, kinds)

    def _take_fault_in(self, conn: Connection, kinds: frozenset[FaultKind]) -> Any | None:
        row = conn.execute(_NEXT_FAULT, {"kinds": [k.value for k in kinds]}).first()
        if row is None:
            return None
        conn.execute(update(sim_faults).where(sim_faults.c.fault_id == row.fault_id)
                     .values(remaining=row.remaining - 1))
        return row

    # -- the channel interface ---------------------------------------------------------
    def authorize(self, request: ChannelRequest) -> ChannelAnswer:
        # One transaction when no fault is armed (the usual case): this simulator stands in
        # for a remote issuer, and its own lock serialises its callers anyway.
        with self._lock, self._engine.begin() as conn:
            fault = self._take_fault_in(conn, _AUTHORIZE_FAULTS)
            if fault is None:
                return self._process(conn, request)
        if fault is not None:
            if fault.kind == FaultKind.UNAVAILABLE:
                raise ChannelUnavailable("issuer simulator refused the connection")
            if fault.kind == FaultKind.ANSWER_CODE:
                return ChannelAnswer(RC(fault.code or "96"))
            if fault.kind == FaultKind.LATENCY:
                time.sleep(fault.latency_ms / 1000)
        with self._lock, self._engine.begin() as conn:
            answer = self._process(conn, request)
        if fault is not None and fault.kind == FaultKind.LATE_ANSWER:
            time.sleep(fault.latency_ms / 1000)
        return answer

    def reverse(self, reference: str, reason: str) -> bool:
        if self._take_fault(_REVERSE_FAULTS) is not None:
            raise ChannelUnavailable("issuer simulator did not acknowledge the reversal")
        with self._lock, self._engine.begin() as conn:
            row = conn.execute(select(sim_auths).where(sim_auths.c.reference == reference)
                               ).first()
            if row is None:
                conn.execute(insert(sim_auths).values(
                    reference=reference, card_key=None, txn_type="unknown", amount_minor=0,
                    response_code=None, balance_delta=0, hold_delta=0, state="tombstone"))
                return True
            if row.state == "applied":
                self._shift(conn, row.card_key, -row.balance_delta, -row.hold_delta)
                conn.execute(update(sim_auths).where(sim_auths.c.reference == reference)
                             .values(state="reversed"))
        return True

    # -- the issuer's decision -----------------------------------------------------------
    def _process(self, conn: Connection, req: ChannelRequest) -> ChannelAnswer:
        seen = conn.execute(_AUTH_BY_REFERENCE, {"reference": req.reference}).first()
        if seen is not None:
            if seen.state == "tombstone":
                return ChannelAnswer(RC.RESPONSE_TOO_LATE)
            return ChannelAnswer(RC(seen.response_code), seen.auth_code, req.reference)
        original = self._original(conn, req.original_reference)
        if req.pan is not None:
            key = self.card_key(req.pan)
        elif original is not None and original.card_key is not None:
            key = original.card_key
        else:
            return self._record(conn, req, None, RC.ORIGINAL_NOT_FOUND, 0, 0, None)
        card = conn.execute(_CARD_BY_KEY, {"card_key": key}).first()
        code, balance_delta, hold_delta, balance = self._decide(conn, req, key, card, original)
        if code is RC.APPROVED and req.txn_type in _COUNTED \
                and not self._count_use(conn, key, req.business_date):
            code, balance_delta, hold_delta, balance = RC.EXCEEDS_FREQUENCY_LIMIT, 0, 0, None
        return self._record(conn, req, key if card is not None else None, code, balance_delta,
                            hold_delta, balance)

    def _count_use(self, conn: Connection, key: str, business_date: date) -> bool:
        """Count one purchase against the card's daily limit; False when it is used up."""
        row = conn.execute(_DAILY_COUNT_BY_KEY, {"card_key": key}).first()
        if row is None:
            return True
        today = business_date.isoformat()
        used = row.count_used if row.count_date == today else 0
        if used >= row.count_max:
            return False
        conn.execute(update(sim_daily_counts).where(sim_daily_counts.c.card_key == key)
                     .values(count_date=today, count_used=used + 1))
        return True

    def _record(self, conn: Connection, req: ChannelRequest, key: str | None,
                code: ResponseCode, balance_delta: int, hold_delta: int,
                balance: int | None) -> ChannelAnswer:
        auth_code = f"{secrets.randbelow(10**6):06d}" if code is RC.APPROVED else None
        conn.execute(_INSERT_AUTH, dict(
            reference=req.reference, card_key=key,
            txn_type=req.txn_type, amount_minor=req.amount.amount_minor,
            response_code=code.value, auth_code=auth_code,
            balance_delta=balance_delta if code is RC.APPROVED else 0,
            hold_delta=hold_delta if code is RC.APPROVED else 0,
            state="applied" if code is RC.APPROVED else "declined",
            original_reference=req.original_reference))
        if code is RC.APPROVED:
            self._shift(conn, key, balance_delta, hold_delta)
            if req.txn_type in CLEARED_TYPES:
                conn.execute(insert(sim_clearing).values(
                    reference=req.reference, merchant_id=req.merchant_id,
                    terminal_id=req.terminal_id, business_date=req.business_date.isoformat(),
                    at=self.clock().astimezone(UTC).isoformat(), card_key=key))
        return ChannelAnswer(code, auth_code, req.reference, balance)

    def _decide(self, conn: Connection, req: ChannelRequest, key: str, card: Any,
                original: Any) -> tuple[ResponseCode, int, int, int | None]:
        if card is None:
            return RC.INVALID_CARD_NUMBER, 0, 0, None
        if card.currency != req.amount.currency.code:
            return RC.NOT_PERMITTED_TO_CARDHOLDER, 0, 0, None
        status = CardStatus(card.status)
        if status in _STATUS_CODES:
            return _STATUS_CODES[status], 0, 0, None
        if Expiry.parse(card.expiry).is_expired_on(req.business_date):
            return RC.EXPIRED_CARD, 0, 0, None
        if req.txn_type in _NEEDS_PIN and card.pin_hash is not None:
            pin_code = self._check_pin(conn, key, card, req.pin)
            if pin_code is not None:
                return pin_code, 0, 0, None
        available = card.balance_minor + card.credit_limit_minor - card.held_minor
        amount = req.amount.amount_minor
        match req.txn_type:
            case "balance_inquiry":
                return RC.APPROVED, 0, 0, available
            case "sale":
                return (RC.APPROVED, -amount, 0, None) if amount <= available else (
                    RC.INSUFFICIENT_FUNDS, 0, 0, None)
            case "preauth":
                return (RC.APPROVED, 0, amount, None) if amount <= available else (
                    RC.INSUFFICIENT_FUNDS, 0, 0, None)
            case "completion":
                released = -original.hold_delta if original is not None else 0
                if amount > available - released:
                    return RC.INSUFFICIENT_FUNDS, 0, 0, None
                return RC.APPROVED, -amount, released, None
            case "preauth_void":
                released = -original.hold_delta if original is not None else 0
                return RC.APPROVED, 0, released, None
            case "completion_void":
                restored = -original.hold_delta if original is not None else 0
                return RC.APPROVED, amount, restored, None
            case "void" | "refund":
                return RC.APPROVED, amount, 0, None
        return RC.FUNCTION_NOT_SUPPORTED, 0, 0, None

    def _original(self, conn: Connection, reference: str | None) -> Any | None:
        if reference is None:
            return None
        row = conn.execute(_AUTH_BY_REFERENCE, {"reference": reference}).first()
        return row if row is not None and row.state == "applied" else None

    def _check_pin(self, conn: Connection, key: str, card: Any,
                   pin: str | None) -> ResponseCode | None:
        if card.pin_tries >= PIN_TRIES_MAX:
            return RC.PIN_TRIES_EXCEEDED
        if pin is not None and hmac.compare_digest(self._pin_hash(key, pin),
                                                   card.pin_hash):
            if card.pin_tries:
                conn.execute(update(sim_cards).where(sim_cards.c.card_key == key)
                             .values(pin_tries=0))
            return None
        tries = card.pin_tries + 1
        conn.execute(update(sim_cards).where(sim_cards.c.card_key == key)
                     .values(pin_tries=tries))
        return RC.PIN_TRIES_EXCEEDED if tries >= PIN_TRIES_MAX else RC.INCORRECT_PIN

    def _shift(self, conn: Connection, key: str | None, balance_delta: int,
               hold_delta: int) -> None:
        if key is None or (balance_delta == 0 and hold_delta == 0):
            return
        conn.execute(_SHIFT, {"key": key, "balance_delta": balance_delta,
                              "hold_delta": hold_delta})



# -- the clearing file (对账文件) ------------------------------------------------------------
# The issuer writes, for a business date, an ACP-style detail file from its own records
# (docs/reconciliation.md): one line per approved, unreversed sale, completion, void,
# completion void or refund, in GBK, fixed width, with a header and trailer carrying the
# count and total. Faults can be planted to exercise reconciliation.

class ClearingFault(StrEnum):
    MISSING = "missing"
    """A line left out (we have it, the channel does not: ours only)."""
    EXTRA = "extra"
    """A line for something we never saw (theirs only)."""
    AMOUNT = "amount"
    """A changed amount (amount mismatch)."""
    UNSEEN_REVERSAL = "unseen_reversal"
    """A line for an authorization that was reversed: the issuer never saw the reversal
    (status mismatch)."""
    NEXT_DAY = "next_day"
    """A line dated the next day (date mismatch)."""
    FEE = "fee"
    """A different fee (fee mismatch)."""
    REVERSAL_NEXT_DAY = "reversal_next_day"
    """A line for an authorization that was reversed (status mismatch), whose reversal the
    channel carries in the next day's file (:func:`next_day_reversals`): benign once both
    days are reconciled."""


@dataclass(frozen=True, slots=True)
class ClearingLine:
    txn_type: str
    reference: str
    merchant_id: str
    terminal_id: str
    local_time: datetime
    """Beijing wall-clock time; the file's MMDD is the clearing day."""
    amount_minor: int
    fee_minor: int | None
    masked_pan: str
    trace: str


ACP_CODES: Final = {"sale": "S22", "completion": "S24", "void": "S31",
                    "completion_void": "S32", "refund": "S33"}
FeeFor = Callable[[str, str, int, str], "int | None"]
"""(merchant id, transaction type, amount, card kind) -> the channel's fee, or None."""


def plant_faults(lines: list[ClearingLine], faults: dict[ClearingFault, int],
                 reversed_lines: list[ClearingLine], seed: int,
                 ) -> tuple[list[ClearingLine], list[tuple[ClearingFault, str]]]:
    """``lines`` with ``faults`` planted (how many of each); what was planted, as (fault,
    reference). Each changed line is a different one."""
    import random
    from dataclasses import replace
    from datetime import timedelta

    rng = random.Random(seed)
    out = list(lines)
    planted: list[tuple[ClearingFault, str]] = []
    # only sales are changed: a changed sale with voids or refunds of it would also break
    # what those pair with
    candidates = [i for i, line in enumerate(out) if line.txn_type == "sale"]
    rng.shuffle(candidates)
    drop: set[int] = set()
    for fault in (ClearingFault.MISSING, ClearingFault.AMOUNT, ClearingFault.NEXT_DAY,
                  ClearingFault.FEE):
        for _ in range(faults.get(fault, 0)):
            if not candidates:
                raise ValueError(f"not enough lines to plant {fault.value}")
            i = candidates.pop()
            line = out[i]
            if fault is ClearingFault.MISSING:
                drop.add(i)
            elif fault is ClearingFault.AMOUNT:
                out[i] = replace(line, amount_minor=line.amount_minor + rng.randint(1, 500))
            elif fault is ClearingFault.NEXT_DAY:
                out[i] = replace(line, local_time=line.local_time + timedelta(days=1))
            else:
                out[i] = replace(line, fee_minor=(line.fee_minor or 0) + rng.randint(1, 50))
            planted.append((fault, line.reference))
    out = [line for i, line in enumerate(out) if i not in drop]
    for n in range(faults.get(ClearingFault.EXTRA, 0)):
        model = lines[rng.randrange(len(lines))] if lines else None
        if model is None:
            raise ValueError("no line to model an extra line on")
        reference = f"x{seed:08d}{n:06d}".ljust(32, "0")[:32]
        out.append(replace(model, txn_type="sale", reference=reference,
                           amount_minor=rng.randint(100, 99_999), fee_minor=None,
                           trace=f"{900000 + n:06d}"))
        planted.append((ClearingFault.EXTRA, reference))
    unseen = faults.get(ClearingFault.UNSEEN_REVERSAL, 0)
    later = faults.get(ClearingFault.REVERSAL_NEXT_DAY, 0)
    if unseen + later > len(reversed_lines):
        raise ValueError("not enough reversed authorizations to plant unseen reversals")
    for line in reversed_lines[:unseen]:
        out.append(line)
        planted.append((ClearingFault.UNSEEN_REVERSAL, line.reference))
    for line in reversed_lines[unseen:unseen + later]:
        out.append(line)
        planted.append((ClearingFault.REVERSAL_NEXT_DAY, line.reference))
    return out, planted


def reversal_line(line: ClearingLine) -> ClearingLine:
    """The channel's reversal of ``line`` (a sale it cleared), a day later: a void under
    the same reference, terminal and amount."""
    from dataclasses import replace
    from datetime import timedelta

    return replace(line, txn_type="void", local_time=line.local_time + timedelta(days=1))


def next_day_reversals(sim: IssuerSimulator, business_date: date,
                       planted: list[tuple[ClearingFault, str]],
                       fee_for: FeeFor | None = None) -> list[ClearingLine]:
    """The reversal lines the file of the day after ``business_date`` carries for the
    ``reversal_next_day`` faults planted in ``business_date``'s file."""
    wanted = {ref for fault, ref in planted if fault is ClearingFault.REVERSAL_NEXT_DAY}
    _, gone = clearing_lines(sim, business_date, fee_for)
    return [reversal_line(line) for line in gone if line.reference in wanted]


def acp_record_values(line: ClearingLine) -> dict[str, str]:
    return {"txn_code": ACP_CODES[line.txn_type], "trace": line.trace,
            "txn_time": f"{line.local_time:%m%d%H%M%S}", "account": line.masked_pan,
            "amount": f"{line.amount_minor:012d}",
            "order_ref": line.reference,
            "fee": "" if line.fee_minor is None else f"{line.fee_minor:013d}",
            "merchant_id": line.merchant_id, "terminal_id": line.terminal_id}


def write_acp_file(path: Path, business_date: date, lines: list[ClearingLine]) -> Path:
    """Write ``lines`` as the ACP detail file of ``business_date`` (GBK, header, trailer)."""
    from autosettle.domain.recon_layouts import control_record, fixed_record
    from autosettle.services.recon import builtin_sources

    spec = builtin_sources()["acp"]
    assert spec.header is not None and spec.trailer is not None
    total = sum(line.amount_minor for line in lines)
    with open(path, "wb") as handle:
        handle.write(control_record(spec.header, business_date, len(lines), total) + b"\n")
        for line in lines:
            handle.write(fixed_record(spec, acp_record_values(line)) + b"\n")
        handle.write(control_record(spec.trailer, business_date, len(lines), total) + b"\n")
    return path


def _clearing_rows(sim: IssuerSimulator, business_date: date) -> list[Any]:
    a, c, k = sim_auths, sim_clearing, sim_cards
    query = select(a.c.reference, a.c.txn_type, a.c.amount_minor, a.c.state,
                   a.c.original_reference, c.c.merchant_id, c.c.terminal_id, c.c.at,
                   k.c.masked, k.c.kind).select_from(
        c.join(a, a.c.reference == c.c.reference).outerjoin(k, k.c.card_key == c.c.card_key)
    ).where(c.c.business_date == business_date.isoformat()).order_by(c.c.at, c.c.reference)
    with sim._engine.connect() as conn:
        return list(conn.execute(query))


def clearing_lines(sim: IssuerSimulator, business_date: date, fee_for: FeeFor | None = None,
                   ) -> tuple[list[ClearingLine], list[ClearingLine]]:
    """The issuer's lines for ``business_date`` and, apart, the lines its reversed
    authorizations would have had."""
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    live: list[ClearingLine] = []
    gone: list[ClearingLine] = []
    for n, row in enumerate(_clearing_rows(sim, business_date)):
        at = datetime.fromisoformat(row.at).astimezone(shanghai).replace(tzinfo=None)
        at = datetime.combine(business_date, at.time())
        fee = fee_for(row.merchant_id, row.txn_type, row.amount_minor, row.kind or "other") \
            if fee_for is not None else None
        line = ClearingLine(row.txn_type, row.reference, row.merchant_id, row.terminal_id, at,
                            row.amount_minor, fee, row.masked or "", f"{n + 1:06d}")
        (live if row.state == "applied" else gone).append(line)
    return live, gone


def write_clearing_file(sim: IssuerSimulator, path: Path, business_date: date, *,
                        faults: dict[ClearingFault, int] | None = None, seed: int = 0,
                        fee_for: FeeFor | None = None,
                        carried: Sequence[ClearingLine] = ()) -> list[tuple[ClearingFault, str]]:
    """Write the issuer's ACP detail file for ``business_date`` from its own records, with
    ``faults`` planted and the ``carried`` lines of earlier days (e.g.
    :func:`next_day_reversals`) at the end; what was planted."""
    live, gone = clearing_lines(sim, business_date, fee_for)
    lines, planted = plant_faults(live, faults or {}, gone, seed)
    write_acp_file(path, business_date, [*lines, *carried])
    return planted
