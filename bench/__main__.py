"""The runner: ``python -m bench [names...] [--quick] [--json] [--sqlite-only] [--list]``.

Runs the named benchmarks (all when none is named), prints one table per benchmark with our
rate, the reference rate of the same run and their ratio, then the machine facts; writes
``bench/results/<name>-<UTC timestamp>.json`` for each benchmark. ``--json`` prints the
same JSON on stdout instead of the tables (progress always goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.core import BenchConfig, BenchReport, load_average, machine_info
from bench.registry import BENCHMARKS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIB_BYTES = 2**20
EXIT_USAGE = 2
CONSOLE_WIDTH_PIPED = 120


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run autosettle benchmarks. No timing "
        "assertions: numbers are reported next to a reference measured in the same run.")
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, finishes in seconds (smoke test)")
    parser.add_argument("--json", action="store_true", dest="as_json",
                        help="print the results as JSON on stdout instead of tables")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _table(report: BenchReport) -> Table:
    table = Table(title=f"{report.name}: {report.description}", title_justify="left")
    units = {m.unit for m in report.measurements}
    latency = any(m.p50_ms is not None for m in report.measurements)
    items = units.pop() if len(units) == 1 else "items"
    for column in ("database", "case", items, "ours s", "ours /s"):
        table.add_column(column, justify="left" if column in ("database", "case") else "right")
    for column in (("p50 ms", "p99 ms") if latency else ()):
        table.add_column(column, justify="right")
    for column in ("reference /s", "ours/ref", "peak RSS"):
        table.add_column(column, justify="right")
    for m in report.measurements:
        percentiles = [f"{v:.1f}" if v is not None else "" for v in (m.p50_ms, m.p99_ms)]
        table.add_row(m.database, m.case, f"{m.items:,}", f"{m.seconds:.2f}",
                      f"{m.rate_per_s:,.0f}", *(percentiles if latency else []),
                      f"{m.reference_rate_per_s:,.0f}", f"{m.ratio:.2f}",
                      f"{m.peak_rss_bytes / MIB_BYTES:.0f} MiB")
    return table


def _print_report(console: Console, report: BenchReport) -> None:
    console.print(_table(report))
    for m in report.measurements:
        console.print(f"  [dim]{m.database} / {m.case}: reference = {m.reference}; "
                      f"{m.notes}[/dim]")
    for note in report.notes:
        console.print(f"  note: {note}")


def _print_machine(console: Console, machine: dict[str, Any]) -> None:
    console.print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()))


def _write(report: BenchReport, document: dict[str, Any], stamp: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{report.name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console()
    if not out.is_terminal:
        out = Console(width=CONSOLE_WIDTH_PIPED)
    err = Console(stderr=True)
    if args.list:
        for name, benchmark in BENCHMARKS.items():
            summary = (sys.modules[benchmark.__module__].__doc__ or "").strip().splitlines()
            out.print(f"{name:<16} {summary[0] if summary else ''}")
        return 0
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        err.print(f"unknown benchmark(s): {', '.join(unknown)}; "
                  f"known: {', '.join(BENCHMARKS)}")
        return EXIT_USAGE
    config = BenchConfig(quick=args.quick, sqlite_only=args.sqlite_only,
                         progress=lambda message: err.print(f"[dim]… {message}[/dim]"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    documents = []
    for name in args.names or list(BENCHMARKS):
        load_before = load_average()
        report = BENCHMARKS[name](config)
        machine = machine_info(report.facts.get("postgresql_version"))
        machine["load_average_1m_before"] = load_before
        document = {"benchmark": report.as_dict(), "machine": machine, "quick": args.quick,
                    "sqlite_only": args.sqlite_only, "started_utc": stamp}
        path = _write(report, document, stamp)
        documents.append(document)
        if not args.as_json:
            _print_report(out, report)
            _print_machine(out, machine)
            out.print(f"results written to {path}")
        else:
            err.print(f"results written to {path}")
    if args.as_json:
        sys.stdout.write(json.dumps(documents, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
