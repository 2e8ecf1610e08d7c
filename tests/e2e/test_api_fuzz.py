"""Schemathesis against the API's own OpenAPI document, with each role's key, on each database.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid (the coverage
phase's boundary values, then hypothesis fuzzing), sent in-process (ASGI) with an operator, a
merchant and a terminal key. Each answer must be no server error, carry a status code and a
content type the document declares, and match the declared schema, error answers included.

Bounded for CI: ``AUTOSETTLE_API_FUZZ_EXAMPLES`` random requests per operation and role
(default 5); set it higher for a long run, e.g. ``AUTOSETTLE_API_FUZZ_EXAMPLES=500 pytest
tests/e2e/test_api_fuzz.py``. A failure prints the request as a ``curl`` command and the
hypothesis seed to reproduce it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from apitools import MID_A, MID_B, TID_A1, TID_A2, TID_B1, World
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from autosettle.api.app import create_app
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

FUZZ_EXAMPLES = int(os.environ.get("AUTOSETTLE_API_FUZZ_EXAMPLES", "5"))
PAN, PIN = "6222020200112345679", "123456"
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


class CurrentApp:
    """The ASGI app schemathesis calls: the app of the running test (its own database)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app: use the fuzz_app fixture"
        await self.app(scope, receive, send)


CURRENT = CurrentApp()
# The document depends on the code only, not on a database: read it once, at collection.
DOCUMENT = create_app(None).openapi()  # type: ignore[arg-type]
# Most generated ids name the seeded merchants and terminals (apitools.build_world), so the
# requests reach past "not found" into the services; the rest stay random.
REAL_IDS = {"merchants": [MID_A, MID_B], "terminals": [TID_A1, TID_A2, TID_B1]}
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict({
    "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES},
    "dictionaries": {name: {"values": values} for name, values in REAL_IDS.items()},
    "parameters": {f"{where}.{param}": {"dictionary": dictionary, "probability": 0.7}
                   for where in ("path", "query")
                   for param, dictionary in (("merchant_id", "merchants"),
                                             ("terminal_id", "terminals"))},
}))
schema.app = CURRENT


@pytest.fixture(params=["operator", "merchant_a", "terminal_a1"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fuzz_headers(ctx: ServiceContext, world: World, sim: IssuerSimulator,
                 role: str) -> Iterator[dict[str, str]]:
    """Route schemathesis's calls to an app on this test's database; ``role``'s key."""
    sim.add_card(PAN, balance_minor=1_000_000, pin=PIN)
    CURRENT.app = create_app(ctx)
    yield getattr(world, role)
    CURRENT.app = None


@pytest.mark.slow
@schema.parametrize()
# The suite's profile (tests/conftest.py), bounded; the app and its database are shared by
# the examples of one operation on purpose, as by the requests of real clients.
@settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=[
    *settings().suppress_health_check, HealthCheck.function_scoped_fixture])
def test_api_answers_as_documented(case: Any, fuzz_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=fuzz_headers, checks=CHECKS)
