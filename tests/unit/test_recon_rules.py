"""Reconciliation rules, the bulk matcher and the file codec, without a database: fixed
examples and properties (random days with random planted faults)."""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosettle.domain.errors import ConflictError, ValidationError
from autosettle.domain.ledger import balances
from autosettle.domain.money import CNY, Money
from autosettle.domain.recon import (
    PairFacts,
    ReasonCode,
    Resolution,
    ResultClass,
    State,
    TolerantRules,
    adjustment_entry,
    ageing_bucket,
    allowed_resolutions,
    can_close,
    classify_pair,
    clearing_entry,
    fee_adjustment_entry,
    require_open_day,
)
from autosettle.domain.recon_layouts import parse_amount, source_from_dict
from autosettle.services.recon import builtin_sources
from autosettle.services.recon_match import classify, match, prepare_ours, prepare_theirs
from autosettle.services.recon_parse import parse_file
from autosettle.simulators.issuer import ClearingLine, write_acp_file

DAY = date(2026, 9, 18)
KEYS = [("order_ref", "terminal_id")]
T0 = int(datetime(2026, 9, 18, 2, 0).timestamp())


def facts(**kw: object) -> PairFacts:
    base = dict(our_amount=100, their_amount=100, our_date=DAY, their_date=DAY, our_live=True,
                our_fee=1, their_fee=1)
    base.update(kw)
    return PairFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "klass"), [
    ({}, ResultClass.MATCHED),
    ({"our_live": False}, ResultClass.STATUS_MISMATCH),
    ({"their_amount": 99}, ResultClass.AMOUNT_MISMATCH),
    ({"their_date": DAY + timedelta(days=1)}, ResultClass.DATE_MISMATCH),
    ({"their_fee": 2}, ResultClass.FEE_MISMATCH),
    ({"their_fee": None}, ResultClass.MATCHED),
    ({"our_fee": -1}, ResultClass.MATCHED),   # a void's fee is negative on our side
    ({"our_live": False, "their_amount": 1}, ResultClass.STATUS_MISMATCH),
    ({"their_amount": 1, "their_fee": 9}, ResultClass.AMOUNT_MISMATCH),
])
def test_classify_pair(kw: dict[str, object], klass: ResultClass) -> None:
    assert classify_pair(facts(**kw)) is klass


@given(ours=st.integers(-10**9, 10**9), theirs=st.integers(-10**9, 10**9))
def test_an_adjustment_balances_and_empties_what_is_open(ours: int, theirs: int) -> None:
    if ours == theirs == 0:
        with pytest.raises(ConflictError):
            adjustment_entry("k", ReasonCode.WRITE_OFF, Money(0, CNY), Money(0, CNY), None, "r")
        return
    entry = adjustment_entry("k", ReasonCode.CHANNEL_SHORT, Money(ours, CNY),
                             Money(theirs, CNY), None, "r")
    moved = balances(entry.lines)
    assert sum(moved.values()) == 0
    assert moved.get(("channel_receivable", "CNY"), 0) == -ours
    assert moved.get(("bank", "CNY"), 0) == theirs
    assert entry.kind == "recon.adjustment.channel_short"


def test_fee_and_clearing_entries() -> None:
    fee = fee_adjustment_entry("f", Money(10, CNY), Money(-7, CNY), "r")
    assert balances(fee.lines) == {("fee_income", "CNY"): 3, ("adjustments", "CNY"): -3}
    with pytest.raises(ConflictError):
        fee_adjustment_entry("f", Money(-7, CNY), Money(7, CNY), "r")
    assert clearing_entry("c", Money(0, CNY), "r") is None
    cleared = clearing_entry("c", Money(-5, CNY), "r")
    assert cleared is not None
    assert balances(cleared.lines) == {("bank", "CNY"): -5, ("channel_receivable", "CNY"): 5}


def test_queue_rules() -> None:
    assert can_close([]) and can_close([State.RESOLVED])
    assert not can_close([State.RESOLVED, State.OPEN])
    require_open_day("reconciled", "c", DAY)
    with pytest.raises(ConflictError, match="closed"):
        require_open_day("closed", "c", DAY)
    assert Resolution.ADJUSTED not in allowed_resolutions(ResultClass.DATE_MISMATCH)
    assert Resolution.RESETTLE_REQUESTED in allowed_resolutions(ResultClass.OURS_ONLY)
    assert [ageing_bucket(d) for d in (0, 2, 5, 30)] == ["0-1d", "2-3d", "4-7d", ">7d"]
    with pytest.raises(ValidationError):
        TolerantRules(time_window_s=-1)


@given(st.integers(0, 10**14))
def test_amounts_in_fen_and_yuan_read_the_same(fen: int) -> None:
    assert parse_amount(f"{fen:016d}", "fen") == fen
    assert parse_amount(f"{fen // 100}.{fen % 100:02d}", "yuan") == fen


@pytest.mark.parametrize(("text", "unit"), [("1.5", "yuan"), ("1.005", "yuan"), ("-1", "fen"),
                                            ("1e3", "fen"), ("", "fen")])
