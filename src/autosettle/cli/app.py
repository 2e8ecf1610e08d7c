"""The root ``autosettle`` command: one Typer app, one module per command group.

``db`` (db.py), ``merchants`` (merchants.py), ``terminals`` (terminals.py), ``apikeys``
(apikeys.py), ``printers`` (printers.py), ``demo`` (demo.py),
``settle``/``payouts``/``calendar``/``maintenance``/``jobs`` (settlement.py), ``users``
(users.py), ``terminal simulate`` (simulate.py), ``reports`` (reports.py), ``risk``
(risk.py), ``ledger`` (ledger.py) and ``serve`` (serve.py).
"""

from __future__ import annotations

import typer

from autosettle.cli import (
    apikeys,
    db,
    demo,
    ledger,
    merchants,
    printers,
    recon,
    reports,
    risk,
    serve,
    settlement,
    simulate,
    terminals,
    users,
)

app = typer.Typer(help="autosettle: POS acquiring and automatic settlement.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(merchants.app, name="merchants")
app.add_typer(terminals.app, name="terminals")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(printers.app, name="printers")
app.add_typer(demo.app, name="demo")
app.add_typer(users.app, name="users")
app.add_typer(settlement.app)  # settle, payouts, calendar, maintenance, jobs
app.add_typer(simulate.app, name="terminal")
app.add_typer(risk.app, name="risk")
app.add_typer(recon.app, name="recon")
app.add_typer(ledger.app, name="ledger")
app.command("serve")(serve.serve)
app.command("reports")(reports.reports)


def main() -> None:
    """The ``autosettle`` console script."""
    app()


if __name__ == "__main__":
    main()
