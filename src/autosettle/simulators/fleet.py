"""The terminal simulator's fleet: which terminals it drives, their TMKs and their cards.

A simulated terminal is a real terminal of the database (the demo terminals, or simulator
merchants and terminals made with ``--create``), provisioned through the service layer
(:func:`~autosettle.services.terminal_keys.provision_terminal`) like any other. The
simulator runs where the database is, so it can provision; what a key loading device would
keep, the simulator keeps in ``<data_dir>/terminal-sim-keys.json`` (mode 0600): the TMK
components of each terminal it provisioned, with the TMK's check value and generation. A
terminal whose active TMK is not in that file (an operator provisioned it) is left alone
unless asked to re-provision it (``reprovision``: reset the TMK, then provision again).

Two runs must not drive the same terminals at once (each sign-on replaces the working keys
of the other): a run holds an exclusive lock on ``<data_dir>/terminal-sim-<pool>.lock``
for as long as it drives terminals of that pool.

Each terminal pays with cards of its own at the issuer simulator (so that one terminal's
wrong PINs never lock another's card), derived from its ids: a debit card with a PIN and
a very large balance, a credit card without PIN, a Visa card (the foreign block of field
48), a debit card with almost no money (51) and one whose holder forgets the PIN (55).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from autosettle.domain.cards import luhn_check_digit, mask_pan
from autosettle.domain.errors import ConflictError, NotFoundError, ValidationError
from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.fields import NetworkManagementCode
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.private_files import open_private, private_dir
from autosettle.services import merchants, terminal_keys, terminal_queries
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.key_module import KeyStatus, MacAlgorithm
from autosettle.simulators.demo_seed import DEMO_MERCHANTS
from autosettle.simulators.demo_traffic import seed_cards
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import LocalTxn, TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind

log = logging.getLogger("autosettle.terminal_sim")

KEYRING_FILE: Final = "terminal-sim-keys.json"
KEYRING_VERSION: Final = 1
LOCK_FILE: Final = "terminal-sim-{pool}.lock"
SIM_MERCHANT_PREFIX: Final = "89831009999"  # + 4 digits: the 15 characters of field 42
SIM_TERMINAL_PREFIX: Final = "SM"  # + 6 digits: the 8 characters of field 41
SIM_TERMINALS_PER_MERCHANT: Final = 8
SIM_TERMINALS_MAX: Final = 500
"""At most this many simulated terminals (the host accepts 512 connections)."""
CARD_PIN: Final = "123456"
FORGETFUL_PIN: Final = "888888"
WRONG_PIN: Final = "000000"
CARD_EXPIRY: Final = "3012"
BIG_BALANCE_MINOR: Final = 10**11
"""1,000,000,000.00: lasts for years at demo pace, and fits field 54 (n12)."""
LOW_BALANCE_MINOR: Final = 1_000
RECOVERED_LINES_MAX: Final = 10_000


class Pool(StrEnum):
    """Which terminals a run drives."""

    DEMO = "demo"
    SIM = "sim"


# -- cards ---------------------------------------------------------------------------------

class CardRole(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    FOREIGN = "foreign"
    LOW_FUNDS = "low_funds"
    FORGETFUL = "forgetful"


@dataclass(frozen=True, slots=True)
class SimCard:
    """A card of one simulated terminal: its PAN and the PIN its holder knows."""

    role: CardRole
    pan: str = field(repr=False)
    pin: str | None = field(repr=False)
    kind: str
    balance_minor: int
    credit_limit_minor: int

    @property
    def masked(self) -> str:
        return mask_pan(self.pan)


_CARD_LAYOUT: Final = {
    # role: (prefix, length, issuer kind, PIN, balance, credit limit)
    CardRole.DEBIT: ("622202", 19, "debit", CARD_PIN, BIG_BALANCE_MINOR, 0),
    CardRole.CREDIT: ("625802", 16, "credit", None, 0, BIG_BALANCE_MINOR),
    CardRole.FOREIGN: ("4", 16, "credit", None, 0, BIG_BALANCE_MINOR),
    CardRole.LOW_FUNDS: ("622848", 19, "debit", CARD_PIN, LOW_BALANCE_MINOR, 0),
    CardRole.FORGETFUL: ("621700", 19, "debit", FORGETFUL_PIN, BIG_BALANCE_MINOR, 0),
}


def _pan(prefix: str, length: int, seed: str) -> str:
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))
    body = (prefix + digits)[:length - 1]
    return body + luhn_check_digit(body)


def cards_for(merchant_id: str, terminal_id: str) -> dict[CardRole, SimCard]:
    """The cards of one simulated terminal (the same every time)."""
    cards = {}
    for role, (prefix, length, kind, pin, balance, limit) in _CARD_LAYOUT.items():
        pan = _pan(prefix, length, f"autosettle-sim/{merchant_id}/{terminal_id}/{role}")
        cards[role] = SimCard(role, pan, pin, kind, balance, limit)
    return cards


def ensure_cards(sim: IssuerSimulator, cards: Iterable[SimCard]) -> None:
    """Open the cards at the issuer simulator unless they exist (balances are kept)."""
    for card in cards:
        if not sim.has_card(card.pan):
            reset_card(sim, card)


def reset_card(sim: IssuerSimulator, card: SimCard, *, keep_balance: bool = False) -> None:
    """Open a card, or unlock it (PIN try counter at zero) keeping its balance."""
    balance = card.balance_minor
    if keep_balance and sim.has_card(card.pan):
        state = sim.card(card.pan)
        if state.held_minor:
            raise ValidationError("a card with holds cannot be re-opened")
        balance = state.balance_minor
    sim.add_card(card.pan, kind=card.kind, balance_minor=balance,
                 credit_limit_minor=card.credit_limit_minor, pin=card.pin,
                 expiry=CARD_EXPIRY)


def issuer_simulator(ctx: ServiceContext) -> IssuerSimulator:
    """The built-in issuer simulator behind ``ctx``; the simulator refuses any other
    channel (its cards exist only there, and it injects faults there)."""
    if not isinstance(ctx.channel, IssuerSimulator):
        raise ValidationError("the terminal simulator needs the built-in issuer simulator "
                              "as the channel (its cards and faults live there)")
    return ctx.channel


# -- the keyring -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyringEntry:
    """What a key loading device would keep of a terminal: its TMK components."""

    components: tuple[str, ...] = field(repr=False)
    kcv: str
    generation: int
    mac_algorithm: str

    def tmk(self) -> bytes:
        return crypto.combine_components([bytes.fromhex(c) for c in self.components])


class Keyring:
    """``<data_dir>/terminal-sim-keys.json`` (mode 0600): TMK components by terminal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, ctx: ServiceContext) -> Keyring:
        return cls(ctx.settings.data_dir / KEYRING_FILE)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("terminal simulator: %s is not valid JSON; starting a new one",
                        self.path)
            return {}
        terminals = data.get("terminals") if isinstance(data, dict) else None
        return terminals if isinstance(terminals, dict) else {}

    def get(self, merchant_id: str, terminal_id: str) -> KeyringEntry | None:
        raw = self._load().get(f"{merchant_id}/{terminal_id}")
        if not isinstance(raw, dict):
            return None
        try:
            return KeyringEntry(tuple(raw["components"]), str(raw["kcv"]),
                                int(raw["generation"]), str(raw["mac_algorithm"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, merchant_id: str, terminal_id: str, entry: KeyringEntry) -> None:
        """Add or replace one terminal's entry (read, change, write under a file lock:
        ``serve``'s fleet and a simulator run may provision at the same time)."""
        private_dir(self.path.parent)
        lock_fd = open_private(self.path.with_name(self.path.name + ".lock"), os.O_RDWR)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            terminals = self._load()
            terminals[f"{merchant_id}/{terminal_id}"] = {
                "components": list(entry.components), "kcv": entry.kcv,
                "generation": entry.generation, "mac_algorithm": entry.mac_algorithm}
            temporary = self.path.with_name(self.path.name + ".tmp")
            with os.fdopen(open_private(temporary), "w") as handle:
                json.dump({"version": KEYRING_VERSION, "terminals": terminals}, handle,
                          indent=1)
            os.replace(temporary, self.path)
        finally:
            os.close(lock_fd)  # closing releases the lock


class PoolLock:
    """An exclusive ``flock`` on ``<data_dir>/terminal-sim-<pool>.lock`` (non-blocking)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def of(cls, ctx: ServiceContext, pool: Pool | str) -> PoolLock:
        return cls(ctx.settings.data_dir / LOCK_FILE.format(pool=pool))

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        private_dir(self.path.parent)
        fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


# -- terminals -------------------------------------------------------------------------------

def demo_terminals() -> list[tuple[str, str]]:
    """(merchant id, terminal id) of the demo data set, in order."""
    return [(d.merchant.merchant_id, t.terminal_id) for d in DEMO_MERCHANTS
            for t in d.terminals]


def sim_terminal_ids(count: int) -> list[tuple[str, str]]:
    """(merchant id, terminal id) of the first ``count`` simulator terminals."""
    return [(f"{SIM_MERCHANT_PREFIX}{(n - 1) // SIM_TERMINALS_PER_MERCHANT + 1:04d}",
             f"{SIM_TERMINAL_PREFIX}{n:06d}") for n in range(1, count + 1)]


_SIM_SHOPS: Final = (
    # (MCC, merchant type, cycle, per-sale limit)
    ("5411", MerchantType.ENTERPRISE, CycleCode.T1, None),
    ("5812", MerchantType.ENTERPRISE, CycleCode.D0, 500_000),
    ("5912", MerchantType.ENTERPRISE, CycleCode.T1, None),
    ("5311", MerchantType.ENTERPRISE, CycleCode.D1, None),
)


def create_sim_terminals(ctx: ServiceContext, count: int) -> list[tuple[str, str]]:
    """Make sure simulator merchants (8 terminals each, with a verified settlement
    account) and ``count`` simulator terminals exist; returns their ids."""
    if not 1 <= count <= SIM_TERMINALS_MAX:
        raise ValidationError(f"--create must be 1..{SIM_TERMINALS_MAX}")
    ids = sim_terminal_ids(count)
    for number, merchant_id in enumerate(dict.fromkeys(m for m, _ in ids), 1):
        setup = terminal_queries.merchant_setup(ctx, SYSTEM, merchant_id)
        has_merchant, has_account = setup.exists, setup.has_account
        name = f"Simulator Shop {number:04d} Co., Ltd."
        mcc, merchant_type, cycle, limit = _SIM_SHOPS[(number - 1) % len(_SIM_SHOPS)]
        if not has_merchant:
            merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
                merchant_id, name, merchant_type, mcc, short_name=f"Sim Shop {number:04d}",
                settlement_cycle=cycle, single_limit_minor=limit))
        if not has_account:
            merchants.add_settlement_account(ctx, SYSTEM, merchant_id,
                                             merchants.NewSettlementAccount(
                                                 "Industrial and Commercial Bank of China",
                                                 f"62122602{number:011d}", name,
                                                 AccountType.CORPORATE, "102"))
    for merchant_id, terminal_id in ids:
        if not terminal_exists(ctx, merchant_id, terminal_id):
            merchants.add_terminal(ctx, SYSTEM, merchant_id, merchants.NewTerminal(
                terminal_id, f"SN-{terminal_id}", "autosettle simulator"))
    return ids


def terminal_exists(ctx: ServiceContext, merchant_id: str, terminal_id: str) -> bool:
    """Whether the terminal is registered (asked as the system operator)."""
    return terminal_queries.terminal_exists(ctx, SYSTEM, merchant_id, terminal_id)


def _style(index: int) -> tuple[MacAlgorithm, str]:
    """MAC algorithm and sign-on mode (60.3) of the ``index``-th terminal: mostly CUP ECB
    with double-length keys, every fourth X9.19, every fifth single-length, every sixth
    double-length with a TDK."""
    if index % 4 == 3:
        return MacAlgorithm.X919, NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH.value
    if index % 5 == 4:
        return MacAlgorithm.CUP_ECB, NetworkManagementCode.SIGN_ON_SINGLE_LENGTH.value
    if index % 6 == 5:
        return (MacAlgorithm.CUP_ECB,
                NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH_WITH_TDK.value)
    return MacAlgorithm.CUP_ECB, NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH.value


class NotOurs(ConflictError):
    """The terminal has an active TMK the simulator does not hold."""


def load_profile(ctx: ServiceContext, keyring: Keyring, merchant_id: str, terminal_id: str,
                 index: int, *, reprovision: bool = False) -> TerminalProfile:
    """The terminal's profile with its TMK: from the keyring, or provisioned now.

    Raises :class:`NotOurs` when an operator gave the terminal a TMK the simulator does
    not hold (unless ``reprovision``: then that TMK is reset and a new one provisioned),
    and ``NotFoundError`` for a terminal that does not exist.
    """
    if not terminal_exists(ctx, merchant_id, terminal_id):
        raise NotFoundError(f"terminal {merchant_id}/{terminal_id} not found")
    keys = terminal_queries.terminal_key_state(ctx, SYSTEM, merchant_id, terminal_id)
    mine = keyring.get(merchant_id, terminal_id)
    _, mode = _style(index)
    active = keys is not None and keys.status == KeyStatus.ACTIVE
    if active and keys is not None and mine is not None and mine.kcv == keys.tmk_kcv \
            and mine.generation == keys.tmk_generation:
        return TerminalProfile(merchant_id, terminal_id, mine.tmk(),
                               MacAlgorithm(mine.mac_algorithm), mode)
    if active:
        if not reprovision:
            raise NotOurs(f"terminal {terminal_id} has a TMK the simulator does not hold "
                          "(provisioned by an operator?); re-provision it with "
                          "--reprovision, or reset it: autosettle terminals reset-tmk")
        terminal_keys.reset_tmk(ctx, SYSTEM, merchant_id, terminal_id)
        log.info("terminal simulator: TMK of terminal %s reset for re-provisioning",
                 terminal_id)
    mac, _ = _style(index)
    made = terminal_keys.provision_terminal(ctx, SYSTEM, merchant_id, terminal_id,
                                            mac_algorithm=mac)
    keyring.put(merchant_id, terminal_id, KeyringEntry(
        tuple(c.value_hex for c in made.components), made.tmk_kcv, made.tmk_generation,
        made.mac_algorithm.value))
    log.info("terminal simulator: terminal %s provisioned (TMK check value %s, %s)",
             terminal_id, made.tmk_kcv, made.mac_algorithm.value)
    return TerminalProfile(merchant_id, terminal_id, made.tmk(), made.mac_algorithm, mode)


@dataclass
class Fleet:
    """The terminals of one run: their profiles and cards, and the pool's lock."""

    pool: Pool
    profiles: list[TerminalProfile]
    cards: dict[tuple[str, str], dict[CardRole, SimCard]]
    lock: PoolLock
    skipped: list[str] = field(default_factory=list)

    def release(self) -> None:
        self.lock.release()


def prepare_fleet(ctx: ServiceContext, *, terminals: int | None = None,
                  create: int | None = None, reprovision: bool = False,
                  skip_not_ours: bool = False) -> Fleet:
    """Choose, lock, provision and equip the terminals of a run.

    The demo terminals by default; with ``create``, that many simulator terminals (made if
    missing). ``terminals`` takes the first so many. Terminals provisioned by someone else
    are an error, or with ``skip_not_ours`` are left out (their reasons in ``skipped``).
    """
    sim = issuer_simulator(ctx)
    pool = Pool.SIM if create is not None else Pool.DEMO
    if create is not None:
        ids = create_sim_terminals(ctx, create)
    else:
        ids = [i for i in demo_terminals() if terminal_exists(ctx, *i)]
        if not ids:
            raise NotFoundError("no demo terminals: run 'autosettle demo seed' first, or "
                                "create simulator terminals with --create N")
    if terminals is not None:
        if not 1 <= terminals <= len(ids):
            raise ValidationError(f"--terminals must be 1..{len(ids)} for the {pool} "
                                  "terminals" + ("" if create is not None else
                                                 "; use --create N for more"))
        ids = ids[:terminals]
    lock = PoolLock.of(ctx, pool)
    if not lock.acquire():
        raise ConflictError(f"the {pool} terminals are being driven by another simulator "
                            "(the demo fleet of 'autosettle serve', or another run): "
                            "use --create N for terminals of your own")
    try:
        seed_cards(sim)
        keyring = Keyring.of(ctx)
        fleet = Fleet(pool, [], {}, lock)
        for index, (merchant_id, terminal_id) in enumerate(ids):
            try:
                profile = load_profile(ctx, keyring, merchant_id, terminal_id, index,
                                       reprovision=reprovision)
            except NotOurs as exc:
                if not skip_not_ours:
                    raise
                fleet.skipped.append(exc.message)
                continue
            cards = cards_for(merchant_id, terminal_id)
            ensure_cards(sim, cards.values())
            fleet.profiles.append(profile)
            fleet.cards[(merchant_id, terminal_id)] = cards
    except BaseException:
        lock.release()
        raise
    return fleet


# -- the journal after a restart ---------------------------------------------------------------

_RECOVERED_KINDS: Final = {"sale": MessageKind.SALE, "completion": MessageKind.COMPLETION,
                           "refund": MessageKind.REFUND, "preauth": MessageKind.PREAUTH}


def recover_journal(ctx: ServiceContext, client: TerminalClient,
                    cards: Sequence[SimCard]) -> int:
    """Reload the open batch into a freshly signed-on client; returns the entries loaded.

    A real terminal keeps its journal in flash across a restart; the simulator keeps it in
    memory, so after a restart (``serve`` stopped, a run killed) it reads the host's record
    of the batch the 0810 named: approved sales, completions, refunds and pre-authorizations
    become journal entries again, and the trace counter continues after the highest trace
    of the batch (a trace used twice would be a duplicate, 94).
    """
    profile = client.profile
    batch_no = f"{client.batch_no:06d}"
    lines = terminal_queries.batch_entries(ctx, SYSTEM, profile.merchant_id,
                                           profile.terminal_id, batch_no, RECOVERED_LINES_MAX)
    by_masked = {card.masked: card.pan for card in cards}
    loaded = 0
    for line in lines:
        if line.stan.isdigit():
            client.trace = max(client.trace, int(line.stan))
        kind = _RECOVERED_KINDS.get(line.txn_type)
        if kind is None or line.status != "approved":
            continue
        pan = by_masked.get(line.pan_masked or "")
        client.journal.append(LocalTxn(kind, client.batch_no, int(line.stan),
                                       line.amount_minor, pan))
        loaded += 1
    return loaded
