"""The terminal simulator: a fleet of POS terminals speaking ISO 8583 to the terminal host.

Each simulated terminal is one :class:`~autosettle.simulators.terminal_client.TerminalClient`
on its own thread and its own TCP connection: it signs on (new working keys), plays a
cashier's day at a given pace, and closes its batch (0500, with the 0320 upload when the
host answers "not balanced"). The mix (:class:`Mix`): sales with and without PIN, on
domestic and foreign cards, voids, partial refunds, pre-authorizations, completions and
their voids, balance inquiries, a cardholder who types the wrong PIN (55, three times 75),
a card with no money (51), lost and expired cards (41, 54), a ticket over the shop's
per-sale limit (61), and two faults that end in a reversal:

* **timeout**: the issuer simulator is told to answer late (``FaultKind.LATE_ANSWER``, the
  terminal's timeout plus half a second). The host's payment service waits
  ``channel_timeout_s`` for the issuer *in the host's process* (10 s by default): a late
  answer shorter than that is applied by the host (the sale is approved) after the
  terminal has given up; the terminal then sends its stored 0400 before its next request
  and the host undoes the sale. With a channel timeout shorter than the terminal's, the
  host gives up first, answers 98 and reverses upstream by itself. Either way no money
  stays moved. Faults are global to the issuer simulator: when two terminals race, the
  other one may take the late answer; the accounting does not depend on who does.
* **dropped connection**: the terminal sends a sale and closes the connection without
  reading the answer (power cut); after a short "reboot" it reconnects and sends the
  stored reversal first.

A finite run (:func:`run_simulation`) returns a :class:`Summary`: answers per response code,
approved amounts, latencies (p50/p99), reversals, and the batch close verdicts, with
checks of its own totals against the host: the verdict of every 0510 is the expected one,
the host's stored totals of every closed batch equal the terminal's journal, every answer
MAC verifies, no protocol error (A0, 30, 12, 96, ...) was answered and no reversal is left
pending. :class:`DemoFleet` runs the same terminals forever, for ``autosettle serve``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from autosettle.domain.cards import mask_pan
from autosettle.domain.errors import AutosettleError
from autosettle.domain.iso8583.fields import parse_settlement_totals
from autosettle.domain.response_codes import describe, lookup
from autosettle.services import terminal_batches, terminal_queries
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.demo_traffic import DEMO_CARDS
from autosettle.simulators.fleet import (
    WRONG_PIN,
    CardRole,
    Fleet,
    SimCard,
    issuer_simulator,
    prepare_fleet,
    recover_journal,
    reset_card,
)
from autosettle.simulators.issuer import FaultKind, IssuerSimulator
from autosettle.simulators.report import (
    MS,
    BatchVerdict,
    Check,
    Summary,
    Tally,
    totals_dict,
)
from autosettle.simulators.terminal_client import (
    Answer,
    LocalTxn,
    NoAnswer,
    Outgoing,
    TerminalClient,
    TerminalProfile,
)
from autosettle.terminal_host.messages import MessageKind

log = logging.getLogger("autosettle.terminal_sim")
K = MessageKind

TIMEOUT_S_DEFAULT: Final = 3.0
"""How long a simulated terminal waits for an answer (real terminals: 30-60 s)."""
LATE_MARGIN_S: Final = 0.5
"""A late answer comes this long after the terminal gave up."""
REBOOT_S: Final = 0.3
"""After a dropped connection the terminal "reboots" this long before reconnecting."""
IDLE_RECONNECT_S: Final = 30.0
"""A connection idle this long is closed and opened again before the next request (the
host drops idle connections after two minutes)."""
RETRY_S: Final = 5.0
"""Pause after a failed sign-on or an unreachable host (the fleet backs off to 30 s)."""
BACKOFF_MAX_S: Final = 30.0
BATCH_COUNT_MAX: Final = 500
"""Close the batch when it holds this many counted transactions (field 48 counts n3)."""
FINAL_TRIES: Final = 3
ERRORS_KEPT: Final = 100
KEPT_OLD_SALES: Final = 50
"""Approved sales of closed batches kept in the journal (for refunds of earlier sales)."""
AMOUNT_MEDIAN_MINOR: Final = 6_000
AMOUNT_SIGMA: Final = 0.9
AMOUNT_MINOR_MIN: Final = 100
AMOUNT_MINOR_MAX: Final = 300_000
BIG_TICKET_MINOR: Final = 600_000
LOW_FUNDS_AMOUNT_MINOR: Final = 5_000
NO_ANSWER: Final = "no answer"
PROTOCOL_ERRORS: Final = frozenset({"A0", "03", "12", "22", "25", "30", "94", "96", "97",
                                    "99"})
"""Answers that mean the simulator or the host got the protocol wrong (a run that gets one
fails its checks)."""
SIGN_ON_AGAIN: Final = frozenset({"A0", "22"})
"""After these answers a terminal signs on again (new keys; the batch the host expects)."""
_LOST_CARD, _EXPIRED_CARD = DEMO_CARDS[4], DEMO_CARDS[5]


@dataclass(frozen=True, slots=True)
class Mix:
    """Relative weights of a cashier's actions (a void, refund, completion... with nothing
    to act on becomes a sale)."""

    sale: float = 40
    sale_credit: float = 12
    sale_foreign: float = 4
    void: float = 6
    refund: float = 5
    preauth: float = 6
    completion: float = 5
    preauth_void: float = 2
    completion_void: float = 1
    balance: float = 3
    wrong_pin: float = 4
    insufficient_funds: float = 4
    declined_card: float = 2
    big_ticket: float = 1
    timeout: float = 1.5
    drop: float = 1.5

    def without_faults(self) -> Mix:
        return replace(self, timeout=0, drop=0)

    def actions(self) -> tuple[list[str], list[float]]:
        names = [f.name for f in fields(self)]
        return names, [float(getattr(self, name)) for name in names]


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """One run. ``duration_s`` None runs until ``stop`` is set (the demo fleet), without
    the final batch close."""

    tps: float = 2.0
    """Cashier actions per second for the whole fleet (Poisson arrivals)."""
    duration_s: float | None = 10.0
    host: str = "127.0.0.1"
    port: int = 5800
    timeout_s: float = TIMEOUT_S_DEFAULT
    seed: int | None = None
    mix: Mix = field(default_factory=Mix)
    faults: bool = True
    unbalanced: int = 0
    """The first so many terminals lose their last journal entry before the final batch
    close (as after a power cut): the host must answer "not balanced" and flag it."""
    batch_every_s: float | None = None
    batch_count_max: int = BATCH_COUNT_MAX
    sign_off: bool = True
    recover: bool = True
    """Reload the open batch from the host's records at the first sign-on (see
    :func:`~autosettle.simulators.fleet.recover_journal`)."""
    opening: tuple[str, ...] = ()
    """Actions (names of :class:`Mix` fields) every terminal plays first, in order."""
    log_level: int = logging.DEBUG
    """Level of the one line logged per message (INFO for the demo fleet)."""


# -- one terminal ----------------------------------------------------------------------------

def _describe(code: str) -> str:
    known = lookup(code)
    return code if known is None else f"{code} {describe(known).english}"


def _amount(rng: random.Random) -> int:
    value = int(rng.lognormvariate(math.log(AMOUNT_MEDIAN_MINOR), AMOUNT_SIGMA))
    return max(AMOUNT_MINOR_MIN, min(value, AMOUNT_MINOR_MAX))


class SimTerminal:
    """One simulated terminal: a client, its cards, a cashier's habits and a tally."""

    def __init__(self, ctx: ServiceContext, profile: TerminalProfile,
                 cards: dict[CardRole, SimCard], config: SimulationConfig, index: int,
                 fault_lock: threading.Lock, fleet_size: int) -> None:
        self.ctx = ctx
        self.profile = profile
        self.cards = cards
        self.config = config
        self.index = index
        self.rate = config.tps / fleet_size if fleet_size else 0.0
        self.client = TerminalClient(profile, config.host, config.port, config.timeout_s)
        seed = None if config.seed is None else config.seed * 1_000_003 + index
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.batches: list[BatchVerdict] = []
        self._fault_lock = fault_lock
        self._sim: IssuerSimulator = issuer_simulator(ctx)
        self._signed_on = False
        self._recovered = False
        self._refunded: dict[int, int] = {}
        self._last_io = time.monotonic()
        self._last_close = time.monotonic()
        self._complained: set[str] = set()
        self._backoff_s = RETRY_S
        mix = config.mix if config.faults else config.mix.without_faults()
        self._actions, self._weights = mix.actions()
        unknown = set(config.opening) - set(self._actions)
        if unknown:
            raise ValueError(f"unknown opening actions: {sorted(unknown)}")
        self._opening = list(config.opening)

    @property
    def terminal_id(self) -> str:
        return self.profile.terminal_id

    # -- talking ---------------------------------------------------------------------------

    def _complain_once(self, key: str, message: str, *args: object) -> None:
        """A problem that may last (host down, terminal locked out) is logged once."""
        if key not in self._complained:
            self._complained.add(key)
            log.warning(message, *args)

    def _exchange(self, outgoing: Outgoing, *, abandon: bool = False,
                  note: str = "") -> Answer | None:
        """Send one request, tally and log its answer; None when none came."""
        if time.monotonic() - self._last_io > IDLE_RECONNECT_S:
            self.client.close()
        name = outgoing.kind.value
        kind_tally = self.tally.kind(name)
        kind_tally.sent += 1
        txn = outgoing.txn or outgoing.reverses
        amount = int(outgoing.fields.get("4", "0") or 0)
        what = _what(self.terminal_id, name, amount, txn.pan if txn is not None else None)
        started = time.perf_counter()
        try:
            answer = self.client.send(outgoing, abandon=abandon)
        except (NoAnswer, OSError) as exc:
            self._last_io = time.monotonic()
            self.client.close()
            kind_tally.no_answer += 1
            self.tally.codes[NO_ANSWER] += 1
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                self._complain_once("unreachable", "terminal %s: the terminal host at %s:%d "
                                    "is unreachable (%s)", self.terminal_id,
                                    self.config.host, self.config.port, type(exc).__name__)
            else:
                log.log(self.config.log_level, "%s: no answer (%s)%s", what,
                        "connection dropped" if abandon else
                        f"timeout {self.config.timeout_s:g} s", _pending(self.client))
            return None
        except AutosettleError as exc:  # an answer that does not decode or check
            self.client.close()
            kind_tally.no_answer += 1
            self.tally.codes[NO_ANSWER] += 1
            if len(self.tally.errors) < ERRORS_KEPT:
                self.tally.errors.append(f"{self.terminal_id} {name}: {exc.message}")
            self._complain_once(f"bad-answer:{name}", "terminal %s: a %s answer did not "
                                "decode or check: %s", self.terminal_id, name, exc.message)
            return None
        elapsed = time.perf_counter() - started
        self._last_io = time.monotonic()
        self._complained.discard("unreachable")
        kind_tally.answered += 1
        code = answer.code
        kind_tally.codes[code] += 1
        self.tally.codes[code] += 1
        self.tally.latencies_s.append(elapsed)
        if outgoing.kind is K.SALE:
            self.tally.sale_latencies_s.append(elapsed)
        if answer.mac_ok is False:
            self.tally.mac_failures += 1
        if code in PROTOCOL_ERRORS and len(self.tally.protocol_errors) < ERRORS_KEPT:
            self.tally.protocol_errors.append(f"{self.terminal_id} {name}: {code}")
        if code in SIGN_ON_AGAIN:
            self._signed_on = False  # stale keys, or another batch expected: sign on
        if answer.approved:
            kind_tally.approved += 1
            kind_tally.approved_minor += amount
        log.log(self.config.log_level, "%s: %s%s (%.0f ms)", what, _describe(code), note,
                elapsed * MS)
        return answer

    def _sign_on(self) -> bool:
        answer = self._exchange(self.client.prepare_sign_on())
        if answer is None or answer.code != "00" or self.client.keys is None:
            why = answer.code if answer is not None else NO_ANSWER
            if len(self.tally.sign_on_failures) < ERRORS_KEPT:
                self.tally.sign_on_failures.append(f"{self.terminal_id}: {why}")
            if "unreachable" not in self._complained:
                self._complain_once(f"sign-on:{why}", "terminal %s: sign-on refused (%s); "
                                    "retrying quietly, at most every %g s", self.terminal_id,
                                    _describe(why), BACKOFF_MAX_S)
            return False
        self._complained = {k for k in self._complained if not k.startswith("sign-on")}
        self._signed_on = True
        self._backoff_s = RETRY_S
        self.tally.sign_ons += 1
        if not self._recovered and self.config.recover:
            self._recovered = True
            loaded = recover_journal(self.ctx, self.client, list(self.cards.values()) + [
                _demo_card(c) for c in DEMO_CARDS])
            self.tally.recovered += loaded
            if loaded:
                log.info("terminal %s: %d transaction(s) of open batch %06d reloaded",
                         self.terminal_id, loaded, self.client.batch_no)
        return True

    def _flush_reversal(self) -> bool:
        """Send the stored reversal (before anything else); True when none is left."""
        pending = self.client.pending_reversal
        if pending is None:
            return True
        self._exchange(pending)
        return self.client.pending_reversal is None

    # -- the cashier -----------------------------------------------------------------------

    def step(self) -> None:
        """One cashier action (a few messages at most), after any stored reversal."""
        if not self._flush_reversal():
            return
        action = (self._opening.pop(0) if self._opening
                  else self.rng.choices(self._actions, self._weights)[0])
        getattr(self, f"_do_{action}")()

    def _card(self, role: CardRole) -> SimCard:
        return self.cards[role]

    def _sale_with(self, card: SimCard, amount: int | None = None, *, pin: str | None = None,
                   expiry: str = "3012", abandon: bool = False,
                   note: str = "") -> Answer | None:
        typed = pin if pin is not None else card.pin
        out = self.client.prepare(K.SALE, pan=card.pan, amount_minor=amount or _amount(self.rng),
                                  pin=typed, expiry=expiry)
        return self._exchange(out, abandon=abandon, note=note)

    def _do_sale(self) -> None:
        self._sale_with(self._card(CardRole.DEBIT))

    def _do_sale_credit(self) -> None:
        self._sale_with(self._card(CardRole.CREDIT))

    def _do_sale_foreign(self) -> None:
        self._sale_with(self._card(CardRole.FOREIGN))

    def _open(self, kind: MessageKind, current_batch: bool = True) -> list[LocalTxn]:
        return [t for t in self.client.journal if t.kind is kind and t.status == "approved"
                and (not current_batch or t.batch_no == self.client.batch_no)]

    def _do_void(self) -> None:
        sales = [t for t in self._open(K.SALE) if id(t) not in self._refunded]
        if not sales:
            return self._do_sale()
        original = sales[-1] if self.rng.random() < 0.7 else self.rng.choice(sales)
        self._exchange(self.client.prepare(K.VOID, amount_minor=original.amount_minor,
                                           original=original))
        return None

    def _do_refund(self) -> None:
        sales = [t for t in self._open(K.SALE, current_batch=False)
                 if t.amount_minor - self._refunded.get(id(t), 0) > 0]
        if not sales:
            return self._do_sale()
        original = self.rng.choice(sales)
        left = original.amount_minor - self._refunded.get(id(original), 0)
        amount = left if self.rng.random() < 0.3 else max(1, left // self.rng.randint(2, 5))
        answer = self._exchange(self.client.prepare(K.REFUND, amount_minor=amount,
                                                    original=original))
        if answer is not None and answer.approved:
            self._refunded[id(original)] = self._refunded.get(id(original), 0) + amount
        return None

    def _do_preauth(self) -> None:
        role = CardRole.DEBIT if self.rng.random() < 0.6 else CardRole.CREDIT
        card = self._card(role)
        self._exchange(self.client.prepare(K.PREAUTH, pan=card.pan,
                                           amount_minor=_amount(self.rng) * 2, pin=card.pin))

    def _do_completion(self) -> None:
        holds = self._open(K.PREAUTH, current_batch=False)
        if not holds:
            return self._do_preauth()
        hold = holds[0]
        amount = max(1, int(hold.amount_minor * self.rng.uniform(0.6, 1.0)))
        self._exchange(self.client.prepare(K.COMPLETION, amount_minor=amount, original=hold))
        return None

    def _do_preauth_void(self) -> None:
        holds = self._open(K.PREAUTH, current_batch=False)
        if not holds:
            return self._do_preauth()
        hold = holds[-1]
        self._exchange(self.client.prepare(K.PREAUTH_VOID, amount_minor=hold.amount_minor,
                                           original=hold))
        return None

    def _do_completion_void(self) -> None:
        done = self._open(K.COMPLETION)
        if not done:
            return self._do_completion()
        completion = done[-1]
        self._exchange(self.client.prepare(K.COMPLETION_VOID,
                                           amount_minor=completion.amount_minor,
                                           original=completion))
        return None

    def _do_balance(self) -> None:
        card = self._card(CardRole.DEBIT)
        self._exchange(self.client.prepare(K.BALANCE_INQUIRY, pan=card.pan, pin=card.pin))

    def _do_wrong_pin(self) -> None:
        """The holder of the forgetful card types a wrong PIN, then maybe the right one."""
        card = self._card(CardRole.FORGETFUL)
        amount = _amount(self.rng)
        for attempt in range(3):
            wrong = attempt == 0 or self.rng.random() < 0.4
            answer = self._sale_with(card, amount, pin=WRONG_PIN if wrong else card.pin,
                                     note=" (wrong PIN typed)" if wrong else "")
            if answer is None or answer.code != "55":
                break
        if answer is not None and answer.code == "75":
            # The holder goes to the bank, which unlocks the card (its money stays).
            reset_card(self._sim, card, keep_balance=True)
            self.tally.card_unlocks += 1

    def _do_insufficient_funds(self) -> None:
        self._sale_with(self._card(CardRole.LOW_FUNDS),
                        LOW_FUNDS_AMOUNT_MINOR + _amount(self.rng))

    def _do_declined_card(self) -> None:
        if self.rng.random() < 0.5:
            self._sale_with(_demo_card(_LOST_CARD), pin=_LOST_CARD.pin)
        else:
            self._sale_with(_demo_card(_EXPIRED_CARD), pin=_EXPIRED_CARD.pin,
                            expiry=_EXPIRED_CARD.expiry)

    def _do_big_ticket(self) -> None:
        self._sale_with(self._card(CardRole.DEBIT), BIG_TICKET_MINOR)

    def _do_timeout(self) -> None:
        """A sale the issuer answers too late for this terminal (one at a time per run)."""
        if not self._fault_lock.acquire(blocking=False):
            return self._do_sale()
        try:
            latency_ms = int((self.config.timeout_s + LATE_MARGIN_S) * MS)
            self._sim.inject(FaultKind.LATE_ANSWER, 1, latency_ms=latency_ms)
            self.tally.timeouts_injected += 1
            self._sale_with(self._card(CardRole.DEBIT), note=" (issuer answered late)")
        finally:
            self._fault_lock.release()
        return None

    def _do_drop(self) -> None:
        """Send a sale and lose the connection at once; reconnect after a reboot."""
        self.tally.drops += 1
        self._sale_with(self._card(CardRole.DEBIT), abandon=True)
        time.sleep(REBOOT_S)

    # -- batch close ----------------------------------------------------------------------

    def _ready(self) -> bool:
        """Signed on with no stored reversal left (a few tries): ready for a batch close."""
        for _ in range(FINAL_TRIES):
            if (self._signed_on or self._sign_on()) and self._flush_reversal():
                return True
        return False

    def close_batch(self, *, lose_one: bool = False) -> BatchVerdict | None:
        """0500 with the journal's totals; on "not balanced" the 0320 upload. Then the
        host's stored totals of the batch are read back and compared with the journal.

        The host closes the batch whatever its verdict, so the terminal moves on to the
        next batch number after any approved 0500 (a repeated 0500 gets the first answer,
        so one that was not answered is simply sent again).
        """
        if not self._ready():
            return None
        client = self.client
        mid, tid = self.profile.merchant_id, self.profile.terminal_id
        batch_no = f"{client.batch_no:06d}"
        true_totals = totals_dict(client.totals())
        expected_flags: dict[str, list[str]] = {}
        if lose_one and client.counted():
            lost = client.counted()[-1]
            client.journal.remove(lost)  # as after a power cut that lost the last record
            expected_flags = {"host_only": [f"{lost.trace:06d}"]}
        settlement = client.prepare_settlement()
        answer = None
        for _ in range(FINAL_TRIES):
            answer = self._exchange(settlement)
            if answer is not None or not self._ready():
                break
        verdict = BatchVerdict(mid, tid, batch_no, answer.code if answer else NO_ANSWER,
                               answer.balanced if answer else None, not expected_flags,
                               true_totals, expected_flags=expected_flags)
        self.batches.append(verdict)
        if answer is None or not answer.approved:
            return verdict
        if answer.balanced is False:
            for message in client.prepare_uploads():
                upload = self._exchange(message)
                verdict.upload_codes.append(upload.code if upload else NO_ANSWER)
        client.next_batch()
        self._prune()
        self._last_close = time.monotonic()
        host_totals = terminal_queries.host_batch_totals(self.ctx, SYSTEM, mid, tid, batch_no)
        if host_totals is not None:
            verdict.host_totals = totals_dict(parse_settlement_totals(host_totals))
        for flag in terminal_batches.batch_flags(self.ctx, SYSTEM, mid, tid, batch_no,
                                                 open_only=False):
            verdict.flags.setdefault(flag.kind, []).append(flag.stan)
        fine = verdict.verdict_ok and verdict.totals_ok and verdict.flags_ok
        log.log(logging.INFO if fine else logging.WARNING,
                "terminal %s batch %s closed: %s (expected %s)%s", tid, batch_no,
                verdict.verdict, "balanced" if verdict.expected_balanced else "not balanced",
                f"; upload flags {verdict.flags}" if verdict.flags else "")
        return verdict

    def _prune(self) -> None:
        """Keep the open pre-authorizations and the last approved sales of closed batches
        (for refunds); forget the rest of the closed batches."""
        journal = self.client.journal
        current = self.client.batch_no
        old_sales = [t for t in journal if t.batch_no != current and t.kind is K.SALE
                     and t.status == "approved"][-KEPT_OLD_SALES:]
        keep = {id(t) for t in old_sales}
        self.client.journal = [t for t in journal if t.batch_no == current or id(t) in keep
                               or (t.kind is K.PREAUTH and t.status == "approved")]
        self._refunded = {k: v for k, v in self._refunded.items()
                          if k in {id(t) for t in self.client.journal}}

    def batch_due(self) -> bool:
        every = self.config.batch_every_s
        return len(self.client.counted()) >= self.config.batch_count_max or (
            every is not None and time.monotonic() - self._last_close >= every)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, deadline: float | None, stop: threading.Event) -> None:
        rate = self.rate
        next_at = time.monotonic() + (self.rng.expovariate(rate) if rate > 0 else 0.0)
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if not self._signed_on:
                    if not self._sign_on():
                        self._pause(stop, deadline)
                        continue
                    next_at = max(next_at, time.monotonic())
                delay = next_at - time.monotonic()
                if delay > 0 and _wait(stop, deadline, delay):
                    break
                now = time.monotonic()
                next_at = max(next_at, now - 1.0) + (self.rng.expovariate(rate)
                                                     if rate > 0 else 1.0)
                if self.batch_due():
                    self.close_batch()
                if self._signed_on:
                    self.step()
            if deadline is not None and not stop.is_set():
                self.close_batch(lose_one=self.index < self.config.unbalanced)
                if self.config.sign_off and self._signed_on:
                    self._exchange(self.client.prepare_network(K.SIGN_OFF))
            elif self._signed_on and self.client.pending_reversal is not None:
                # Stopped with a reversal in store: a real terminal keeps it in flash; this
                # one lives in memory, so it gets one chance now.
                self._flush_reversal()
        except Exception as exc:  # one terminal's bug must not end the others
            self.tally.errors.append(f"{self.terminal_id}: {type(exc).__name__}: {exc}")
            log.exception("terminal %s: simulator failure", self.terminal_id)
        finally:
            self.client.close()

    def _pause(self, stop: threading.Event, deadline: float | None) -> None:
        _wait(stop, deadline, self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)


