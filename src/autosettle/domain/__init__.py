"""The pure core of autosettle.

What lives here: money, cards, ledger postings, fees, business-day calendars, settlement
cycles, transaction state machines, ISO 8583 codec helpers and key algorithms, risk and
matching rules. Every module is plain Python over values.

What may not: any I/O (database, sockets, files, clocks read implicitly), and any import
from the rest of the package. An import-linter contract in pyproject.toml enforces it.
"""
