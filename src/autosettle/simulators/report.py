"""What a terminal simulator run saw: tallies, batch close verdicts, checks, the summary.

Pure bookkeeping (no I/O); :mod:`autosettle.simulators.terminal` fills it in.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

from autosettle.domain.iso8583.fields import SettlementTotals
from autosettle.terminal_host.messages import FINANCIAL_BY_KIND, MessageKind

K = MessageKind
LATENCIES_KEPT: Final = 200_000
MS: Final = 1000.0


@dataclass
class KindTally:
    sent: int = 0
    answered: int = 0
    no_answer: int = 0
    approved: int = 0
    approved_minor: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def merge(self, other: KindTally) -> None:
        self.sent += other.sent
        self.answered += other.answered
        self.no_answer += other.no_answer
        self.approved += other.approved
        self.approved_minor += other.approved_minor
        self.codes.update(other.codes)


@dataclass
class Tally:
    """What one terminal saw (merged into the run's summary at the end)."""

    kinds: dict[str, KindTally] = field(default_factory=dict)
    codes: Counter[str] = field(default_factory=Counter)
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))
    sale_latencies_s: deque[float] = field(
        default_factory=lambda: deque(maxlen=LATENCIES_KEPT))
    mac_failures: int = 0
    timeouts_injected: int = 0
    drops: int = 0
    card_unlocks: int = 0
    protocol_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sign_ons: int = 0
    sign_on_failures: list[str] = field(default_factory=list)
    recovered: int = 0

    def kind(self, name: str) -> KindTally:
        return self.kinds.setdefault(name, KindTally())

    def merge(self, other: Tally) -> None:
        for name, tally in other.kinds.items():
            self.kind(name).merge(tally)
        self.codes.update(other.codes)
        self.latencies_s.extend(other.latencies_s)
        self.sale_latencies_s.extend(other.sale_latencies_s)
        for name in ("mac_failures", "timeouts_injected", "drops", "card_unlocks",
                     "sign_ons", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.protocol_errors.extend(other.protocol_errors)
        self.errors.extend(other.errors)
        self.sign_on_failures.extend(other.sign_on_failures)


def totals_dict(totals: SettlementTotals) -> dict[str, dict[str, int]]:
    return {name: {"debit_count": block.debit_count,
                   "debit_amount_minor": block.debit_amount_minor,
                   "credit_count": block.credit_count,
                   "credit_amount_minor": block.credit_amount_minor}
            for name, block in (("domestic", totals.domestic), ("foreign", totals.foreign))}


@dataclass
class BatchVerdict:
    """One batch close: the host's verdict, the expected one, and the totals both sides."""

    merchant_id: str
    terminal_id: str
    batch_no: str
    code: str
    balanced: bool | None
    expected_balanced: bool
    terminal_totals: dict[str, dict[str, int]]
    host_totals: dict[str, dict[str, int]] | None = None
    upload_codes: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)
    expected_flags: dict[str, list[str]] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.balanced is None:
            return f"no verdict ({self.code})"
        return "balanced" if self.balanced else "not balanced"

    @property
    def verdict_ok(self) -> bool:
        return self.code == "00" and self.balanced is self.expected_balanced and (
            self.balanced or all(code == "00" for code in self.upload_codes))

    @property
    def totals_ok(self) -> bool:
        return self.host_totals == self.terminal_totals

    @property
    def flags_ok(self) -> bool:
        return self.flags == self.expected_flags

    def as_dict(self) -> dict[str, Any]:
        return {"merchant_id": self.merchant_id, "terminal_id": self.terminal_id,
                "batch_no": self.batch_no, "code": self.code, "verdict": self.verdict,
                "expected": "balanced" if self.expected_balanced else "not balanced",
                "terminal_totals": self.terminal_totals, "host_totals": self.host_totals,
                "upload_codes": self.upload_codes, "flags": self.flags,
                "expected_flags": self.expected_flags,
                "ok": self.verdict_ok and self.totals_ok and self.flags_ok}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in milliseconds (None without values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] * MS


@dataclass
class Summary:
    """What a run did and whether its totals agree with the host's answers."""

    terminals: list[str]
    duration_s: float
    tps_target: float
    tally: Tally
    batches: list[BatchVerdict]
    checks: list[Check]
    skipped: list[str] = field(default_factory=list)
    pending_reversals: int = 0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def financial_sent(self) -> int:
        return sum(t.sent for name, t in self.tally.kinds.items()
                   if K(name) in FINANCIAL_BY_KIND)

    @property
    def tps_achieved(self) -> float:
        return self.financial_sent / self.duration_s if self.duration_s > 0 else 0.0

    def latency(self) -> dict[str, float | None]:
        answered, sales = list(self.tally.latencies_s), list(self.tally.sale_latencies_s)
        return {"p50_ms": percentile_ms(answered, 0.50),
                "p99_ms": percentile_ms(answered, 0.99),
                "max_ms": max(answered) * MS if answered else None,
                "sale_p50_ms": percentile_ms(sales, 0.50),
                "sale_p99_ms": percentile_ms(sales, 0.99)}

    def approved_minor(self) -> dict[str, int]:
        return {name: t.approved_minor for name, t in sorted(self.tally.kinds.items())
                if K(name) in FINANCIAL_BY_KIND and t.approved}

    def as_dict(self) -> dict[str, Any]:
        tally = self.tally
        latency = self.latency()
        return {
            "ok": self.ok,
            "terminals": self.terminals,
            "duration_s": round(self.duration_s, 3),
            "tps_target": self.tps_target,
            "tps_achieved": round(self.tps_achieved, 2),
            "financial_messages": self.financial_sent,
            "response_codes": dict(sorted(tally.codes.items())),
            "messages": {name: {"sent": t.sent, "answered": t.answered,
                                "no_answer": t.no_answer, "approved": t.approved,
                                "approved_minor": t.approved_minor,
                                "codes": dict(sorted(t.codes.items()))}
                         for name, t in sorted(tally.kinds.items())},
            "approved_minor": self.approved_minor(),
            "latency_ms": {k: round(v, 3) if v is not None else None
                           for k, v in latency.items()},
            "faults": {"timeouts_injected": tally.timeouts_injected,
                       "dropped_connections": tally.drops,
                       "cards_unlocked_after_75": tally.card_unlocks},
            "reversals": {"sent": tally.kind(K.REVERSAL.value).sent,
                          "acknowledged": tally.kind(K.REVERSAL.value).codes.get("00", 0),
                          "pending_at_end": self.pending_reversals},
            "recovered_journal_entries": tally.recovered,
            "batches": [b.as_dict() for b in self.batches],
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "skipped": self.skipped,
            "errors": tally.errors[:20],
        }