def _wait(stop: threading.Event, deadline: float | None, seconds: float) -> bool:
    """Sleep up to ``seconds``, less if the run ends first; True when it ended."""
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    if stop.wait(seconds):
        return True
    return deadline is not None and time.monotonic() >= deadline


def _demo_card(card: Any) -> SimCard:
    return SimCard(CardRole.DEBIT, card.pan, card.pin, card.kind, card.balance_minor,
                   card.credit_limit_minor)


def _what(terminal_id: str, kind: str, amount_minor: int, pan: str | None) -> str:
    """``HL000001 sale 128.00 622202*********5679`` (what a log line is about)."""
    parts = [terminal_id, kind]
    if amount_minor:
        parts.append(f"{amount_minor / 100:,.2f}")
    if pan:
        parts.append(mask_pan(pan))
    return " ".join(parts)


def _pending(client: TerminalClient) -> str:
    return "; reversal stored" if client.pending_reversal is not None else ""


# -- the run ---------------------------------------------------------------------------------

def _checks(terminals: list[SimTerminal], tally: Tally, batches: list[BatchVerdict],
            finite: bool) -> list[Check]:
    checks = []
    never = [t.terminal_id for t in terminals if t.tally.sign_ons == 0]
    checks.append(Check("sign-on", not never,
                        f"not signed on: {', '.join(never)}" if never
                        else f"{len(terminals)} terminal(s) signed on"))
    if finite:
        closed = {(b.merchant_id, b.terminal_id) for b in batches}
        missing = [t.terminal_id for t in terminals
                   if (t.profile.merchant_id, t.profile.terminal_id) not in closed]
        bad = [f"{b.terminal_id}/{b.batch_no}: {b.verdict}" for b in batches
               if not b.verdict_ok]
        checks.append(Check("batch verdicts", not bad and not missing,
                            "; ".join(bad + [f"{m}: no batch close" for m in missing])
                            or f"{len(batches)} batch close(s) as expected"))
        bad_totals = [f"{b.terminal_id}/{b.batch_no}: host {b.host_totals} vs terminal "
                      f"{b.terminal_totals}" for b in batches if b.code == "00"
                      and not b.totals_ok]
        checks.append(Check("host totals", not bad_totals, "; ".join(bad_totals) or
                            "the host's stored totals of every batch equal the journal"))
        bad_flags = [f"{b.terminal_id}/{b.batch_no}: {b.flags} (expected {b.expected_flags})"
                     for b in batches if b.code == "00" and not b.flags_ok]
        checks.append(Check("upload flags", not bad_flags, "; ".join(bad_flags) or
                            "the batch uploads found exactly the expected differences"))
    checks.append(Check("answer MACs", tally.mac_failures == 0,
                        f"{tally.mac_failures} answer(s) with a wrong MAC"))
    checks.append(Check("protocol", not tally.protocol_errors,
                        "; ".join(tally.protocol_errors[:10]) or "no protocol error answered"))
    pending = [t.terminal_id for t in terminals if t.client.pending_reversal is not None]
    if finite:
        checks.append(Check("reversals", not pending,
                            f"still pending: {', '.join(pending)}" if pending
                            else "every stored reversal was acknowledged"))
    checks.append(Check("simulator", not tally.errors,
                        "; ".join(tally.errors[:5]) or "no failure"))
    return checks