def test_amounts_that_are_not_amounts(text: str, unit: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(text, unit)


def test_a_source_must_make_sense() -> None:
    with pytest.raises(ValidationError, match="format"):
        source_from_dict("x", {"kind": "channel", "format": "xml"})
    with pytest.raises(ValidationError, match="key columns"):
        source_from_dict("x", {"kind": "channel", "format": "csv", "keys": [["pan"]]})
    with pytest.raises(ValidationError, match="encoding"):
        source_from_dict("x", {"kind": "channel", "format": "csv", "encoding": "nope"})


# -- the bulk matcher against planted faults -----------------------------------------------

def ours_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "txn_id": [f"{i:032x}" for i in range(n)],
        "merchant_id": ["898310054110001"] * n,
        "terminal_id": [f"T{i % 3:07d}" for i in range(n)],
        "txn_type": ["sale"] * n, "status": ["approved"] * n,
        "amount_minor": [1_000 + 7 * i for i in range(n)], "currency": ["CNY"] * n,
        "business_date": [DAY] * n, "rrn": [f"{i:012d}" for i in range(n)],
        "trace": [f"{i:06d}" for i in range(n)], "batch_no": ["000001"] * n,
        "pan_last4": ["1234"] * n, "original_txn_id": [None] * n,
        "at_s": [T0 + 60 * i for i in range(n)], "fee_minor": [5] * n},
        schema_overrides={"original_txn_id": pl.Utf8})


def theirs_of(ours: pl.DataFrame) -> pl.DataFrame:
    return ours.select(
        pl.int_range(pl.len()).cast(pl.Int64).alias("line_id"), pl.lit(1).alias("file_id"),
        pl.int_range(pl.len()).cast(pl.Int64).alias("line_no"), "txn_type",
        pl.col("business_date").alias("line_date"), pl.col("at_s").alias("txn_at_s"),
        "merchant_id", "terminal_id", pl.col("txn_id").alias("order_ref"), "rrn", "trace",
        "batch_no", "pan_last4", "amount_minor", "fee_minor", "currency",
        pl.lit(None, pl.Utf8).alias("result"), pl.lit(None, pl.Utf8).alias("reason"))


FAULTS = ("ours_only", "theirs_only", "amount_mismatch", "status_mismatch", "date_mismatch",
          "fee_mismatch")


def plant(ours: pl.DataFrame, picks: dict[int, str]) -> tuple[pl.DataFrame, pl.DataFrame,
                                                              set[tuple[str, str]]]:
    """Plant ``picks`` (record index → fault) on a clean day: both sides and the expected
    (class, reference) set."""
    theirs = theirs_of(ours)
    expected = set()
    drop = []
    for i, fault in picks.items():
        ref = f"{i:032x}"
        row = pl.col("order_ref") == ref
        if fault == "ours_only":
            drop.append(ref)
        elif fault == "theirs_only":
            ours = ours.filter(pl.col("txn_id") != ref)
            # far from every other record, so no tolerant rule pairs it
            theirs = theirs.with_columns(pl.when(row).then(pl.lit(10**9)).otherwise(
                pl.col("amount_minor")).alias("amount_minor"))
        elif fault == "amount_mismatch":
            theirs = theirs.with_columns(pl.when(row).then(pl.col("amount_minor") + 1)
                                         .otherwise(pl.col("amount_minor")))
        elif fault == "status_mismatch":
            ours = ours.with_columns(pl.when(pl.col("txn_id") == ref).then(pl.lit("reversed"))
                                     .otherwise(pl.col("status")).alias("status"))
        elif fault == "date_mismatch":
            theirs = theirs.with_columns(pl.when(row).then(pl.col("line_date") + timedelta(1))
                                         .otherwise(pl.col("line_date")))
        else:
            theirs = theirs.with_columns(pl.when(row).then(pl.col("fee_minor") + 3)
                                         .otherwise(pl.col("fee_minor")))
        expected.add((fault, ref))
    theirs = theirs.filter(~pl.col("order_ref").is_in(drop))
    return ours, theirs, expected


def found(ours: pl.DataFrame, theirs: pl.DataFrame) -> set[tuple[str, str]]:
    result = match(ours, theirs, KEYS, TolerantRules())
    o = result.ours.select("o_idx", "txn_id")
    t = result.theirs.select("t_idx", "order_ref")
    out = {(k, ref) for k, ref in result.pairs.filter(pl.col("klass") != "matched").join(
        o, on="o_idx").select("klass", "txn_id").iter_rows()}
    out |= {("ours_only", ref) for (ref,) in result.ours_only.join(o, on="o_idx").select(
        "txn_id").iter_rows()}
    out |= {("theirs_only", ref) for (ref,) in result.theirs_only.join(t, on="t_idx").select(
        "order_ref").iter_rows()}
    return out


@settings(max_examples=60, deadline=None)
@given(n=st.integers(10, 60), data=st.data())
def test_random_planted_faults_are_found_and_nothing_else(n: int, data: st.DataObject) -> None:
    indices = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 12)))
    picks = {i: data.draw(st.sampled_from(FAULTS)) for i in indices}
    ours, theirs, expected = plant(ours_frame(n), picks)
    assert found(ours, theirs) == expected


