"""The console's printer pages on both databases: the printer list and a printer's page for
both roles, merchant isolation (another merchant's printer or receipt is a 404), the
diagnosis through the page against a fake network printer on 127.0.0.1, stuck jobs and
their cancelling, reprints (one form sent twice reprints once), CSRF on every POST, and
the e-receipt link of a transaction."""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from consoletools import PASSWORD, login
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "printing"))

from printtools import (
    MID,
    MID_OTHER,
    TID,
    TID_OTHER,
    FakePrinter,
    PrinterState,
    sale,
    seed_shop,
    txn_of,
)

from autosettle.domain.console_users import UserRole
from autosettle.domain.print_records import JobState, PrintJob
from autosettle.services import printing, users
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.printing import NewPrinter
from autosettle.simulators.issuer import IssuerSimulator

FRONT = "front-desk"  # MID's printer, on the fake network printer
OTHER = "lw-till"  # MID_OTHER's printer
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator, fake: FakePrinter) -> ServiceContext:
    """Two merchants with a printer each, an operator and a user of each merchant."""
    seed_shop(ctx, sim)
    ctx.settings.printer_timeout_s = 1.0
    printing.add_printer(ctx, SYSTEM, NewPrinter(FRONT, MID, TID, "network", fake.address,
                                                 copies=1))
    printing.add_printer(ctx, SYSTEM, NewPrinter(OTHER, MID_OTHER, TID_OTHER, "network",
                                                 fake.address, width_cols=48, copies=1))
    users.create_user(ctx, SYSTEM, users.NewUser("ops", PASSWORD, UserRole.OPERATOR))
    users.create_user(ctx, SYSTEM, users.NewUser("shop1", PASSWORD, UserRole.MERCHANT, MID))
    users.create_user(ctx, SYSTEM, users.NewUser("shop2", PASSWORD, UserRole.MERCHANT,
                                                 MID_OTHER))
    return ctx


def jobs(ctx: ServiceContext, name: str = FRONT) -> list[PrintJob]:
    return sorted(printing.list_jobs(ctx, SYSTEM, name, limit=500), key=lambda j: j.job_id)


def printed_sale(ctx: ServiceContext, fen: int) -> str:
    """A sale at MID's terminal, its slip queued and printed."""
    txn_id = txn_of(sale(ctx, fen))
    assert printing.follow(ctx) == 1
    assert printing.deliver(ctx).printed == 1
    return txn_id


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def form_key(page: str, form: str) -> str:
    found = re.search(rf'data-testid="{form}">.*?name="request_key" value="([^"]+)"', page,
                      re.S)
    assert found, f"no request_key in {form}"
    return found.group(1)


def test_the_list_shows_the_printers_in_reach_with_their_queue(
        console: TestClient, shop: ServiceContext, fake: FakePrinter) -> None:
    printed_sale(shop, 1234)
    login(console, "ops")
    page = console.get("/console/printers")
    assert page.status_code == 200
    assert 'data-testid="nav-printers"' in page.text
    assert f'data-printer="{FRONT}"' in page.text and f'data-printer="{OTHER}"' in page.text
    console.cookies.clear()
    login(console, "shop1")
    mine = console.get("/console/printers")
    assert mine.status_code == 200 and "打印机" in mine.text  # merchant users read Chinese
    assert f'data-printer="{FRONT}"' in mine.text and OTHER not in mine.text
    row = re.search(r'data-printer="front-desk".*?</tr>', mine.text, re.S)
    assert row and 'data-testid="printer-pending">0<' in row.group(0)


def test_the_printer_page_shows_the_last_slips_and_isolation(
        console: TestClient, shop: ServiceContext) -> None:
    txn_id = printed_sale(shop, 1234)
    login(console, "shop1")
    page = console.get(f"/console/printers/{FRONT}")
    assert page.status_code == 200
    slip = re.search(r'data-testid="slip-text"[^>]*>(.*?)</pre>', page.text, re.S)
    assert slip and "RMB 12.34" in slip.group(1)
    text = html.unescape(slip.group(1))
    assert "华联超市" in text  # Chinese as it prints: two columns a character
    assert max(columns(line) for line in text.splitlines()) <= 32
    assert f"/console/transactions/{txn_id}/receipt.png" in page.text
    assert 'data-testid="job-cancel"' not in page.text  # operators cancel
    assert console.get(f"/console/printers/{OTHER}").status_code == 404
    assert console.get("/console/printers/nosuch").status_code == 404
    console.cookies.clear()
    login(console, "shop2")
    assert console.get(f"/console/printers/{FRONT}").status_code == 404
    other = console.get(f"/console/printers/{OTHER}")
    assert other.status_code == 200 and 'data-testid="slip"' not in other.text
    console.cookies.clear()
    login(console, "ops")
    for name in (FRONT, OTHER):
        assert console.get(f"/console/printers/{name}").status_code == 200