def run_simulation(ctx: ServiceContext, fleet: Fleet, config: SimulationConfig,
                   stop: threading.Event | None = None,
                   on_start: Callable[[], None] | None = None) -> Summary:
    """Drive the fleet's terminals as ``config`` says; returns the summary with checks.

    With ``duration_s`` each terminal stops starting actions at the deadline, sends any
    stored reversal, closes its batch (uploading it when not balanced) and signs off.
    Without, the terminals run until ``stop`` is set and leave their batch open.
    """
    stop = stop or threading.Event()
    fault_lock = threading.Lock()
    finite = config.duration_s is not None
    terminals = []
    for index, profile in enumerate(fleet.profiles):
        cards = fleet.cards[(profile.merchant_id, profile.terminal_id)]
        terminals.append(SimTerminal(ctx, profile, cards, config, index, fault_lock,
                                     len(fleet.profiles)))
    started = time.monotonic()
    deadline = started + config.duration_s if config.duration_s is not None else None
    threads = [threading.Thread(target=t.run, args=(deadline, stop),
                                name=f"terminal-sim-{t.terminal_id}", daemon=True)
               for t in terminals]
    for thread in threads:
        thread.start()
    if on_start is not None:
        on_start()
    for thread in threads:
        thread.join()
    elapsed = (min(time.monotonic(), deadline) if deadline else time.monotonic()) - started
    tally = Tally()
    batches: list[BatchVerdict] = []
    for terminal in terminals:
        tally.merge(terminal.tally)
        batches.extend(terminal.batches)
    return Summary([t.terminal_id for t in terminals], elapsed, config.tps, tally, batches,
                   _checks(terminals, tally, batches, finite), list(fleet.skipped),
                   sum(1 for t in terminals if t.client.pending_reversal is not None))


