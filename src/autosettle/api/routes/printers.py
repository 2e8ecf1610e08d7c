"""Printers and the print queue: profiles (operators change them), the diagnosis, jobs,
reprints. Merchants see their own printers, a terminal key its own terminal's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from autosettle.api.deps import Ctx, Idem, Who
from autosettle.api.schemas import MERCHANT_ID_PATTERN, MerchantId, TerminalId
from autosettle.domain.print_records import PrinterProfile, PrintJob
from autosettle.services import printing
from autosettle.services.printing import NewPrinter, PrinterChanges

router = APIRouter(prefix="/v1", tags=["printers"])
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Interface = Annotated[str, Field(pattern="^(network|usb|serial|parallel|file)$")]
Address = Annotated[str, Field(min_length=1, max_length=200)]
Encoding = Annotated[str, Field(pattern="^(gb18030|gbk|ascii)$")]
Width = Annotated[int, Field(description="32 (58 mm paper) or 48 (80 mm)")]
Copies = Annotated[int, Field(ge=1, le=3, description="1: merchant copy; 2: and the "
                              "cardholder's; 3: and the bank's")]


class PrinterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    merchant_id: MerchantId
    terminal_id: TerminalId
    interface: Interface
    address: Address = Field(description="network: host[:port] (port 9100); usb: "
                             "vendor:product (0416:5011); serial: /dev/ttyS0[@9600]; "
                             "parallel: /dev/lp0; file: a path")
    width_cols: Width = 32
    encoding: Encoding = "gb18030"
    copies: Copies = 2
    enabled: bool = True


class PrinterPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interface: Interface | None = None
    address: Address | None = None
    width_cols: Width | None = None
    encoding: Encoding | None = None
    copies: Copies | None = None
    enabled: bool | None = None


class PrinterPublic(BaseModel):
    name: str
    merchant_id: str
    terminal_id: str
    interface: str
    address: str
    width_cols: int
    encoding: str
    copies: int
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: PrinterProfile) -> PrinterPublic:
        return cls(name=p.name, merchant_id=p.merchant_id, terminal_id=p.terminal_id,
                   interface=p.interface, address=p.address, width_cols=p.width_cols,
                   encoding=p.encoding, copies=p.copies, enabled=p.enabled,
                   created_at=p.created_at, updated_at=p.updated_at)


class PrinterList(BaseModel):
    items: list[PrinterPublic]


class StepPublic(BaseModel):
    name: str
    title_zh: str
    title_en: str
    outcome: str = Field(description="ok, warning, failed or not_run")
    detail: str
    problem_zh: str | None = None
    problem_en: str | None = None
    todo_zh: str | None = None
    todo_en: str | None = None


class DiagnosisPublic(BaseModel):
    printer: str
    interface: str
    address: str
    ok: bool
    steps: list[StepPublic]


class JobPublic(BaseModel):
    job_id: int
    printer_name: str
    merchant_id: str
    terminal_id: str
    kind: str
    copy_kind: str | None = Field(description="merchant, cardholder or bank")
    duplicate: bool
    txn_id: str | None
    batch_no: str | None
    stan: str | None
    rrn: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    printed_at: datetime | None
    stuck: bool

    @classmethod
    def of(cls, j: PrintJob, now: datetime) -> JobPublic:
        return cls(job_id=j.job_id, printer_name=j.printer_name, merchant_id=j.merchant_id,
                   terminal_id=j.terminal_id, kind=j.kind.value, copy_kind=j.copy,
                   duplicate=j.duplicate, txn_id=j.txn_id, batch_no=j.batch_no, stan=j.stan,
                   rrn=j.rrn, state=j.state.value, attempts=j.attempts,
                   next_attempt_at=j.next_attempt_at, last_error=j.last_error,
                   created_at=j.created_at, printed_at=j.printed_at,
                   stuck=printing.is_stuck(j, now))


class JobList(BaseModel):
    items: list[JobPublic]


class ReprintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace: Annotated[str, Field(pattern=r"^\d{1,6}$", description="凭证号")] | None = None
    rrn: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,12}$", description="参考号")] | None = None
    txn_id: Annotated[str, Field(min_length=1, max_length=32)] | None = None


@router.post("/printers", response_model=PrinterPublic, status_code=201)
def add_printer(body: PrinterIn, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Add a printer to a terminal (operators)."""
    return idem.run(lambda: PrinterPublic.of(printing.add_printer(ctx, who, NewPrinter(
        body.name, body.merchant_id, body.terminal_id, body.interface, body.address,
        body.width_cols, body.encoding, body.copies, body.enabled))), status_code=201)


