"""Ledger commands (``autosettle ledger ...``; docs/ledger.md, "Balance checkpoints"):

* ``ledger checkpoint`` writes a balance checkpoint at the safe high-water mark (nothing
  when no entry is newer than the newest checkpoint);
* ``ledger checkpoint --verify`` recomputes the newest checkpoint from every journal line
  and compares: a mismatch is a critical alert and exit status 1, never a silent fix.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, err_console, guarded
from autosettle.services import ledger

app = typer.Typer(help="The ledger: balance checkpoints.", no_args_is_help=True)


@app.command("checkpoint")
@guarded
def checkpoint(
    verify: Annotated[bool, typer.Option("--verify", help="Recompute the newest checkpoint "
                                         "from every journal line and compare (writes "
                                         "nothing; a mismatch raises an alert).")] = False,
    wait_s: Annotated[float, typer.Option("--wait", min=0, max=600, help="Seconds to wait "
                                          "for transactions in flight (PostgreSQL).")]
    = ledger.CHECKPOINT_WAIT_S,
    as_json: JsonFlag = False,
) -> None:
    """Write a balance checkpoint, or verify the newest one (exit status 1 on a mismatch)."""
    ctx = context()
    if verify:
        result = ledger.verify_checkpoint(ctx)
        if as_json:
            emit_json({"through_entry_id": result.through_entry_id, "ok": result.ok,
                       "mismatches": [{"account": m.account_code, "currency": m.currency,
                                       "checkpoint_minor": m.checkpoint_minor,
                                       "lines_minor": m.lines_minor}
                                      for m in result.mismatches]})
        elif result.through_entry_id == 0:
            console.print("no checkpoint yet")
        elif result.ok:
            console.print(f"checkpoint {result.through_entry_id}: every balance equals the "
                          "sum of its journal lines")
        else:
            table = Table("account", "currency", "checkpoint", "lines")
            for m in result.mismatches:
                table.add_row(m.account_code, m.currency, str(m.checkpoint_minor),
                              str(m.lines_minor))
            err_console.print(f"[red]checkpoint {result.through_entry_id} disagrees with "
                              f"the journal[/red] (alert raised)")
            err_console.print(table)
        if not result.ok:
            raise typer.Exit(1)
        return
    written = ledger.checkpoint(ctx, wait_s)
    if as_json:
        emit_json(written.counts())
    elif written.waited_out:
        err_console.print(f"transactions stayed in flight for over {wait_s:.0f} s: no "
                          "checkpoint written (try again)")
    elif written.created:
        console.print(f"checkpoint {written.through_entry_id} written ({written.accounts} "
                      f"account balances; previous {written.previous_entry_id})")
    else:
        console.print(f"checkpoint {written.through_entry_id} is up to date")
    if written.waited_out:
        raise typer.Exit(1)