# -- the demo fleet of `autosettle serve` --------------------------------------------------------

DEMO_BATCH_EVERY_S: Final = 300.0
DEMO_RETRY_S: Final = 30.0
DEMO_STOP_TIMEOUT_S: Final = 15.0


class DemoFleet:
    """The demo terminals, forever, at a cashier's pace, against the local terminal host.

    Started by ``autosettle serve`` when demo traffic is on. Each terminal pays about once
    every ``interval_s`` seconds and closes its batch every five minutes; one line per
    message is logged (logger ``autosettle.terminal_sim``). A demo terminal provisioned by
    an operator (whose TMK the simulator does not hold) is left out with one warning; a
    terminal that cannot sign on (its TMK reset) warns once and retries quietly.
    """

    def __init__(self, ctx: ServiceContext, host: str, port: int, interval_s: float,
                 seed: int | None = None) -> None:
        self.ctx = ctx
        self.host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.port = port
        self.interval_s = interval_s
        self.seed = seed
        self.summary: Summary | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="terminal-sim-fleet",
                                        daemon=True)

    def start(self) -> DemoFleet:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = DEMO_STOP_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _prepare(self) -> Fleet | None:
        warned = False
        while not self._stop.is_set():
            try:
                return prepare_fleet(self.ctx, skip_not_ours=True)
            except AutosettleError as exc:
                if not warned:
                    log.warning("demo fleet: %s; retrying every %g s", exc.message,
                                DEMO_RETRY_S)
                    warned = True
            except Exception:
                log.exception("demo fleet: could not prepare the demo terminals")
                return None
            self._stop.wait(DEMO_RETRY_S)
        return None

    def _run(self) -> None:
        fleet = self._prepare()
        if fleet is None:
            return
        try:
            for reason in fleet.skipped:
                log.warning("demo fleet: left out: %s", reason)
            if not fleet.profiles:
                log.warning("demo fleet: no demo terminal to drive")
                return
            log.info("demo fleet: %d terminal(s) (%s) paying about every %g s each "
                     "over ISO 8583 to %s:%d", len(fleet.profiles),
                     ", ".join(p.terminal_id for p in fleet.profiles), self.interval_s,
                     self.host, self.port)
            config = SimulationConfig(
                tps=len(fleet.profiles) / self.interval_s, duration_s=None, host=self.host,
                port=self.port, seed=self.seed, batch_every_s=DEMO_BATCH_EVERY_S,
                sign_off=False, log_level=logging.INFO)
            self.summary = run_simulation(self.ctx, fleet, config, self._stop)
        finally:
            fleet.release()
