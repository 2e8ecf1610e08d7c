"""docs/terminal-integration.md: the message catalogue and the worked example are generated.

Run with ``AUTOSETTLE_UPDATE_DOCS=1`` to rewrite the generated sections after a change.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from docs_example import (
    BEGIN_CATALOGUE,
    BEGIN_EXAMPLE,
    END_CATALOGUE,
    END_EXAMPLE,
    EXAMPLE_AUTH_CODE,
    EXAMPLE_RRN,
    render_catalogue,
    render_example,
    replace_section,
)

from autosettle.services import payments
from autosettle.services.context import ServiceContext
from autosettle.simulators import issuer as simulator
from autosettle.simulators.issuer import IssuerSimulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "terminal-integration.md"


def test_generated_sections_are_up_to_date(shop: ServiceContext, sim: IssuerSimulator,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments, "_new_rrn", lambda: EXAMPLE_RRN)
    monkeypatch.setattr(simulator, "secrets",
                        SimpleNamespace(randbelow=lambda _n: EXAMPLE_AUTH_CODE))
    text = DOC.read_text(encoding="utf-8")
    fresh = replace_section(text, BEGIN_CATALOGUE, END_CATALOGUE, render_catalogue())
    fresh = replace_section(fresh, BEGIN_EXAMPLE, END_EXAMPLE, render_example(shop, sim))
    if os.environ.get("AUTOSETTLE_UPDATE_DOCS") == "1":
        DOC.write_text(fresh, encoding="utf-8")
        text = fresh
    assert fresh == text, ("docs/terminal-integration.md is out of date: run "
                           "AUTOSETTLE_UPDATE_DOCS=1 pytest tests/terminal_host/test_docs.py")
