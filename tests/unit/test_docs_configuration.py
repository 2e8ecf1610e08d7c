"""docs/configuration.md documents every setting (a new setting without docs fails here)."""

from __future__ import annotations

from pathlib import Path

from autosettle.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_with_its_variable() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields
               if f"`{name}`" not in text or f"`AUTOSETTLE_{name.upper()}`" not in text]
    assert missing == []
