"""The reach of each role (services/access.py): which kinds of data, of which merchant."""

from __future__ import annotations

import pytest

from autosettle.domain.errors import NotFoundError
from autosettle.services.access import READABLE, Area, may_read, require_read
from autosettle.services.context import Principal, Role

OPERATOR = Principal("op", Role.OPERATOR)
MERCHANT = Principal("m", Role.MERCHANT, merchant_id="898310054110001")
TERMINAL = Principal("t", Role.TERMINAL, merchant_id="898310054110001", terminal_id="HL000001")
OTHER = "898310058120001"


def test_every_role_has_a_row() -> None:
    assert set(READABLE) == set(Role)
    assert READABLE[Role.TERMINAL] == {Area.MERCHANT, Area.TERMINALS, Area.TRANSACTIONS}


@pytest.mark.parametrize("area", list(Area))
def test_operators_and_merchants_read_every_area_terminals_three(area: Area) -> None:
    own = "898310054110001"
    assert may_read(OPERATOR, area, OTHER) and may_read(OPERATOR, area)
    assert may_read(MERCHANT, area, own) and not may_read(MERCHANT, area, OTHER)
    terminal_reads = area in (Area.MERCHANT, Area.TERMINALS, Area.TRANSACTIONS)
    assert may_read(TERMINAL, area, own) is terminal_reads
    assert not may_read(TERMINAL, area, OTHER)


def test_outside_the_reach_is_not_found_never_forbidden() -> None:
    with pytest.raises(NotFoundError, match=OTHER):
        require_read(MERCHANT, Area.SETTLEMENTS, OTHER)
    with pytest.raises(NotFoundError):
        require_read(TERMINAL, Area.ALERTS)
    require_read(TERMINAL, Area.TRANSACTIONS, "898310054110001")
