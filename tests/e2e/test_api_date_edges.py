"""Dates at the ends of the calendar (0001-01-01, 9999-12-31) in queries answer, never 500.

Found by schemathesis (tests/e2e/test_api_fuzz.py): the cycle-costs default period ("the last
30 days" before ``date_to``) overflowed before 0001-01-30.
"""

from __future__ import annotations

import pytest
from apitools import MID_A, World
from fastapi.testclient import TestClient


def test_cycle_costs_period_defaults_to_what_the_calendar_has(client: TestClient,
                                                              world: World) -> None:
    answer = client.get(f"/v1/merchants/{MID_A}/cycle-costs?date_to=0001-01-05",
                        headers=world.merchant_a)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["date_from"], answer.json()["date_to"]) == ("0001-01-01",
                                                                     "0001-01-05")
    usual = client.get(f"/v1/merchants/{MID_A}/cycle-costs?date_to=2026-09-30",
                       headers=world.merchant_a).json()
    assert (usual["date_from"], usual["date_to"]) == ("2026-09-01", "2026-09-30")


@pytest.mark.parametrize("query", [
    f"/v1/merchants/{MID_A}/cycle-costs?date_from=0001-01-01&date_to=0001-01-02",
    f"/v1/merchants/{MID_A}/cycle-costs?date_from=9999-12-30&date_to=9999-12-31",
    f"/v1/merchants/{MID_A}/fee-schedules?on=9999-12-31",
    f"/v1/merchants/{MID_A}/fee-schedules?on=0001-01-01",
    f"/v1/merchants/{MID_A}/settlements?date_from=0001-01-01&date_to=9999-12-31",
    "/v1/transactions?date_from=0001-01-01&date_to=9999-12-31",
    "/v1/calendar/overrides?date_from=0001-01-01&date_to=9999-12-31",
])
def test_extreme_dates_in_queries_answer(client: TestClient, world: World,
                                         query: str) -> None:
    answer = client.get(query, headers=world.operator)
    assert answer.status_code == 200, answer.text