def test_check_walks_the_steps_and_says_the_paper_is_out(
        console: TestClient, shop: ServiceContext, fake: FakePrinter) -> None:
    fake.state = PrinterState(paper_out=True)
    _, csrf = login(console, "ops")
    refused = console.post(f"/console/printers/{FRONT}/check", data={"test_page": "1"})
    assert refused.status_code == 403
    answer = console.post(f"/console/printers/{FRONT}/check",
                          data={"csrf_token": csrf, "test_page": "1"})
    assert answer.status_code == 200
    steps = dict(re.findall(r'data-step="(\w+)" data-outcome="(\w+)"', answer.text))
    assert steps == {"interface": "ok", "reachable": "ok", "status": "ok",
                     "paper": "failed", "cover": "not_run", "test_page": "not_run"}
    assert "the printer is out of paper" in answer.text
    assert "load a new thermal paper roll" in answer.text
    assert fake.received() == b""  # no test page on a printer without paper
    console.cookies.clear()
    _, csrf = login(console, "shop1")
    zh = console.post(f"/console/printers/{FRONT}/check", data={"csrf_token": csrf})
    assert zh.status_code == 200 and "打印机缺纸" in zh.text and "装入新的热敏纸卷" in zh.text
    assert console.post(f"/console/printers/{OTHER}/check",
                        data={"csrf_token": csrf}).status_code == 404
    fake.state = PrinterState()
    ready = console.post(f"/console/printers/{FRONT}/check",
                         data={"csrf_token": csrf, "test_page": "1"})
    assert 'data-step="test_page" data-outcome="ok"' in ready.text
    assert "打印机正常" in ready.text


def test_stuck_jobs_show_and_operators_cancel_them(
        console: TestClient, shop: ServiceContext, fake: FakePrinter, clock: object) -> None:
    fake.state = PrinterState(paper_out=True)
    sale(shop, 500)
    assert printing.follow(shop) == 1
    assert printing.deliver(shop).failed == 1
    clock.advance(minutes=3)  # type: ignore[attr-defined]
    [job] = jobs(shop)
    _, csrf = login(console, "shop1")
    page = console.get(f"/console/printers/{FRONT}").text
    assert f'data-job-id="{job.job_id}" data-stuck="1"' in page
    assert console.get("/console/printers").text.count('class="status s-failed">1<') == 1
    merchant_cancel = console.post(f"/console/print-jobs/{job.job_id}/cancel",
                                   data={"csrf_token": csrf})
    assert merchant_cancel.status_code == 403
    assert jobs(shop)[0].state is JobState.PENDING
    console.cookies.clear()
    _, csrf = login(console, "ops")
    page = console.get(f"/console/printers/{FRONT}").text
    assert 'data-testid="job-cancel"' in page
    no_csrf = console.post(f"/console/print-jobs/{job.job_id}/cancel")
    assert no_csrf.status_code == 403 and jobs(shop)[0].state is JobState.PENDING
    done = console.post(f"/console/print-jobs/{job.job_id}/cancel",
                        data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/console/printers/{FRONT}"
    assert jobs(shop)[0].state is JobState.CANCELLED
    assert console.post(f"/console/print-jobs/{job.job_id}/cancel",
                        data={"csrf_token": csrf}).status_code == 409


def test_reprints_once_per_form_by_last_trace_and_rrn(
        console: TestClient, shop: ServiceContext) -> None:
    txn_id = printed_sale(shop, 1234)
    record = next(j for j in jobs(shop) if j.txn_id == txn_id)
    _, csrf = login(console, "shop1")
    page = console.get(f"/console/printers/{FRONT}").text
    key = form_key(page, "reprint-last-form")
    url = f"/console/printers/{FRONT}/reprint"
    assert console.post(url, data={"request_key": key}).status_code == 403
    assert len(jobs(shop)) == 1
    for _ in range(2):  # the same form sent twice: one duplicate
        answer = console.post(url, data={"csrf_token": csrf, "request_key": key},
                              follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/console/printers/{FRONT}"
    dupes = [j for j in jobs(shop) if j.duplicate]
    assert len(dupes) == 1 and dupes[0].txn_id == txn_id and dupes[0].state is JobState.PENDING
    page = console.get(f"/console/printers/{FRONT}").text
    assert f'data-job-id="{dupes[0].job_id}"' in page
    by_trace = console.post(url, data={"csrf_token": csrf, "trace": str(int(record.stan or "0")),
                                       "request_key": form_key(page, "reprint-trace-form")})
    assert by_trace.status_code == 200
    by_rrn = console.post(url, data={"csrf_token": csrf, "rrn": record.rrn or "",
                                     "request_key": form_key(page, "reprint-rrn-form")})
    assert by_rrn.status_code == 200
    assert len([j for j in jobs(shop) if j.duplicate]) == 3
    unknown = console.post(url, data={"csrf_token": csrf, "trace": "999999",
                                      "request_key": "k-unknown"})
    assert unknown.status_code == 404
    assert len(jobs(shop)) == 4
    console.cookies.clear()
    _, csrf = login(console, "shop2")
    assert console.post(url, data={"csrf_token": csrf}).status_code == 404
    assert len(jobs(shop)) == 4


def test_the_transaction_page_links_the_e_receipt(
        console: TestClient, shop: ServiceContext) -> None:
    txn_id = txn_of(sale(shop, 1234))
    login(console, "shop1")
    page = console.get(f"/console/transactions/{txn_id}").text
    for fmt in ("png", "pdf", "txt"):
        assert f'href="/console/transactions/{txn_id}/receipt.{fmt}"' in page
    png = console.get(f"/console/transactions/{txn_id}/receipt.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_MAGIC)
    txt = console.get(f"/console/transactions/{txn_id}/receipt.txt")
    assert txt.status_code == 200 and "RMB 12.34" in txt.text
    assert console.get(f"/console/transactions/{txn_id}/receipt.pdf").content[:5] == b"%PDF-"
    assert console.get(f"/console/transactions/{txn_id}/receipt.exe").status_code == 404
    console.cookies.clear()
    login(console, "shop2")
    assert console.get(f"/console/transactions/{txn_id}/receipt.png").status_code == 404
    console.cookies.clear()
    login(console, "ops")
    assert console.get(f"/console/transactions/{txn_id}/receipt.png").status_code == 200
