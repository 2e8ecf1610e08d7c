"""Reports: ``GET /v1/reports/{name}?format=csv|xlsx|pdf|json`` (the same reports as the
console and ``autosettle reports``, built by :mod:`autosettle.reports.catalog`).

Access and parameters are checked before the first byte is sent, so every refusal is a
typed 4xx. CSV and JSON stream as they are read; XLSX and PDF are written to a spooled
temporary file (memory up to 8 MiB, then disk) and streamed from it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from typing import IO, Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from autosettle.api.deps import Ctx, Who
from autosettle.api.schemas import MERCHANT_ID_PATTERN
from autosettle.reports.catalog import ReportName, ReportRequest, build
from autosettle.reports.formats import MEDIA_TYPES, ReportFormat, file_name, render
from autosettle.reports.tabular import iter_csv, iter_json

router = APIRouter(prefix="/v1", tags=["reports"])
SPOOL_BYTES_MAX: Final = 8 * 1024 * 1024
CHUNK_BYTES: Final = 64 * 1024
_BINARY: Final[dict[str, Any]] = {"schema": {"type": "string", "format": "binary"}}
RESPONSES: Final[dict[int | str, dict[str, Any]]] = {200: {
    "description": "The report: CSV (UTF-8 with BOM), XLSX, PDF, or JSON (money in fen)",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        MEDIA_TYPES[ReportFormat.XLSX]: _BINARY,
        MEDIA_TYPES[ReportFormat.PDF]: _BINARY,
        "application/json": {"schema": {"type": "object"}},
    },
}}


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


@router.get("/reports/{name}", response_class=StreamingResponse, responses=RESPONSES)
def get_report(
    ctx: Ctx, who: Who,
    name: Annotated[ReportName, Path(description="daily-summary, settlement, statement, "
                                                 "fee-analysis or terminal-health")],
    format: Annotated[ReportFormat, Query(description="csv, xlsx, pdf or json")] = (
        ReportFormat.JSON),
    date_: Annotated[date | None, Query(alias="date", description=(
        "business date of daily-summary and terminal-health (default: today)"))] = None,
    date_from: Annotated[date | None, Query(description="first day of the period")] = None,
    date_to: Annotated[date | None, Query(description="last day of the period")] = None,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID_PATTERN, description=(
        "the merchant (required for statement; a merchant key: its own)"))] = None,
) -> StreamingResponse:
    """One report in one format. A merchant key sees only its own merchant (another
    merchant's report is ``404``); a terminal key sees none."""
    report = build(ctx, who, ReportRequest(name, date_, date_from, date_to, merchant_id))
    headers = {"Content-Disposition": f'attachment; filename="{file_name(report, format)}"'}
    media_type = MEDIA_TYPES[format]
    if format is ReportFormat.CSV:
        return StreamingResponse(iter_csv(report), media_type=media_type, headers=headers)
    if format is ReportFormat.JSON:
        return StreamingResponse(iter_json(report), media_type=media_type)
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES_MAX)  # noqa: SIM115
    try:
        render(report, format, spooled)
    except BaseException:
        spooled.close()
        raise
    return StreamingResponse(_chunks(spooled), media_type=media_type,
                             headers=headers)