@router.get("/printers", response_model=PrinterList)
def list_printers(ctx: Ctx, who: Who, merchant_id: Annotated[
        str | None, Query(pattern=MERCHANT_ID_PATTERN)] = None) -> PrinterList:
    return PrinterList(items=[PrinterPublic.of(p)
                              for p in printing.list_printers(ctx, who, merchant_id)])


@router.get("/printers/{name}", response_model=PrinterPublic)
def get_printer(name: Name, ctx: Ctx, who: Who) -> PrinterPublic:
    return PrinterPublic.of(printing.get_printer(ctx, who, name))


@router.patch("/printers/{name}", response_model=PrinterPublic)
def update_printer(name: Name, body: PrinterPatch, ctx: Ctx, who: Who) -> PrinterPublic:
    """Change a printer's settings (operators)."""
    return PrinterPublic.of(printing.update_printer(ctx, who, name, PrinterChanges(
        body.interface, body.address, body.width_cols, body.encoding, body.copies,
        body.enabled)))


@router.delete("/printers/{name}", status_code=204)
def remove_printer(name: Name, ctx: Ctx, who: Who) -> None:
    """Remove a printer (operators); its pending jobs are cancelled."""
    printing.remove_printer(ctx, who, name)


@router.post("/printers/{name}/check", response_model=DiagnosisPublic)
def check_printer(name: Name, ctx: Ctx, who: Who, test_page: bool = True) -> DiagnosisPublic:
    """Walk the troubleshooting steps: interface, connection, status, paper, cover, test
    page; say what is wrong and what to do (docs/printers.md)."""
    found = printing.check(ctx, who, name, test_page)
    return DiagnosisPublic(
        printer=found.printer_name, interface=found.interface, address=found.address,
        ok=found.ok, steps=[StepPublic(
            name=s.name.value, title_zh=s.title_zh, title_en=s.title_en,
            outcome=s.outcome.value, detail=s.detail,
            problem_zh=s.advice.problem_zh if s.advice else None,
            problem_en=s.advice.problem_en if s.advice else None,
            todo_zh=s.advice.todo_zh if s.advice else None,
            todo_en=s.advice.todo_en if s.advice else None) for s in found.steps])


@router.get("/printers/{name}/jobs", response_model=JobList)
def printer_jobs(name: Name, ctx: Ctx, who: Who,
                 state: Annotated[str | None, Query(pattern="^(pending|printed|cancelled)$")]
                 = None, stuck: bool = False,
                 limit: Annotated[int, Query(ge=1, le=printing.JOBS_PAGE_MAX)] = 50) -> JobList:
    now = ctx.now()
    return JobList(items=[JobPublic.of(j, now) for j in printing.list_jobs(
        ctx, who, name, state, stuck, limit)])


@router.get("/print-jobs", response_model=JobList)
def all_jobs(ctx: Ctx, who: Who,
             state: Annotated[str | None, Query(pattern="^(pending|printed|cancelled)$")]
             = None, stuck: bool = False,
             limit: Annotated[int, Query(ge=1, le=printing.JOBS_PAGE_MAX)] = 50) -> JobList:
    """Print jobs of every printer the caller may see; ``stuck=true``: the ones not
    getting printed."""
    now = ctx.now()
    return JobList(items=[JobPublic.of(j, now) for j in printing.list_jobs(
        ctx, who, None, state, stuck, limit)])


@router.post("/printers/{name}/reprints", response_model=JobList, status_code=201)
def reprint(name: Name, body: ReprintIn, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Reprint (重打印 DUPLICATE) the last slip, or one by trace, RRN or transaction id."""
    def run() -> JobList:
        now = ctx.now()
        return JobList(items=[JobPublic.of(j, now) for j in printing.reprint(
            ctx, who, name, trace=body.trace, rrn=body.rrn, txn_id=body.txn_id)])
    return idem.run(run, status_code=201)


@router.post("/print-jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx, who: Who) -> JobPublic:
    """Cancel a pending job (operators)."""
    return JobPublic.of(printing.cancel_job(ctx, who, job_id), ctx.now())
