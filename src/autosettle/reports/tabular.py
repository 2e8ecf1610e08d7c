"""CSV and JSON renderings of a :class:`~autosettle.reports.model.Report`, streamed.

CSV is UTF-8 with a byte-order mark (so Excel opens the Chinese titles right): the column
titles, every row, the totals row ("合计"), an empty line, then the parameters and summary
figures as label/value pairs. Money is plain yuan with two decimals (``-1234.50``), dates
ISO, times Shanghai wall-clock. JSON keeps money as integer fen.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

from autosettle.domain.calendar import SHANGHAI
from autosettle.reports.model import Cell, Column, ColumnType, Report, fen_text

BOM = "\ufeff"
ROWS_PER_CHUNK = 500
Progress = Callable[[int], None]


def text_cell(value: Cell, column_type: ColumnType) -> str:
    """One cell as CSV text."""
    if value is None:
        return ""
    if column_type is ColumnType.MONEY and isinstance(value, int):
        return fen_text(value)
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


def iter_csv(report: Report, progress: Progress | None = None) -> Iterator[bytes]:
    """The report as CSV, in chunks of encoded bytes (the first starts with the BOM)."""
    columns = report.columns
    types = [c.type for c in columns]
    yield (BOM + _line([c.title for c in columns])).encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    pending = 0
    for row in report.rows:
        writer.writerow([text_cell(v, t) for v, t in zip(row, types, strict=True)])
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if progress is not None:
                progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    tail = [buffer.getvalue(), _line([text_cell(v, c.type) for v, c in
                                      zip(report.totals_row(), columns, strict=True)]), "\r\n"]
    tail += [_line([label, value]) for label, value in report.parameters]
    tail += [_line([f.label, text_cell(f.value, f.type)]) for f in report.figures]
    yield "".join(tail).encode()


def _json_cell(value: Cell) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _column(c: Column) -> dict[str, str]:
    return {"key": c.key, "title": c.title, "type": c.type.value}


def iter_json(report: Report, progress: Progress | None = None) -> Iterator[bytes]:
    """The report as one JSON object (money in integer fen), rows streamed."""
    head = {
        "report": report.name, "title": report.title,
        "merchant": {"merchant_id": report.header.merchant_id, "name": report.header.name},
        "currency": report.currency,
        "generated_at": report.generated_at.isoformat() if report.generated_at else None,
        "parameters": dict(report.parameters),
        "columns": [_column(c) for c in report.columns],
        "row_count": report.row_count,
    }
    text = json.dumps(head, ensure_ascii=False)
    yield (text[:-1] + ', "rows": [').encode()
    keys = [c.key for c in report.columns]
    first = True
    chunk: list[str] = []
    for row in report.rows:
        item = json.dumps({k: _json_cell(v) for k, v in zip(keys, row, strict=True)},
                          ensure_ascii=False)
        chunk.append(item if first else "," + item)
        first = False
        if len(chunk) >= ROWS_PER_CHUNK:
            yield "".join(chunk).encode()
            if progress is not None:
                progress(len(chunk))
            chunk = []
    if progress is not None and chunk:
        progress(len(chunk))
    tail = {
        "totals": dict(report.totals),
        "figures": {f.key: f.value for f in report.figures},
        "charts": [{"kind": c.kind.value, "title": c.title, "unit": c.unit.value,
                    "labels": list(c.labels),
                    "series": [{"name": s.name, "values": list(s.values)} for s in c.series]}
                   for c in report.charts],
        "notes": list(report.notes),
    }
    yield ("".join(chunk) + "], " + json.dumps(tail, ensure_ascii=False)[1:]).encode()
