"""The bulk matcher: our records and the other side's lines, as frames, in a few joins.

1. **Keys**, in the source's order (e.g. order reference + terminal, then trace + batch +
   terminal, then RRN + terminal): one-to-one pairs on equal keys. A key pair whose amounts
   differ is first tried as **many-to-one**: a net line against our record and the voids and
   refunds of it that no line names (their sum equals the line).
2. **Tolerant rules** for what is left: same terminal, type and amount, same merchant and
   card last 4 where both sides give them, times within the window; the closest pair wins,
   one-to-one.
3. Every pair is classified by the checks of :data:`autosettle.domain.recon.PAIR_CHECKS`,
   in order (the same as :func:`autosettle.domain.recon.classify_pair`, column-wise);
   lines left over are *theirs only*, our live records left over *ours only* (a reversed
   record with no line is agreement, not a discrepancy).

Input columns: ours as ``store.recon.OUR_COLUMNS``, theirs as ``store.recon.LINE_COLUMNS``
(plus ``result`` for bank lines). Output: the matched pairs and the discrepancies, each a
frame ready to store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from autosettle.domain.recon import SIGNS, TolerantRules

_OUR_KEY = {"order_ref": "txn_id", "trace": "trace", "batch_no": "batch_no", "rrn": "rrn",
            "terminal_id": "terminal_id", "merchant_id": "merchant_id"}


@dataclass(frozen=True, slots=True)
class MatchResult:
    pairs: pl.DataFrame
    """o_idx, t_idx, rule, klass: every pair, classified."""
    ours: pl.DataFrame
    theirs: pl.DataFrame
    ours_only: pl.DataFrame
    """o_idx of our live records no line pairs with."""
    theirs_only: pl.DataFrame
    """t_idx of the lines that pair with none of ours."""

    def narrow(self) -> MatchResult:
        """The same result with only the columns its results are made of (the keys and
        the rest of both sides let go: a day of a million rows is held in memory)."""
        ours = self.ours.select([c for c in _RESULT_OURS if c in self.ours.columns])
        theirs = self.theirs.select([c for c in _RESULT_THEIRS if c in self.theirs.columns])
        return MatchResult(self.pairs, ours, theirs, self.ours_only, self.theirs_only)


_RESULT_OURS = ("o_idx", "txn_id", "merchant_id", "signed", "fee_minor", "currency",
                "business_date", "live")
_RESULT_THEIRS = ("t_idx", "line_id", "merchant_id", "signed", "fee_minor", "currency",
                  "result", "reason")


def _signed(frame: pl.DataFrame) -> pl.Expr:
    sign = pl.col("txn_type").replace_strict(SIGNS, default=1, return_dtype=pl.Int64)
    return (pl.col("amount_minor") * sign).alias("signed")


SMALL = ("merchant_id", "terminal_id", "txn_type", "currency", "batch_no", "pan_last4")
"""Columns compared across the sides: categorical on both (the store reads them so)."""


def _small(frame: pl.DataFrame) -> list[pl.Expr]:
    return [pl.col(c).cast(pl.Categorical) for c in SMALL
            if c in frame.columns and frame.schema[c] != pl.Categorical]


def prepare_ours(ours: pl.DataFrame) -> pl.DataFrame:
    return ours.with_row_index("o_idx").with_columns(
        *_small(ours), _signed(ours), (pl.col("status") != "reversed").alias("live"))


def prepare_theirs(theirs: pl.DataFrame) -> pl.DataFrame:
    live = (pl.col("result") != "returned").fill_null(True) if "result" in theirs.columns \
        else pl.lit(True)
    return theirs.with_row_index("t_idx").with_columns(*_small(theirs), _signed(theirs),
                                                       live.alias("t_live"))


def _one_to_one(cands: pl.DataFrame, order: str) -> pl.DataFrame:
    """Greedy one-to-one: by ``order``, each line and each record used once."""
    if cands["t_idx"].is_unique().all() and cands["o_idx"].is_unique().all():
        # nothing to choose (the usual key pass): in line order, as below, but without
        # the sort on all three columns and the two passes of unique
        return cands.sort("t_idx")
    cands = cands.sort([order, "t_idx", "o_idx"])
    cands = cands.unique("t_idx", keep="first", maintain_order=True)
    return cands.unique("o_idx", keep="first", maintain_order=True)


def _unused(frame: pl.DataFrame, used: pl.Series) -> pl.DataFrame:
    """The rows of ``frame`` (one per row of its side, in order) not ``used`` (a mask of
    that side). ``frame`` should hold only the columns the caller needs: the filter copies
    them."""
    if not used.any():
        return frame
    return frame.filter(~used)


def _use(used: pl.Series, index: pl.Series) -> pl.Series:
    return used.scatter(index, True) if index.len() else used


KEY_SEED = 0x5EED
VERIFY_ROWS = 250_000


def _key_hash(columns: Sequence[str]) -> pl.Expr:
    """One 64-bit hash of a key's columns (the same values give the same hash on both
    sides: the struct's fields are named by position, not by the side's column names)."""
    return pl.struct([pl.col(c).alias(f"k{n}") for n, c in enumerate(columns)]).hash(
        KEY_SEED).alias("_h")


def _key_join(left: pl.DataFrame, right: pl.DataFrame, on_t: list[str], on_o: list[str],
              t: pl.DataFrame, o: pl.DataFrame) -> pl.DataFrame:
    """(t_idx, o_idx) of every pair whose key columns are equal: a join on the keys' hashes
    (a table of integers, not of a million strings on each side), then every candidate's
    columns compared for real, a slice at a time, so that a hash collision pairs nothing."""
    cands = left.select("t_idx", _key_hash(on_t)).join(
        right.select("o_idx", _key_hash(on_o)), on="_h", how="inner").drop("_h")
    kept = []
    for start in range(0, cands.height, VERIFY_ROWS):
        part = cands.slice(start, VERIFY_ROWS)
        same = pl.Series(values=[True] * part.height, dtype=pl.Boolean)
        for ct, co in zip(on_t, on_o, strict=True):
            same = same & (t[ct].gather(part["t_idx"]) == o[co].gather(part["o_idx"]))
        kept.append(part.filter(same.fill_null(False)))
    if not kept:
        return cands
    return pl.concat(kept)


def match(ours: pl.DataFrame, theirs: pl.DataFrame, keys: Sequence[Sequence[str]],
          rules: TolerantRules) -> MatchResult:
    o = prepare_ours(ours)
    t = prepare_theirs(theirs)
    pairs: list[pl.DataFrame] = []
    # which rows are paired already: a mask per side (no hash set of a million indices)
    used_o = pl.Series("used", [False], pl.Boolean).extend_constant(False, o.height - 1) \
        if o.height else pl.Series("used", [], pl.Boolean)
    used_t = pl.Series("used", [False], pl.Boolean).extend_constant(False, t.height - 1) \
        if t.height else pl.Series("used", [], pl.Boolean)
    for key in keys:
        on_t = list(key)
        on_o = [_OUR_KEY[k] for k in key]
        # only the key's columns are copied (never the whole frame of either side)
        left = _unused(t.select(["t_idx", *on_t]), used_t).filter(
            *[pl.col(k).is_not_null() for k in key])
        if left.height == 0:
            continue
        right = _unused(o.select(["o_idx", *on_o]), used_o)
        found = _key_join(left, right, on_t, on_o, t, o)
        del left, right
        found = _one_to_one(found.select("t_idx", "o_idx").with_columns(
            pl.lit(0).alias("_o")), "_o").drop("_o")
        if found.height:
            found = found.with_columns(pl.lit("key").alias("rule"))
            pairs.append(found)
            used_o = _use(used_o, found["o_idx"])
            used_t = _use(used_t, found["t_idx"])
    # many-to-one: a key pair whose line is the net of our record and its children
    if pairs:
        keyed = pl.concat(pairs)
        differ = keyed.filter(t["signed"].gather(keyed["t_idx"])
                              != o["signed"].gather(keyed["o_idx"]))
        if differ.height:
            differ = differ.with_columns(
                t["signed"].gather(differ["t_idx"]).alias("signed"),
                o["txn_id"].gather(differ["o_idx"]).alias("txn_id"),
                o["signed"].gather(differ["o_idx"]).alias("o_signed"))
            children = _unused(o.select("o_idx", "live", "original_txn_id", "signed"),
                               used_o).filter(
                pl.col("live"), pl.col("original_txn_id").is_not_null()).select(
                pl.col("o_idx").alias("c_idx"), pl.col("original_txn_id").alias("txn_id"),
                pl.col("signed").alias("c_signed"))
            nets = differ.join(children, on="txn_id").group_by("t_idx").agg(
                pl.col("c_idx"), pl.col("c_signed").sum().alias("c_sum"),
                pl.col("signed").first(), pl.col("o_signed").first())
            nets = nets.filter(pl.col("o_signed") + pl.col("c_sum") == pl.col("signed"))
            if nets.height:
                extra = nets.select("t_idx", pl.col("c_idx").alias("o_idx")).explode(
                    "o_idx").with_columns(pl.lit("net").alias("rule"))
                net_ids = nets["t_idx"].implode()
                pairs = [p.with_columns(pl.when(pl.col("t_idx").is_in(net_ids))
                                        .then(pl.lit("net")).otherwise(pl.col("rule"))
                                        .alias("rule")) for p in pairs]
                pairs.append(extra.with_columns(pl.col("o_idx").cast(pl.UInt32)))
                used_o = _use(used_o, extra["o_idx"].cast(pl.UInt32))
    # tolerant rules
    left = _unused(t.select("t_idx", "terminal_id", "txn_type", "amount_minor", "merchant_id",
                            "pan_last4", "txn_at_s"), used_t).filter(
        pl.col("terminal_id").is_not_null())
    right = _unused(o.select("o_idx", "terminal_id", "txn_type", "amount_minor",
                             pl.col("merchant_id").alias("o_merchant"),
                             pl.col("pan_last4").alias("o_last4"), "at_s", "live"),
                    used_o).filter(pl.col("live")).drop("live")
    if left.height and right.height:
        cands = left.join(right, on=["terminal_id", "txn_type", "amount_minor"], how="inner")
        cands = cands.filter(
            pl.col("merchant_id").is_null() | (pl.col("merchant_id") == pl.col("o_merchant")),
            pl.lit(not rules.use_last4) | pl.col("pan_last4").is_null()
            | pl.col("o_last4").is_null() | (pl.col("pan_last4") == pl.col("o_last4")),
        ).with_columns((pl.col("txn_at_s") - pl.col("at_s")).abs().alias("gap")).filter(
            pl.col("gap").is_null() | (pl.col("gap") <= rules.time_window_s))
        if cands.height:
            found = _one_to_one(cands.with_columns(pl.col("gap").fill_null(0)), "gap")
            found = found.select("t_idx", "o_idx").with_columns(pl.lit("tolerant").alias("rule"))
            pairs.append(found)
            used_o = _use(used_o, found["o_idx"])
            used_t = _use(used_t, found["t_idx"])
    all_pairs = pl.concat(pairs) if pairs else pl.DataFrame(
        schema={"t_idx": pl.UInt32, "o_idx": pl.UInt32, "rule": pl.Utf8})
    classified = classify(all_pairs, o, t)
    ours_only = _unused(o.select("o_idx", "live"), used_o).filter(
        pl.col("live")).select("o_idx")
    theirs_only = _unused(t.select("t_idx"), used_t)
    return MatchResult(classified, o, t, ours_only, theirs_only)


def classify(pairs: pl.DataFrame, o: pl.DataFrame, t: pl.DataFrame) -> pl.DataFrame:
    """``klass`` for every pair: the checks of ``PAIR_CHECKS``, in order, column-wise. A
    net line's pairs are judged on the line's amount against the group's sum. ``o`` and
    ``t`` as prepared (``o_idx`` / ``t_idx`` their row numbers): their columns are gathered
    by index, not joined."""
    ti, oi = pairs["t_idx"], pairs["o_idx"]
    joined = pairs.with_columns(
        t["signed"].gather(ti).alias("t_signed"), t["line_date"].gather(ti),
        t["fee_minor"].gather(ti).alias("t_fee"), t["t_live"].gather(ti),
        o["signed"].gather(oi).alias("o_signed"), o["business_date"].gather(oi),
        o["fee_minor"].gather(oi).alias("o_fee"), o["live"].gather(oi))
    if (pairs["rule"] == "net").any():
        group_sum = pl.col("o_signed").sum().over("t_idx")
        o_amount = pl.when(pl.col("rule") == "net").then(group_sum).otherwise(
            pl.col("o_signed"))
        net_head = (pl.col("rule") != "net") | (
            pl.col("o_signed") == pl.col("o_signed").max().over("t_idx"))
    else:  # (no window over a million pairs when no line is a net one)
        o_amount, net_head = pl.col("o_signed"), pl.lit(True)
    return pairs.with_columns(joined.select(
        pl.when(pl.col("live") != pl.col("t_live")).then(pl.lit("status_mismatch"))
        .when(o_amount != pl.col("t_signed")).then(pl.lit("amount_mismatch"))
        .when(pl.col("business_date") != pl.col("line_date")).then(pl.lit("date_mismatch"))
        .when(net_head & pl.col("o_fee").is_not_null() & pl.col("t_fee").is_not_null()
              & (pl.col("o_fee").abs() != pl.col("t_fee").abs()))
        .then(pl.lit("fee_mismatch"))
        .otherwise(pl.lit("matched")).alias("klass"))["klass"])
