"""Importing the other side's files on both databases: bad lines (quarantined or the whole
file rejected, per source), wrong control totals, a GBK file, a truncated file."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from autosettle.domain.errors import ValidationError
from autosettle.services import recon
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import ClearingLine, write_acp_file
from autosettle.store.tables import audit_log, recon_lines, recon_quarantine

DAY = date(2026, 9, 18)
SPEC = recon.builtin_sources()["acp"]


def _lines(n: int = 6) -> list[ClearingLine]:
    return [ClearingLine("sale", f"{i:032x}", "898310054110001", "ST110001",
                         datetime(2026, 9, 18, 10, 0, i), 1_000 + i, 4, "622202******5679",
                         f"{i + 1:06d}") for i in range(n)]


def _acp(tmp_path: Path, n: int = 6) -> Path:
    return write_acp_file(tmp_path / "INN260918ZM", DAY, _lines(n))


def _patch(path: Path, line_no: int, field: str, value: bytes) -> None:
    """Overwrite one field of one line (1-based line number), keeping its length."""
    rows = path.read_bytes().split(b"\n")
    pos = SPEC.fields[field]
    row = bytearray(rows[line_no - 1])
    row[pos.start:pos.start + pos.width] = value.ljust(pos.width)[:pos.width]
    rows[line_no - 1] = bytes(row)
    path.write_bytes(b"\n".join(rows))


def _count(ctx: ServiceContext, table: object) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_good_file_imports_every_line(ctx: ServiceContext, tmp_path: Path) -> None:
    done = recon.import_file(ctx, SYSTEM, _acp(tmp_path), "acp")
    assert (done.accepted, done.lines, done.imported, done.file_date) == (True, 6, 6, DAY)
    assert _count(ctx, recon_lines) == 6


def test_bad_lines_are_quarantined_with_number_and_reason(ctx: ServiceContext,
                                                          tmp_path: Path) -> None:
    path = _acp(tmp_path)
    _patch(path, 3, "amount", b"00000001x000")   # line 3: the second detail line
    _patch(path, 5, "txn_code", b"X99")
    rows = path.read_bytes().split(b"\n")
    rows[6] = rows[6][:100]   # line 7 cut short
    path.write_bytes(b"\n".join(rows))
    done = recon.import_file(ctx, SYSTEM, path, "acp")
    assert done.accepted and done.imported == 3
    reasons = dict(done.bad)
    assert sorted(reasons) == [3, 5, 7]
    assert "amount" in reasons[3] and "X99" in reasons[5] and "bytes" in reasons[7]
    assert _count(ctx, recon_lines) == 3
    with ctx.db.unit_of_work() as uow:
        stored = uow.recon.quarantined(done.file_id or 0)
    assert [n for n, _ in stored] == [3, 5, 7]
    assert all("622202" not in r for _, r in stored), "no card data in a reason"


def test_a_source_that_rejects_bad_lines_stores_nothing(ctx: ServiceContext,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "statement.csv"
    path.write_text(
        "交易日期,交易时间,商户号,终端号,参考号,凭证号,批次号,卡号,交易类型,交易金额,手续费\n"
        "2026-09-18,10:00:00,898310054110001,ST110001,000000000001,000001,000001,"
        "622202******5679,消费,10.00,0.04\n"
        "2026-09-18,10:01:00,898310054110001,ST110001,000000000002,000002,000001,"
        "622202******5679,消费,10.5,0.04\n"
        "合计,2,20.50\n", encoding="utf-8")
    with pytest.raises(recon.ImportRejected) as rejected:
        recon.import_file(ctx, SYSTEM, path, "statement-csv")
    assert rejected.value.result.bad == [(3, "amount 10.5 is not yuan with two decimals")]
    assert not rejected.value.result.accepted
    assert _count(ctx, recon_lines) == 0
    with ctx.db.unit_of_work() as uow:
        outcomes = [r.outcome for r in uow.connection.execute(
            select(audit_log.c.outcome).where(audit_log.c.action == "recon.import"))]
    assert outcomes == ["rejected"]
    # fixed, the same statement imports
    path.write_text(path.read_text(encoding="utf-8").replace(",10.5,", ",10.50,"),
                    encoding="utf-8")
    done = recon.import_file(ctx, SYSTEM, path, "statement-csv")
    assert (done.imported, done.file_date) == (2, DAY)


@pytest.mark.parametrize(("record", "field", "value", "says"), [
    (1, "count", b"0000000007", "header says 7 lines"),
    (-1, "total", b"0000000000009999", "trailer says a total of 9999 fen"),
])
def test_wrong_control_totals_reject_the_file(ctx: ServiceContext, tmp_path: Path,
                                              record: int, field: str, value: bytes,
                                              says: str) -> None:
    path = _acp(tmp_path)
    rows = path.read_bytes().rstrip(b"\n").split(b"\n")
    control = SPEC.header if record == 1 else SPEC.trailer
    assert control is not None
    pos = control.fields[field]
    index = 0 if record == 1 else len(rows) - 1
    row = bytearray(rows[index])
    row[pos.start:pos.start + pos.width] = value
    rows[index] = bytes(row)
    path.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(recon.ImportRejected, match=says):
        recon.import_file(ctx, SYSTEM, path, "acp")
    assert _count(ctx, recon_lines) == 0


def test_a_truncated_file_is_rejected(ctx: ServiceContext, tmp_path: Path) -> None:
    path = _acp(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])   # cut in the middle of a line
    with pytest.raises(recon.ImportRejected, match="truncated"):
        recon.import_file(ctx, SYSTEM, path, "acp")
    whole_lines = data[:data.rfind(b"\nTRL") + 1]   # every detail line, no trailer
    path.write_bytes(whole_lines)
    with pytest.raises(recon.ImportRejected, match="no trailer"):
        recon.import_file(ctx, SYSTEM, path, "acp")
    assert _count(ctx, recon_lines) == 0 and _count(ctx, recon_quarantine) == 0


def test_a_gbk_file_is_read_by_bytes(ctx: ServiceContext, tmp_path: Path) -> None:
    """Chinese in a field the layout does not map (the sub-merchant's short name, field
    31) takes two bytes per character: every later field is still where the layout says;
    a line that is not valid GBK is a bad line."""
    path = _acp(tmp_path)
    rows = path.read_bytes().split(b"\n")
    name = "华联超市".encode("gbk")
    start = sum(w + 1 for w in (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13,
                                4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15))
    for i in (2, 3):
        row = bytearray(rows[i - 1])
        row[start:start + len(name)] = name
        rows[i - 1] = bytes(row)
    row = bytearray(rows[4])
    row[start:start + 2] = b"\x81\x20"   # not a GBK character
    rows[4] = bytes(row)
    path.write_bytes(b"\n".join(rows))
    done = recon.import_file(ctx, SYSTEM, path, "acp")
    assert done.bad == [(5, "not valid gbk")]
    with ctx.db.unit_of_work() as uow:
        lines = uow.recon.lines("issuer-sim", DAY).sort("line_no")
    assert lines["terminal_id"].to_list() == ["ST110001"] * 5
    assert lines["amount_minor"].to_list() == [1_000, 1_001, 1_002, 1_004, 1_005]
    assert lines["order_ref"][0] == f"{0:032x}"


def test_an_unknown_source_is_refused(ctx: ServiceContext, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown source"):
        recon.import_file(ctx, SYSTEM, _acp(tmp_path), "nope")
