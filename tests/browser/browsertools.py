"""What the browser tests share: the site they run against, its data, logging in and
screenshots (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments, settlement
from autosettle.services import payouts as payout_service
from autosettle.services.context import ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators import demo_seed

CHROMIUM = Path(os.environ.get("AUTOSETTLE_TEST_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "var" / "test-artifacts" / "browser"
DOCS_IMG = REPO / "docs" / "img"
PG_URL_ENV = "AUTOSETTLE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get(PG_URL_ENV) else [])
TEST_PAN_KEY = "11" * 32
TEST_DATA_KEY = "22" * 32
PIN = "123456"
CARD_BALANCE_MINOR = 10_000_000
SERVER_START_TIMEOUT_S = 20.0
VIEWPORT = {"width": 1280, "height": 900}

HUALIAN, LAOWANG, KANGJIAN = (d.merchant.merchant_id for d in demo_seed.DEMO_MERCHANTS)
MONDAY = datetime(2026, 9, 14, 3, 0, tzinfo=UTC)    # 11:00 in Shanghai
TUESDAY = datetime(2026, 9, 15, 2, 0, tzinfo=UTC)   # 10:00 in Shanghai: the site's "now"
RUN_DATE = date(2026, 9, 15)
LOGINS = {u.username: u.password for u in demo_seed.DEMO_USERS}
OPERATOR = "operator"
MERCHANT_USER = {u.merchant_id: u.username for u in demo_seed.DEMO_USERS if u.merchant_id}


def pan(serial: int, bin6: str) -> str:
    body = f"{bin6}{serial:012d}"
    return body + luhn_check_digit(body)


DEBIT = pan(7, "622202")     # ICBC debit: the card searched for by its last 4 digits
CREDIT = pan(11, "625802")   # China Merchants Bank credit
OTHER = pan(13, "621700")    # CCB debit


class StepClock:
    """The site's clock: fixed, moved only by the fixture."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Site:
    """A running console and what the tests look for in it."""

    backend: str
    base_url: str
    ctx: ServiceContext
    sale_id: str = ""
    """Hualian's sale on the DEBIT card, later refunded in part."""
    sale_amount_minor: int = 0
    refund_id: str = ""
    voided_id: str = ""
    other_merchant_txn: str = ""
    """A Kangjian sale: not Hualian's to see."""
    payouts: dict[str, str] = field(default_factory=dict)
    """merchant id -> its payout of the run (sent to the bank)."""
    batches: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _sale(ctx: ServiceContext, merchant_id: str, terminal_id: str, fen: int,
          card: str) -> str:
    result = payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, merchant_id, terminal_id, Money(fen), CardInput(card, "3012", PIN)))
    assert result.approved and result.record is not None, result.message
    return result.record.txn_id


def _follow_up(ctx: ServiceContext, txn_type: TxnType, merchant_id: str, terminal_id: str,
               original: str, fen: int | None = None) -> str:
    result = payments.authorize(ctx, PaymentRequest(
        txn_type, merchant_id, terminal_id, Money(fen) if fen is not None else None, None,
        OriginalRef(txn_id=original)))
    assert result.approved and result.record is not None, result.message
    return result.record.txn_id


def trade(site: Site, clock: StepClock) -> None:
    """Monday's trading of the T+1 merchants (with a void and a refund), Tuesday morning's
    sales, then Tuesday's runs at 10:00 and the payout file: every merchant has a batch and
    a sent payout; the supermarket's Tuesday sales are still unsettled."""
    ctx = site.ctx
    clock.at = MONDAY
    site.sale_amount_minor = 12_345
    site.sale_id = _sale(ctx, HUALIAN, "HL000001", site.sale_amount_minor, DEBIT)
    for n, fen in enumerate((8_800, 25_600, 3_990, 64_000)):
        clock.at += timedelta(minutes=7)
        _sale(ctx, HUALIAN, "HL000002" if n % 2 else "HL000001", fen, CREDIT)
    clock.at += timedelta(minutes=3)
    site.voided_id = _sale(ctx, HUALIAN, "HL000002", 5_000, OTHER)
    _follow_up(ctx, TxnType.VOID, HUALIAN, "HL000002", site.voided_id)
    clock.at += timedelta(hours=2)
    site.refund_id = _follow_up(ctx, TxnType.REFUND, HUALIAN, "HL000001", site.sale_id, 2_345)
    site.other_merchant_txn = _sale(ctx, KANGJIAN, "KJ000001", 4_280, CREDIT)
    _sale(ctx, KANGJIAN, "KJ000001", 15_600, OTHER)
    # Tuesday morning, in time order: the noodle shop's sales (settled by the D+0 run at
    # 10:00) and the supermarket's (due tomorrow), for the dashboard's charts.
    tuesday = [(TUESDAY - timedelta(minutes=100 - 20 * n), LAOWANG, "LW000001", fen, OTHER)
               for n, fen in enumerate((1_800, 2_600, 3_200))]
    tuesday += [(TUESDAY - timedelta(minutes=110 - 17 * n), HUALIAN,
                 "HL000001" if n % 2 else "HL000002", fen, CREDIT if n % 3 else DEBIT)
                for n, fen in enumerate((2_200, 18_800, 7_450, 990, 36_000, 12_000))]
    for at, merchant_id, terminal_id, fen, card in sorted(tuesday):
        clock.at = at
        _sale(ctx, merchant_id, terminal_id, fen, card)
    clock.at = TUESDAY
    summary = settlement.settle(ctx, RUN_DATE, settlement.NEXT_DAY)
    assert not summary.errors and summary.batches == 2, summary
    summary = settlement.settle(ctx, RUN_DATE, settlement.SAME_DAY)
    assert not summary.errors and summary.batches == 1, summary
    payout_service.export_payouts(ctx, RUN_DATE, ctx.settings.data_dir / "payouts")
    with ctx.db.unit_of_work() as uow:
        for payout in uow.settlement.payouts(limit=None):
            site.payouts[payout.merchant_id] = payout.payout_id
            site.batches[payout.merchant_id] = payout.batch_id
    clock.at = TUESDAY


def login(page: Page, site: Site, username: str) -> None:
    """Log in through the form and land on the dashboard."""
    page.goto(site.url("/console/login"))
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(LOGINS[username])
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(site.url("/console/"))
    assert page.get_by_test_id("current-user").inner_text().strip() != ""


def screenshot(page: Page, site: Site, name: str) -> Path:
    """Save a full-page screenshot in the artefacts (and in docs/img from the SQLite run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{site.backend}.png"
    page.screenshot(path=str(path), full_page=True)
    return publish(path, site, f"{name}.png")


def publish(path: Path, site: Site, doc_name: str) -> Path:
    """Copy an artefact to docs/img/ (SQLite run only, so one run writes each picture)."""
    if site.backend == "sqlite" and os.environ.get("AUTOSETTLE_TEST_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / doc_name)
    return path