def test_a_lost_key_is_left_to_the_tolerant_rules() -> None:
    ours = ours_frame(5)
    theirs = theirs_of(ours).with_columns(
        pl.when(pl.col("line_id") == 2).then(pl.lit("zzz")).otherwise(pl.col("order_ref"))
        .alias("order_ref"),
        pl.when(pl.col("line_id") == 2).then(pl.col("txn_at_s") + 100)
        .otherwise(pl.col("txn_at_s")))
    result = match(ours, theirs, KEYS, TolerantRules(time_window_s=300))
    assert sorted(result.pairs["rule"].to_list()) == ["key"] * 4 + ["tolerant"]
    assert set(result.pairs["klass"]) == {"matched"}
    # outside the window it stays apart
    result = match(ours, theirs, KEYS, TolerantRules(time_window_s=60))
    assert (result.ours_only.height, result.theirs_only.height) == (1, 1)


def test_a_hash_collision_pairs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key pass joins on the keys' hashes, then compares the keys themselves: with
    every hash the same (all collide), exactly the same pairs come out."""
    from autosettle.services import recon_match

    ours, theirs, expected = plant(ours_frame(30), {3: "ours_only", 7: "theirs_only",
                                                    11: "amount_mismatch"})
    assert found(ours, theirs) == expected
    monkeypatch.setattr(recon_match, "_key_hash", lambda columns: pl.lit(1, pl.UInt64)
                        .alias("_h"))
    monkeypatch.setattr(recon_match, "VERIFY_ROWS", 100)  # several slices
    assert found(ours, theirs) == expected
    result = match(ours, theirs, KEYS, TolerantRules())
    assert set(result.pairs["rule"]) == {"key"}


@given(f=st.builds(PairFacts, our_amount=st.integers(-5, 5), their_amount=st.integers(-5, 5),
                   our_date=st.sampled_from([DAY, DAY + timedelta(1)]),
                   their_date=st.sampled_from([DAY, DAY + timedelta(1)]),
                   our_live=st.booleans(), their_live=st.booleans(),
                   our_fee=st.none() | st.integers(-3, 3),
                   their_fee=st.none() | st.integers(-3, 3)))
def test_the_bulk_checks_are_the_domain_rules(f: PairFacts) -> None:
    o = prepare_ours(pl.DataFrame({
        "txn_type": ["sale"], "amount_minor": [f.our_amount], "status": [
            "approved" if f.our_live else "reversed"], "business_date": [f.our_date],
        "fee_minor": [f.our_fee]}, schema_overrides={"fee_minor": pl.Int64}))
    t = prepare_theirs(pl.DataFrame({
        "txn_type": ["sale"], "amount_minor": [f.their_amount],
        "result": ["paid" if f.their_live else "returned"], "line_date": [f.their_date],
        "fee_minor": [f.their_fee]}, schema_overrides={"fee_minor": pl.Int64}))
    pairs = pl.DataFrame({"t_idx": [0], "o_idx": [0], "rule": ["key"]},
                         schema={"t_idx": pl.UInt32, "o_idx": pl.UInt32, "rule": pl.Utf8})
    assert classify(pairs, o, t)["klass"][0] == classify_pair(f).value


# -- the ACP codec -------------------------------------------------------------------------

line_strategy = st.builds(
    ClearingLine, txn_type=st.sampled_from(["sale", "void", "refund", "completion"]),
    reference=st.text("0123456789abcdef", min_size=32, max_size=32),
    merchant_id=st.text("0123456789", min_size=15, max_size=15),
    terminal_id=st.text("ABCDEFGHJK0123456789", min_size=8, max_size=8),
    local_time=st.datetimes(datetime(2026, 9, 18), datetime(2026, 9, 18, 23, 59, 59)),
    amount_minor=st.integers(0, 10**12 - 1), fee_minor=st.none() | st.integers(0, 10**6),
    masked_pan=st.just("622202******5679"), trace=st.text("0123456789", min_size=6,
                                                          max_size=6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_strategy, min_size=1, max_size=30))
def test_an_acp_file_reads_back_what_was_written(lines: list[ClearingLine]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_acp_file(Path(folder) / "f", DAY, lines)
        frames: list[pl.DataFrame] = []
        report = parse_file(path, builtin_sources()["acp"], frames.append)
    assert report.problems == [] and report.bad == []
    got = pl.concat(frames).sort("line_no")
    assert got["order_ref"].to_list() == [x.reference for x in lines]
    assert got["amount_minor"].to_list() == [x.amount_minor for x in lines]
    assert got["fee_minor"].to_list() == [x.fee_minor for x in lines]
    assert got["txn_type"].to_list() == [x.txn_type for x in lines]
    assert got["terminal_id"].to_list() == [x.terminal_id for x in lines]
    assert got["line_date"].to_list() == [DAY] * len(lines)
    assert got["pan_last4"].to_list() == ["5679"] * len(lines)
