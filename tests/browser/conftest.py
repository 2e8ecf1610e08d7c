"""The console in a real browser: Debian's Chromium driven by Playwright, against the real
server (the API app with the console mounted, as ``autosettle serve`` runs it) on a free port
of 127.0.0.1, on SQLite and, when configured, PostgreSQL.

One site per database for the whole session: the demo data set (``demo seed``: merchants,
terminals, accounts, console users), real sales, a void and a refund made through the payment
service against the issuer simulator, one settlement run per cycle and the payout file, all on
a fixed clock (Tuesday 2026-09-15, 10:00 in Shanghai). Each test gets a browser context of its
own (its own cookies). Nothing here sleeps: Playwright waits for what a test expects.

Screenshots go to ``var/test-artifacts/browser/`` (git-ignored); with
``AUTOSETTLE_TEST_DOCS_IMG=1`` the SQLite run also refreshes the ones the docs show
(``docs/img/``).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from browsertools import (
    BACKENDS,
    CARD_BALANCE_MINOR,
    CHROMIUM,
    CREDIT,
    DEBIT,
    MONDAY,
    OTHER,
    PG_URL_ENV,
    PIN,
    SERVER_START_TIMEOUT_S,
    TEST_DATA_KEY,
    TEST_PAN_KEY,
    VIEWPORT,
    Site,
    StepClock,
    trade,
)
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autosettle.api.app import create_app
from autosettle.config import Settings
from autosettle.services.context import ServiceContext
from autosettle.simulators import demo_seed
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store import migrate
from autosettle.store.engine import normalize_url
from autosettle.store.uow import Database
from autosettle.web.app import mount_console


def _postgres_database(name: str) -> tuple[str, object]:
    base = make_url(normalize_url(os.environ[PG_URL_ENV]))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return base.set(database=name).render_as_string(hide_password=False), admin


@pytest.fixture(scope="session", params=BACKENDS)
def site(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The console served by uvicorn on a free port, with the demo data and a day of sales."""
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(f"browser-{backend}")
    admin = None
    name = f"autosettle_browser_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{data_dir / 'autosettle.db'}"
    else:
        url, admin = _postgres_database(name)
    migrate.upgrade(url)
    settings = Settings(data_dir=data_dir, database_url=url, pan_token_key=TEST_PAN_KEY,
                        data_key=TEST_DATA_KEY)  # type: ignore[arg-type]
    sim = IssuerSimulator(f"sqlite:///{data_dir / 'issuer-sim.db'}")
    for card in (DEBIT, CREDIT, OTHER):
        sim.add_card(card, balance_minor=CARD_BALANCE_MINOR, pin=PIN,
                     credit_limit_minor=CARD_BALANCE_MINOR,
                     kind="credit" if card == CREDIT else "debit")
    clock = StepClock(MONDAY)
    ctx = ServiceContext(settings=settings, db=Database(url), clock=clock, channel=sim)
    demo_seed.seed(ctx)
    found = Site(backend, "", ctx)
    trade(found, clock)
    app = mount_console(create_app(ctx), ctx)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"console-{backend}", daemon=True)
    thread.start()
    started = threading.Event()

    def _wait() -> None:  # uvicorn sets .started once it accepts connections
        while not server.started and thread.is_alive():
            started.wait(0.02)

    waiter = threading.Thread(target=_wait)
    waiter.start()
    waiter.join(SERVER_START_TIMEOUT_S)
    if not server.started:
        raise RuntimeError("the console server did not start")
    found.base_url = f"http://127.0.0.1:{port}"
    try:
        yield found
    finally:
        server.should_exit = True
        thread.join(SERVER_START_TIMEOUT_S)
        sock.close()
        ctx.db.dispose()
        sim.close()
        if admin is not None:
            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test; downloads allowed."""
    made = browser.new_context(viewport=VIEWPORT, accept_downloads=True,  # type: ignore[arg-type]
                               locale="zh-CN", timezone_id="Asia/Shanghai")
    made.set_default_timeout(10_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


