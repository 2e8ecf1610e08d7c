"""The benchmarks ``python -m bench`` knows, by name, in the order they run by default."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bench import (
    console,
    ledger_post,
    payments,
    printing,
    recon,
    reports,
    risk,
    settlement,
    terminal_host,
)
from bench.core import BenchConfig, BenchReport

Benchmark = Callable[[BenchConfig], BenchReport]

BENCHMARKS: Mapping[str, Benchmark] = {
    ledger_post.NAME: ledger_post.run,
    settlement.NAME: settlement.run,
    payments.NAME: payments.run,
    terminal_host.NAME: terminal_host.run,
    reports.NAME: reports.run,
    printing.NAME: printing.run,
    risk.NAME: risk.run,
    console.NAME: console.run,
    recon.NAME: recon.run,
}
