"""Reconciliation (对账): import the other side's files, match them against our records,
work the discrepancies, close the business date (docs/reconciliation.md).

* :func:`import_file` — one file of a source (``acp``, ``statement-csv``, ``bank`` or one
  of ``AUTOSETTLE_RECON_SOURCES_FILE``), streamed, in one transaction: refused when the same
  content was imported before; rejected whole (nothing stored) on a truncated file, wrong
  control totals, or bad lines under the ``reject`` policy; otherwise stored, with bad
  lines quarantined (number and reason) under ``quarantine``.
* :func:`run_day` — match a channel's (or the bank's) lines of a business date against our
  records; store matches and discrepancies; post what the channel pays against the channel
  receivable (only matched amounts), confirm paid payouts and fail returned ones.
* :func:`resolve` / :func:`assign` — the discrepancy queue's actions, each audited.
* :func:`close_day` — a business date closes when all its discrepancies are resolved; a
  closed date cannot change (no import, run or action touches it again).
* :func:`summary` / :func:`export_summary` — the daily summary, CSV or XLSX. (It lives here,
  not in a reports package: the summary is the reconciliation's own.)
"""

from __future__ import annotations

import csv
import hashlib
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.errors import (
    AlreadyExists,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from autosettle.domain.ledger import JournalEntry
from autosettle.domain.money import Money, currency
from autosettle.domain.payouts import PayoutStatus
from autosettle.domain.recon import (
    AMOUNT_AGREES,
    DISCREPANCY_CLASSES,
    DiscrepancyRecord,
    ReasonCode,
    Resolution,
    ResultClass,
    State,
    TolerantRules,
    adjustment_entry,
    age_days,
    ageing_bucket,
    allowed_resolutions,
    can_close,
    clearing_entry,
    fee_adjustment_entry,
    require_open_day,
)
from autosettle.domain.recon_layouts import SourceSpec, sources_from_dict
from autosettle.private_files import open_private_binary, open_private_text, private_dir
from autosettle.services import payouts as payout_service
from autosettle.services.audit import history as audit_history
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.recon_match import match
from autosettle.services.recon_parse import ParseReport, parse_file
from autosettle.store.recon import MATCH_LINE_COLUMNS
from autosettle.store.uow import UnitOfWork

BANK_CHANNEL = "bank"
TERMINAL_CHANNEL = "terminal"
"""The terminals' own batch totals (0500) against our transactions."""
_FLAG_CLASSES = {"terminal_only": ResultClass.THEIRS_ONLY, "host_only": ResultClass.OURS_ONLY,
                 "mismatch": ResultClass.AMOUNT_MISMATCH}
HASH_BLOCK = 1024 * 1024


# -- sources ----------------------------------------------------------------------------------

def sources(ctx: ServiceContext) -> dict[str, SourceSpec]:
    """The built-in sources plus those of ``AUTOSETTLE_RECON_SOURCES_FILE``."""
    found = builtin_sources()
    extra = ctx.settings.recon_sources_file
    if extra is not None:
        try:
            found.update(sources_from_dict(tomllib.loads(Path(extra).read_text("utf-8"))))
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
            raise ValidationError(f"recon sources file {extra}: {exc}") from None
    return found


def source(ctx: ServiceContext, name: str) -> SourceSpec:
    found = sources(ctx)
    if name not in found:
        raise ValidationError(f"unknown source {name!r}; known: {', '.join(sorted(found))}")
    return found[name]


# -- import -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ImportResult:
    file_id: int | None
    source: str
    channel: str
    file_date: date | None
    lines: int
    imported: int
    bad: list[tuple[int, str]]
    problems: list[str]
    accepted: bool
    duplicate_of: int | None = None


class ImportRejected(ValidationError):
    """The file was not imported; ``result`` says why (bad lines, control totals...)."""

    def __init__(self, message: str, result: ImportResult) -> None:
        super().__init__(message)
        self.result = result


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def import_file(ctx: ServiceContext, who: Principal, path: Path, source_name: str, *,
                file_date: date | None = None,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import one file (operator). See the module's docstring for what is refused."""
    who.require_operator()
    spec = source(ctx, source_name)
    if not path.is_file():
        raise NotFoundError(f"no file {path}")
    digest = content_hash(path)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        seen = uow.recon.file_by_hash(spec.name, digest)
    if seen is not None:
        raise AlreadyExists(f"{path.name} was imported already (file {seen.file_id}, "
                            f"{seen.file_name}, {seen.imported_at:%Y-%m-%d %H:%M} UTC)")
    report: ParseReport | None = None
    try:
        with ctx.db.unit_of_work() as uow:
            file_id = uow.recon.add_file(source=spec.name, channel=spec.channel,
                                         file_name=path.name, content_hash=digest,
                                         file_date=file_date, line_count=0, total_minor=0,
                                         bad_count=0, at=now, by=who.actor)
            state: dict[str, Any] = {"date": file_date}

            def store(frame: pl.DataFrame) -> None:
                assert report_box
                if state["date"] is None:
                    header_date = report_box[0].header.get("file_date")
                    first_date: Any = header_date or frame["line_date"].min()
                    state["date"] = first_date
                    _require_day_open(uow, spec.channel, first_date)
                uow.recon.write_frame("recon_lines", frame.with_columns(
                    pl.lit(file_id).alias("file_id"), pl.lit(spec.channel).alias("channel"),
                    pl.lit(state["date"], pl.Date).alias("file_date")))

            report_box: list[ParseReport] = [ParseReport(file_date=file_date)]
            report = parse_file(path, spec, store, file_date=file_date, progress=progress,
                                report=report_box[0])
            report.file_date = report.file_date or state["date"]
            problems = list(report.problems)
            if report.bad and spec.on_bad_lines == "reject":
                problems.append(f"{len(report.bad)} bad line(s); this source rejects the "
                                "whole file")
            if report.good == 0 and not problems:
                problems.append("no good lines")
            result = ImportResult(file_id if not problems else None, spec.name, spec.channel,
                                  report.file_date, report.lines,
                                  report.good if not problems else 0, report.bad, problems,
                                  accepted=not problems)
            if problems:
                raise ImportRejected("; ".join(problems), result)
            if report.file_date is not None:
                _require_day_open(uow, spec.channel, report.file_date)
            uow.recon.add_quarantine(file_id, report.bad)
            uow.recon.set_file(file_id, file_date=report.file_date, line_count=report.lines,
                               total_minor=report.total_minor, bad_count=len(report.bad))
            record(uow, who, "recon.import", f"recon/files/{file_id}", now,
                   detail={"source": spec.name, "file": path.name, "lines": report.lines,
                           "quarantined": len(report.bad)})
            return result
    except ImportRejected as rejected:
        with ctx.db.unit_of_work() as uow:
            record(uow, who, "recon.import", f"recon/sources/{spec.name}", now,
                   outcome="rejected", detail={"file": path.name,
                                               "problems": rejected.result.problems[:20],
                                               "bad_lines": len(rejected.result.bad)})
        raise


def _require_day_open(uow: UnitOfWork, channel: str, on: date) -> None:
    day = uow.recon.day(channel, on)
    if day is not None:
        require_open_day(day.state, channel, on)


# -- matching ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RunResult:
    channel: str
    business_date: date
    ours: int
    theirs: int
    counts: dict[str, int]
    cleared_minor: int
    auto_resolved: int
    timings: dict[str, float] = field(default_factory=dict)


def channels(ctx: ServiceContext) -> list[str]:
    return sorted({s.channel for s in sources(ctx).values()})


def _keys(ctx: ServiceContext, channel: str) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for spec in sources(ctx).values():
        if spec.channel == channel:
            keys.extend(k for k in spec.keys if k not in keys)
    return keys or [("order_ref",)]


def run_day(ctx: ServiceContext, who: Principal, on: date, channel: str,
            clock: Callable[[], float] | None = None) -> RunResult:
    """Reconcile ``channel`` (or ``bank``) for business date ``on`` (operator). Running it
    again replaces the day's matches and open discrepancies (resolved ones stay)."""
    who.require_operator()
    if channel == BANK_CHANNEL:
        return _run_bank(ctx, who, on)
    if channel == TERMINAL_CHANNEL:
        return _run_terminal(ctx, who, on)
    keys = _keys(ctx, channel)
    rules = TolerantRules(time_window_s=ctx.settings.recon_time_window_s)
    now = ctx.now()
    timings: dict[str, float] = {}
    tick = clock or (lambda: 0.0)
    with ctx.db.unit_of_work() as uow:
        day = uow.recon.day(channel, on, lock=True)
        if day is not None:
            require_open_day(day.state, channel, on)
        t0 = tick()
        carried = uow.recon.carried_txn_ids(channel, on)
        reversals = uow.recon.carried_reversals(channel, on)
        ours = uow.recon.our_records(channel, on, [*carried, *(r[0] for r in reversals)])
        theirs = uow.recon.lines(channel, on, MATCH_LINE_COLUMNS)
        t1 = tick()
        result = match(ours, theirs, keys, rules)
        ours_count, theirs_count, cur = ours.height, theirs.height, currency(
            _currency(ours, theirs))
        del ours, theirs  # the narrowed copies in ``result`` are all that is needed now
        result = result.narrow()
        reversed_late = _reversed_late(result, reversals, on)
        matches, found = _result_frames(result, channel, on, now, reversed_late)
        t2 = tick()
        replaced = uow.recon.replace_results(channel, on, matches.frames(), found,
                                             match_count=matches.height)
        written = replaced.written
        paired = result.pairs["o_idx"]
        late = paired.filter(result.ours["business_date"].gather(paired) < on)
        auto = uow.recon.resolve_ours_only(channel, result.ours["txn_id"].gather(late).to_list(),
                                           f"its line came on {on.isoformat()}", now)
        auto += uow.recon.resolve_ours_only(
            channel, result.ours["txn_id"].gather(reversed_late["o_idx"]).to_list(),
            f"the channel's line of {on.isoformat()} reverses it; the money agrees", now,
            klass="status_mismatch", before=on)
        cleared = _cleared(matches.amount_minor(), found)
        before = day.cleared_minor if day is not None else 0
        runs = (day.runs if day is not None else 0) + 1
        entry = clearing_entry(f"recon:{channel}:{on.isoformat()}:cleared:{runs}",
                               Money(cleared - before, cur), f"recon:{channel}:{on.isoformat()}")
        if entry is not None:
            uow.ledger.post(entry, now)
        uow.recon.save_day(channel, on, {"state": "reconciled", "matched_count": matches.height,
                                         "cleared_minor": cleared, "currency": cur.code,
                                         "runs": runs, "run_at": now,
                                         "first_match_id": replaced.first_match_id,
                                         "last_match_id": replaced.last_match_id})
        counts = _class_counts(result.pairs, result.ours_only.height,
                               result.theirs_only.height)
        benign = int(found.filter(pl.col("state") == "resolved").height)
        # every closure audited: the run's record names what it resolved by itself
        record(uow, who, "recon.run", f"recon/{channel}/{on.isoformat()}", now,
               detail={"counts": counts, "written": written, "cleared_minor": cleared,
                       "auto_resolved_new": benign,
                       "auto_resolved_earlier": auto[:100]})
        timings.update(load=t1 - t0, match=t2 - t1, store=tick() - t2)
    return RunResult(channel, on, ours_count, theirs_count, counts, cleared,
                     len(auto) + benign, timings)


def _currency(ours: pl.DataFrame, theirs: pl.DataFrame) -> str:
    for frame in (ours, theirs):
        if frame.height:
            return str(frame["currency"][0])
    return "CNY"


def _class_counts(pairs: pl.DataFrame, ours_only: int, theirs_only: int) -> dict[str, int]:
    counts = {c.value: 0 for c in ResultClass}
    for klass, n in pairs.group_by("klass").len().iter_rows():
        counts[klass] = int(n)
    counts["ours_only"] = ours_only
    counts["theirs_only"] = theirs_only
    return counts


def _cleared(matched_minor: int, found: pl.DataFrame) -> int:
    """What the channel pays for the day: matched pairs (``matched_minor``), plus pairs
    whose money agrees but whose fee or day does not."""
    total = matched_minor
    agree = found.filter(pl.col("klass").is_in([c.value for c in AMOUNT_AGREES]))
    return total + int(agree["their_amount_minor"].sum() or 0)


_DISC_SCHEMA = ("channel", "business_date", "klass", "merchant_id", "txn_id", "line_id",
                "our_amount_minor", "their_amount_minor", "our_fee_minor", "their_fee_minor",
                "currency", "state", "owner", "resolution", "note", "created_at",
                "resolved_at")


def _reversed_late(result: Any, reversals: list[tuple[str, int]], on: date) -> pl.DataFrame:
    """(o_idx, t_idx) of the benign "reversal cleared the next day": an earlier day's
    status mismatch (the channel cleared a sale we had reversed) whose record now pairs
    with a line of ``on`` taking the same money back."""
    empty = pl.DataFrame(schema={"o_idx": pl.UInt32, "t_idx": pl.UInt32})
    if not reversals:
        return empty
    pairs = result.pairs.filter(pl.col("klass") == "status_mismatch").select("o_idx", "t_idx")
    if pairs.height == 0:
        return empty
    earlier = pl.DataFrame({"txn_id": [r[0] for r in reversals],
                            "cleared": [r[1] for r in reversals]},
                           schema={"txn_id": pl.Utf8, "cleared": pl.Int64})
    o, t = result.ours, result.theirs
    pairs = pairs.with_columns(
        o["txn_id"].gather(pairs["o_idx"]).alias("txn_id"),
        o["business_date"].gather(pairs["o_idx"]).alias("business_date"),
        o["live"].gather(pairs["o_idx"]).alias("live"),
        t["signed"].gather(pairs["t_idx"]).alias("t_signed"))
    found: pl.DataFrame = pairs.join(earlier, on="txn_id").filter(
        pl.col("business_date") < on, ~pl.col("live"),
        pl.col("t_signed") + pl.col("cleared") == 0).select("o_idx", "t_idx")
    return found


MATCH_SLICE = 100_000


@dataclass(frozen=True, slots=True)
class MatchRows:
    """A run's matched pairs; their rows as ``recon_matches`` stores them are made a slice
    at a time (:meth:`frames`) as they are written, never all at once: a day of a million
    matches is held as two indices and a rule each."""

    pairs: pl.DataFrame
    """o_idx, t_idx, rule."""
    result: Any
    channel: str
    on: date

    @property
    def height(self) -> int:
        return self.pairs.height

    def amount_minor(self) -> int:
        return int(self.result.ours["signed"].gather(self.pairs["o_idx"]).sum() or 0)

    def frames(self) -> Iterator[pl.DataFrame]:
        for start in range(0, self.height, MATCH_SLICE):
            yield self._rows(self.pairs.slice(start, MATCH_SLICE))

    def frame(self) -> pl.DataFrame:
        return self._rows(self.pairs)

    def _rows(self, part: pl.DataFrame) -> pl.DataFrame:
        o, t = self.result.ours, self.result.theirs
        mo, mt = part["o_idx"], part["t_idx"]
        return part.with_columns(
            pl.lit(self.channel).alias("channel"), pl.lit(self.on, pl.Date).alias(
                "business_date")).select("channel", "business_date").with_columns(
            o["merchant_id"].gather(mo), o["txn_id"].gather(mo), t["line_id"].gather(mt),
            part["rule"], o["signed"].gather(mo).alias("amount_minor"),
            o["currency"].gather(mo))


def _result_frames(result: Any, channel: str, on: date, now: datetime,
                   reversed_late: pl.DataFrame | None = None,
                   ) -> tuple[MatchRows, pl.DataFrame]:
    o = result.ours.select("o_idx", "txn_id", pl.col("merchant_id").alias("o_merchant"),
                           pl.col("signed").alias("o_signed"), pl.col("fee_minor").alias(
                               "o_fee"), pl.col("currency").alias("o_cur"))
    t = result.theirs.select("t_idx", "line_id", pl.col("merchant_id").alias("t_merchant"),
                             pl.col("signed").alias("t_signed"),
                             pl.col("fee_minor").alias("t_fee"),
                             pl.col("currency").alias("t_cur"), "result", "reason")
    # the matched pairs (nearly all of a day) take only the columns a match row stores,
    # gathered by index; the few others are joined with everything a discrepancy needs
    matches = MatchRows(result.pairs.filter(pl.col("klass") == "matched").select(
        "o_idx", "t_idx", "rule"), result, channel, on)
    pairs = result.pairs.filter(pl.col("klass") != "matched").select(
        "o_idx", "t_idx", "rule", "klass").join(o, on="o_idx").join(t, on="t_idx")
    late_ids = (reversed_late["t_idx"] if reversed_late is not None
                else pl.Series("t_idx", [], pl.UInt32))
    reversal = (pl.col("klass") == "status_mismatch") & pl.col("t_idx").is_in(
        late_ids.implode())
    created = now.replace(tzinfo=None)
    benign = (pl.col("klass") == "date_mismatch") | reversal
    note = pl.when(reversal).then(pl.lit(
        "the channel cleared it the day before and reverses it with this line; the money "
        "agrees")).when(benign).then(pl.lit("cleared on another day; the money agrees")).when(
        pl.col("result") == "returned").then(pl.concat_str(
            [pl.lit("returned by the bank:"), pl.col("reason")], separator=" ",
            ignore_nulls=True)).otherwise(pl.lit(None, pl.Utf8))
    mismatched = pairs.filter(pl.col("klass") != "matched").select(
        pl.col("klass"), pl.coalesce("o_merchant", "t_merchant").alias("merchant_id"),
        "txn_id", "line_id", pl.col("o_signed").alias("our_amount_minor"),
        pl.col("t_signed").alias("their_amount_minor"), pl.col("o_fee").alias("our_fee_minor"),
        pl.col("t_fee").alias("their_fee_minor"), pl.col("o_cur").alias("currency"),
        pl.when(benign).then(pl.lit("resolved")).otherwise(pl.lit("open")).alias("state"),
        pl.when(benign).then(pl.lit("system")).otherwise(pl.lit(None, pl.Utf8)).alias("owner"),
        pl.when(benign).then(pl.lit("auto")).otherwise(pl.lit(None, pl.Utf8))
        .alias("resolution"), note.alias("note"),
        pl.when(benign).then(pl.lit(created)).otherwise(pl.lit(None, pl.Datetime))
        .alias("resolved_at"))
    ours_only = result.ours_only.join(o, on="o_idx").select(
        pl.lit("ours_only").alias("klass"), pl.col("o_merchant").alias("merchant_id"),
        "txn_id", pl.lit(None, pl.Int64).alias("line_id"),
        pl.col("o_signed").alias("our_amount_minor"),
        pl.lit(None, pl.Int64).alias("their_amount_minor"), pl.col("o_fee").alias(
            "our_fee_minor"), pl.lit(None, pl.Int64).alias("their_fee_minor"),
        pl.col("o_cur").alias("currency"))
    theirs_only = result.theirs_only.join(t, on="t_idx").select(
        pl.lit("theirs_only").alias("klass"), pl.col("t_merchant").alias("merchant_id"),
        pl.lit(None, pl.Utf8).alias("txn_id"), "line_id",
        pl.lit(None, pl.Int64).alias("our_amount_minor"),
        pl.col("t_signed").alias("their_amount_minor"),
        pl.lit(None, pl.Int64).alias("our_fee_minor"), pl.col("t_fee").alias(
            "their_fee_minor"), pl.col("t_cur").alias("currency"))
    singles = pl.concat([ours_only, theirs_only], how="vertical_relaxed").with_columns(
        pl.lit("open").alias("state"), pl.lit(None, pl.Utf8).alias("owner"),
        pl.lit(None, pl.Utf8).alias("resolution"), pl.lit(None, pl.Utf8).alias("note"),
        pl.lit(None, pl.Datetime).alias("resolved_at"))
    found = pl.concat([mismatched, singles], how="vertical_relaxed").with_columns(
        pl.lit(channel).alias("channel"), pl.lit(on, pl.Date).alias("business_date"),
        pl.lit(created).alias("created_at")).select(_DISC_SCHEMA)
    return matches, found


def _run_bank(ctx: ServiceContext, who: Principal, on: date) -> RunResult:
    """Our payouts of the payout file of ``on`` against the bank's return lines: a paid line
    confirms its payout (clearing → bank), a returned one fails it (back to the merchant's
    payable, alert) and stays in the queue until the payout is paid again."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        day = uow.recon.day(BANK_CHANNEL, on, lock=True)
        if day is not None:
            require_open_day(day.state, BANK_CHANNEL, on)
        sent = uow.settlement.payouts_in_file(f"payouts-{on:%Y%m%d}.csv")
        ours = pl.DataFrame({
            "txn_id": [p.payout_id for p in sent],
            "merchant_id": [p.merchant_id for p in sent],
            "terminal_id": [None] * len(sent), "txn_type": ["sale"] * len(sent),
            "status": ["reversed" if p.status is PayoutStatus.FAILED else "approved"
                       for p in sent],
            "amount_minor": [p.amount_minor for p in sent],
            "currency": [p.currency for p in sent], "business_date": [on] * len(sent),
            "rrn": [None] * len(sent), "trace": [None] * len(sent),
            "batch_no": [None] * len(sent), "pan_last4": [None] * len(sent),
            "original_txn_id": [None] * len(sent), "at_s": [None] * len(sent),
            "fee_minor": [None] * len(sent)},
            schema_overrides={"terminal_id": pl.Utf8, "rrn": pl.Utf8, "trace": pl.Utf8,
                              "batch_no": pl.Utf8, "pan_last4": pl.Utf8,
                              "original_txn_id": pl.Utf8, "at_s": pl.Int64,
                              "fee_minor": pl.Int64, "amount_minor": pl.Int64,
                              "txn_id": pl.Utf8, "merchant_id": pl.Utf8, "currency": pl.Utf8,
                              "business_date": pl.Date})
        theirs = uow.recon.lines(BANK_CHANNEL, on).with_columns(
            pl.lit("sale").alias("txn_type"), pl.lit(on, pl.Date).alias("line_date"))
        result = match(ours, theirs, [("order_ref",)], TolerantRules(0, False))
        rows, found = _result_frames(result, BANK_CHANNEL, on, now)
        matches = rows.frame()  # (a payout file's lines: few)
        by_id = {p.payout_id: p for p in sent}
        paid = matches["txn_id"].to_list()
        for payout_id in paid:
            payout_service.confirm_in(uow, by_id[payout_id], who, now)
        returned = found.filter(pl.col("klass") == "status_mismatch",
                                pl.col("note").is_not_null())
        for payout_id, note in returned.select("txn_id", "note").iter_rows():
            payout = by_id[payout_id]
            if payout.status is PayoutStatus.SENT:
                payout_service.fail_in(uow, payout, str(note), who, now)
        replaced = uow.recon.replace_results(BANK_CHANNEL, on, matches, found)
        written = replaced.written
        runs = (day.runs if day is not None else 0) + 1
        uow.recon.save_day(BANK_CHANNEL, on, {
            "state": "reconciled", "matched_count": len(paid),
            "cleared_minor": int(matches["amount_minor"].sum() or 0),
            "currency": _currency(ours, theirs), "runs": runs, "run_at": now,
            "first_match_id": replaced.first_match_id,
            "last_match_id": replaced.last_match_id})
        counts = _class_counts(result.pairs, result.ours_only.height,
                               result.theirs_only.height)
        record(uow, who, "recon.run", f"recon/{BANK_CHANNEL}/{on.isoformat()}", now,
               detail={"counts": counts, "written": written, "confirmed": len(paid),
                       "returned": returned.height})
    return RunResult(BANK_CHANNEL, on, ours.height, theirs.height, counts,
                     int(matches["amount_minor"].sum() or 0), 0)


def _run_terminal(ctx: ServiceContext, who: Principal, on: date) -> RunResult:
    """The terminals' batch totals (0500, field 48) of every batch holding a record of
    ``on`` against our transactions of that batch as they are now, and the open flags of
    its batch upload (0320): a batch whose totals differ is an amount mismatch (net debit
    minus credit, both card blocks), an uploaded transaction only the terminal has is
    theirs only, one only we have ours only, one that differs an amount mismatch. A batch
    without a 0500 yet is not checked. (Few rows: one per terminal batch.)"""
    from autosettle.domain.iso8583.fields import parse_settlement_totals
    from autosettle.services.terminal_batches import BATCH_LINES_MAX, host_totals

    now = ctx.now()
    rows: list[dict[str, Any]] = []
    matched = 0
    with ctx.db.unit_of_work() as uow:
        day = uow.recon.day(TERMINAL_CHANNEL, on, lock=True)
        if day is not None:
            require_open_day(day.state, TERMINAL_CHANNEL, on)
        for merchant_id, terminal_id, batch_no in uow.recon.terminal_batches_of_day(on):
            closed = uow.terminal_host.get_settlement(merchant_id, terminal_id, batch_no)
            if closed is None:
                continue
            theirs = _net(parse_settlement_totals(closed.terminal_totals))
            ours = _net(host_totals(uow.terminal_host.batch_lines(
                merchant_id, terminal_id, batch_no, BATCH_LINES_MAX)))
            flags = uow.terminal_host.flags(merchant_id, terminal_id, batch_no)
            label = f"terminal {terminal_id} batch {batch_no}"
            if ours != theirs:
                rows.append(_row(ResultClass.AMOUNT_MISMATCH, merchant_id, None, ours[0],
                                 theirs[0], f"{label}: totals {ours[1]} ours, {theirs[1]} "
                                 "theirs"))
            elif not flags:
                matched += 1
            for flag in flags:
                rows.append(_row(_FLAG_CLASSES[flag.kind], merchant_id, flag.txn_id,
                                 flag.host_amount_minor, flag.terminal_amount_minor,
                                 f"{label} trace {flag.stan}: {flag.kind}"))
        found = pl.DataFrame(rows, schema={
            "klass": pl.Utf8, "merchant_id": pl.Utf8, "txn_id": pl.Utf8,
            "our_amount_minor": pl.Int64, "their_amount_minor": pl.Int64, "note": pl.Utf8})
        found = found.with_columns(
            pl.lit(TERMINAL_CHANNEL).alias("channel"), pl.lit(on, pl.Date).alias("business_date"),
            pl.lit(None, pl.Int64).alias("line_id"), pl.lit(None, pl.Int64).alias(
                "our_fee_minor"), pl.lit(None, pl.Int64).alias("their_fee_minor"),
            pl.lit("CNY").alias("currency"), pl.lit("open").alias("state"),
            pl.lit(None, pl.Utf8).alias("owner"), pl.lit(None, pl.Utf8).alias("resolution"),
            pl.lit(now.replace(tzinfo=None)).alias("created_at"),
            pl.lit(None, pl.Datetime).alias("resolved_at")).select(_DISC_SCHEMA)
        empty = pl.DataFrame(schema={"channel": pl.Utf8, "business_date": pl.Date,
                                     "merchant_id": pl.Utf8, "txn_id": pl.Utf8,
                                     "line_id": pl.Int64, "rule": pl.Utf8,
                                     "amount_minor": pl.Int64, "currency": pl.Utf8})
        written = uow.recon.replace_results(TERMINAL_CHANNEL, on, empty, found).written
        runs = (day.runs if day is not None else 0) + 1
        uow.recon.save_day(TERMINAL_CHANNEL, on, {
            "state": "reconciled", "matched_count": matched, "cleared_minor": 0,
            "currency": "CNY", "runs": runs, "run_at": now})
        counts = {c.value: 0 for c in ResultClass}
        counts["matched"] = matched
        for klass in found["klass"]:
            counts[klass] += 1
        record(uow, who, "recon.run", f"recon/{TERMINAL_CHANNEL}/{on.isoformat()}", now,
               detail={"counts": counts, "written": written})
    return RunResult(TERMINAL_CHANNEL, on, matched + len(rows), matched + len(rows), counts,
                     0, 0)


def _net(totals: Any) -> tuple[int, int]:
    """(debit − credit amount, debit + credit count) over both card blocks."""
    blocks = (totals.domestic, totals.foreign)
    return (sum(b.debit_amount_minor - b.credit_amount_minor for b in blocks),
            sum(b.debit_count + b.credit_count for b in blocks))


def _row(klass: ResultClass, merchant_id: str, txn_id: str | None, ours: int | None,
         theirs: int | None, note: str) -> dict[str, Any]:
    return {"klass": klass.value, "merchant_id": merchant_id, "txn_id": txn_id,
            "our_amount_minor": ours, "their_amount_minor": theirs, "note": note[:500]}


# -- the discrepancy queue --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Discrepancy(DiscrepancyRecord):
    """A discrepancy as the queue shows it: the stored record, its age and the other
    side's line."""

    age_days: int
    line: dict[str, Any] | None = None


def _view(row: DiscrepancyRecord, today: date,
          line: dict[str, Any] | None = None) -> Discrepancy:
    values = {f.name: getattr(row, f.name) for f in fields(DiscrepancyRecord)}
    return Discrepancy(**values, age_days=age_days(row.created_at.date(), today), line=line)


def _resource(discrepancy_id: int) -> str:
    """The audit log's name of one discrepancy."""
    return f"recon/discrepancies/{discrepancy_id}"


def history(ctx: ServiceContext, who: Principal, discrepancy_id: int) -> list[AuditEvent]:
    """Every audit record of one discrepancy, oldest first (operators only)."""
    return audit_history(ctx, who, _resource(discrepancy_id))


def list_discrepancies(ctx: ServiceContext, who: Principal, *, channel: str | None = None,
                       on: date | None = None, state: str | None = None,
                       klass: str | None = None, owner: str | None = None,
                       after: int | None = None, limit: int = 500) -> list[Discrepancy]:
    """The queue in id order, at most ``limit`` (1..5000) after id ``after``: every filter
    (owner too) is the store's SQL, so a page is right however many rows there are."""
    who.require_operator()
    if state is not None and state not in (s.value for s in State):
        raise ValidationError(f"state must be open or resolved, got {state!r}")
    if klass is not None and klass not in (c.value for c in DISCREPANCY_CLASSES):
        raise ValidationError(f"unknown class {klass!r}")
    if owner is not None and not 1 <= len(owner) <= 100:
        raise ValidationError("owner must be 1..100 characters")
    if not 1 <= limit <= 5000:
        raise ValidationError("limit must be 1..5000")
    today = ctx.now().date()
    with ctx.db.unit_of_work() as uow:
        rows = uow.recon.discrepancies(channel=channel, on=on, state=state, klass=klass,
                                       owner=owner, after_id=after, limit=limit)
    return [_view(r, today) for r in rows]


def get_discrepancy(ctx: ServiceContext, who: Principal, discrepancy_id: int) -> Discrepancy:
    """One discrepancy with the other side's line (without any card number: the file's
    account field is never stored)."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        row = uow.recon.discrepancy(discrepancy_id)
        if row is None:
            raise NotFoundError(f"discrepancy {discrepancy_id} not found")
        line = uow.recon.line(row.line_id) if row.line_id is not None else None
    return _view(row, ctx.now().date(), line)


def assign(ctx: ServiceContext, who: Principal, discrepancy_id: int, owner: str) -> Discrepancy:
    who.require_operator()
    owner = owner.strip()
    if not owner or len(owner) > 100:
        raise ValidationError("owner must be 1..100 characters")
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        row = _open_row(uow, discrepancy_id)
        uow.recon.set_discrepancy(discrepancy_id, owner=owner)
        record(uow, who, "recon.discrepancy.assign", _resource(discrepancy_id), now,
               detail={"owner": owner, "class": row.klass})
    return get_discrepancy(ctx, who, discrepancy_id)


def _open_row(uow: UnitOfWork, discrepancy_id: int) -> Any:
    row = uow.recon.discrepancy(discrepancy_id, lock=True)
    if row is None:
        raise NotFoundError(f"discrepancy {discrepancy_id} not found")
    day = uow.recon.day(row.channel, row.business_date, lock=True)
    if day is not None:
        require_open_day(day.state, row.channel, row.business_date)
    if row.state != State.OPEN:
        raise ConflictError(f"discrepancy {discrepancy_id} is {row.state} already")
    return row


ACTIONS = {"accept": Resolution.ACCEPTED, "adjust": Resolution.ADJUSTED,
           "refund": Resolution.REFUND_REQUESTED, "resettle": Resolution.RESETTLE_REQUESTED}


def resolve(ctx: ServiceContext, who: Principal, discrepancy_id: int, action: str,
            reason: str) -> Discrepancy:
    """Close one discrepancy (operator), with a reason, audited:

    * ``adjust`` posts a balanced entry (reason code from the class and sign): the
      receivable gives up what is open on our side, the bank takes what the channel paid,
      ``adjustments`` the difference; for a fee mismatch fee income and adjustments;
    * ``refund`` / ``resettle`` record the request to the channel (for a returned payout,
      ``resettle`` sends the payout again: 一清 checks again);
    * ``accept`` closes it as it is.
    """
    who.require_operator()
    if action not in ACTIONS:
        raise ValidationError(f"action must be one of {', '.join(ACTIONS)}")
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise ValidationError("a reason of 1..500 characters is required")
    resolution = ACTIONS[action]
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        row = _open_row(uow, discrepancy_id)
        klass = ResultClass(row.klass)
        allowed = allowed_for(row.channel, row.klass)
        if resolution not in allowed:
            raise ConflictError(f"a {klass.value} discrepancy cannot be closed by {action}; "
                                f"allowed: {', '.join(sorted(a.value for a in allowed))}")
        entry_key = None
        if resolution is Resolution.ADJUSTED:
            entry = _adjustment(row)
            uow.ledger.post(entry, now)
            entry_key = entry.idempotency_key
        if resolution is Resolution.RESETTLE_REQUESTED and row.channel == BANK_CHANNEL:
            payout_service.retry_in(uow, row.txn_id, who, now)
        uow.recon.set_discrepancy(discrepancy_id, state=State.RESOLVED.value,
                                  resolution=resolution.value, note=reason,
                                  owner=row.owner or who.actor, entry_key=entry_key,
                                  resolved_at=now)
        record(uow, who, f"recon.discrepancy.{action}", _resource(discrepancy_id), now,
               detail={"class": row.klass, "reason": reason, "entry": entry_key,
                       "our_amount_minor": row.our_amount_minor,
                       "their_amount_minor": row.their_amount_minor})
    return get_discrepancy(ctx, who, discrepancy_id)


def allowed_for(channel: str, klass: str) -> frozenset[Resolution]:
    """What an operator may do with a discrepancy of ``klass`` on ``channel`` (read helper
    of :func:`resolve`, which enforces it; the console shows only these forms)."""
    if channel == BANK_CHANNEL:
        return frozenset({Resolution.ACCEPTED, Resolution.RESETTLE_REQUESTED})
    if channel == TERMINAL_CHANNEL:
        # the money is the channel's business: a terminal's totals explain, not move it
        return frozenset({Resolution.ACCEPTED})
    return allowed_resolutions(ResultClass(klass))


def planned_adjustment(d: Discrepancy) -> JournalEntry | None:
    """The balanced entry ``adjust`` would post for ``d`` (a read helper for the console's
    preview), or None when there is nothing to adjust or adjusting is not allowed."""
    if Resolution.ADJUSTED not in allowed_for(d.channel, d.klass) or d.state != State.OPEN:
        return None
    try:
        return _adjustment(d)
    except ConflictError:
        return None


def _adjustment(row: Any) -> JournalEntry:
    cur = currency(row.currency)
    key = f"recon:discrepancy:{row.discrepancy_id}:adjusted"
    reference = f"recon:discrepancy:{row.discrepancy_id}"
    if row.klass == ResultClass.FEE_MISMATCH:
        return fee_adjustment_entry(key, Money(row.our_fee_minor or 0, cur),
                                    Money(row.their_fee_minor or 0, cur), reference)
    # what is still on the receivable for our record: nothing for a reversed one
    ours = 0 if row.klass == ResultClass.STATUS_MISMATCH else (row.our_amount_minor or 0)
    theirs = row.their_amount_minor or 0
    code = ReasonCode.CHANNEL_SHORT if theirs < ours else ReasonCode.CHANNEL_OVER
    return adjustment_entry(key, code, Money(ours, cur), Money(theirs, cur), None, reference)


def close_day(ctx: ServiceContext, who: Principal, on: date, channel: str) -> dict[str, Any]:
    """Close a reconciled business date whose discrepancies are all resolved (operator).
    Closing a closed date again changes nothing."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        day = uow.recon.day(channel, on, lock=True)
        if day is None:
            raise ConflictError(f"{channel} {on.isoformat()} has not been reconciled")
        if day.state == "closed":
            return {"channel": channel, "business_date": on.isoformat(), "state": "closed"}
        rows = uow.recon.discrepancies(channel=channel, on=on, limit=None)
        if not can_close(State(r.state) for r in rows):
            still = sum(1 for r in rows if r.state == State.OPEN)
            raise ConflictError(f"{channel} {on.isoformat()} has {still} open "
                                "discrepancies")
        uow.recon.save_day(channel, on, {"state": "closed", "closed_at": now,
                                         "closed_by": who.actor})
        record(uow, who, "recon.close", f"recon/{channel}/{on.isoformat()}", now,
               detail={"discrepancies": len(rows), "cleared_minor": day.cleared_minor})
    return {"channel": channel, "business_date": on.isoformat(), "state": "closed"}


# -- the daily summary ------------------------------------------------------------------------

def summary(ctx: ServiceContext, who: Principal, on: date) -> list[dict[str, Any]]:
    """One row per channel reconciled for ``on``: state, matched, counts and amounts per
    class (open and resolved), the unresolved ageing."""
    who.require_operator()
    today = ctx.now().date()
    out = []
    with ctx.db.unit_of_work() as uow:
        for day in [d for d in uow.recon.days() if d.business_date == on]:
            counts = uow.recon.class_counts(day.channel, on)
            row: dict[str, Any] = {"channel": day.channel, "business_date": on.isoformat(),
                                   "state": day.state, "matched": day.matched_count,
                                   "cleared_minor": day.cleared_minor,
                                   "currency": day.currency}
            for klass in DISCREPANCY_CLASSES:
                for st in State:
                    n, amount = counts.get((klass.value, st.value), (0, 0))
                    row[f"{klass.value}_{st.value}"] = n
                    row[f"{klass.value}_{st.value}_minor"] = amount
            ageing = {b: 0 for b in ("0-1d", "2-3d", "4-7d", ">7d")}
            for r in uow.recon.discrepancies(channel=day.channel, on=on, state="open",
                                             limit=None):
                ageing[ageing_bucket(age_days(r.created_at.date(), today))] += 1
            row.update({f"open_{k}": v for k, v in ageing.items()})
            out.append(row)
    return out


def export_summary(ctx: ServiceContext, who: Principal, on: date, fmt: str = "csv",
                   out_dir: Path | None = None) -> Path:
    """Write the summary of ``on`` to ``<data_dir>/recon/recon-summary-YYYYMMDD.csv|xlsx``."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationError("format must be csv or xlsx")
    rows = summary(ctx, who, on)
    out = out_dir or ctx.settings.data_dir / "recon"
    private_dir(out, tighten=out_dir is None)
    path = out / f"recon-summary-{on:%Y%m%d}.{fmt}"
    header = list(rows[0]) if rows else ["channel", "business_date", "state"]
    if fmt == "csv":
        with open_private_text(path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for r in rows:
                writer.writerow([r.get(h, "") for h in header])
        return path
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"recon {on:%Y-%m-%d}"
    sheet.append(header)
    for r in rows:
        sheet.append([r.get(h, "") for h in header])
    with open_private_binary(path) as handle:
        book.save(handle)
    return path


def day_states(ctx: ServiceContext, who: Principal) -> list[dict[str, Any]]:
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return [{"channel": d.channel, "business_date": d.business_date.isoformat(),
                 "state": d.state, "matched": d.matched_count,
                 "cleared_minor": d.cleared_minor, "runs": d.runs} for d in uow.recon.days()]


def builtin_sources() -> dict[str, SourceSpec]:
    """The sources shipped with the package (``recon_sources.toml``)."""
    text = resources.files("autosettle.services").joinpath("recon_sources.toml").read_text(
        encoding="utf-8")
    return sources_from_dict(tomllib.loads(text))


def fee_function(ctx: ServiceContext) -> Callable[[str, str, int, str], int | None]:
    """What the channel charges, as the simulators see it: the merchant's schedule in force
    (sales, completions and their voids; refunds are not compared)."""
    from autosettle.domain.cards import CardKind
    from autosettle.domain.fees import transaction_fee
    from autosettle.services.context import SYSTEM
    from autosettle.services.fee_schedules import current_schedule

    cache: dict[str, Any] = {}

    def fee(merchant_id: str, txn_type: str, amount_minor: int, kind: str) -> int | None:
        if txn_type == "refund":
            return None
        if merchant_id not in cache:
            cache[merchant_id] = current_schedule(ctx, SYSTEM, merchant_id, ctx.now().date())
        schedule = cache[merchant_id]
        kind_value = kind if kind in {k.value for k in CardKind} else "other"
        return transaction_fee(schedule, Money(amount_minor, schedule.currency),
                               CardKind(kind_value)).amount_minor

    return fee
