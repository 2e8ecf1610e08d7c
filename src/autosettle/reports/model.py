"""The neutral tabular model every report builds and every renderer reads.

A :class:`Report` is a title, its parameters, typed columns, rows (possibly a one-shot
stream: a statement pages through the journal while it is written), totals, a few summary
figures and charts. Money is always integer fen in the model; each renderer converts it
once, exactly (:func:`fen_to_decimal`, :func:`fen_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from autosettle.reports.charts import Chart

Cell = int | str | date | datetime | None
Row = tuple[Cell, ...]


class ColumnType(StrEnum):
    """How a column's values are typed in every format."""

    MONEY = "money"  # int fen; CSV 1234.56, XLSX numeric yuan with a ¥ format, PDF ¥1,234.56
    COUNT = "count"  # int
    DATE = "date"  # datetime.date
    DATETIME = "datetime"  # aware datetime, shown in Asia/Shanghai
    TEXT = "text"  # str


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the JSON key, the title people read, its type, its width in characters."""

    key: str
    title: str
    type: ColumnType
    width: int = 12


@dataclass(frozen=True, slots=True)
class Figure:
    """A labelled summary number (opening balance, closing balance, fees...)."""

    key: str
    label: str
    value: int
    type: ColumnType = ColumnType.MONEY


@dataclass(frozen=True, slots=True)
class Header:
    """Whose report it is: printed at the top of every PDF page."""

    merchant_id: str | None
    name: str


@dataclass
class Report:
    """A report ready to render. ``rows`` may be iterated once only; ``row_count`` says how
    many it yields (for page numbers and progress bars); ``totals`` maps the key of each
    money or count column to its total, computed by the database, not by the renderer."""

    name: str
    title: str
    header: Header
    parameters: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    rows: Iterable[Row]
    row_count: int
    totals: Mapping[str, int]
    currency: str = "CNY"
    figures: tuple[Figure, ...] = ()
    charts: tuple[Chart, ...] = ()
    generated_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())

    def totals_row(self) -> Row:
        """The totals as a row: "合计" in the first column, the totals under their columns."""
        cells: list[Cell] = []
        for index, column in enumerate(self.columns):
            if column.key in self.totals:
                cells.append(self.totals[column.key])
            else:
                cells.append("合计" if index == 0 else None)
        return tuple(cells)


def fen_to_decimal(fen: int) -> Decimal:
    """Exact yuan: ``Decimal(fen).scaleb(-2)`` (1234 → Decimal('12.34'), never a float)."""
    return Decimal(fen).scaleb(-2)


def fen_text(fen: int) -> str:
    """Plain yuan with two decimals, no grouping (CSV): -5 → '-0.05'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
