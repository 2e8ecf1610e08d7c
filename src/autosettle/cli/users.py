"""``autosettle users create|reset-password|list``: console logins (docs/console.md).

The password is read from a hidden prompt (asked twice) or, with ``--password-stdin``, from
the first line of standard input; it is never printed or logged."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from autosettle.cli.console import JsonFlag, console, context, emit_json, fail, guarded
from autosettle.domain.console_users import UserRole
from autosettle.domain.errors import AutosettleError
from autosettle.services import users
from autosettle.services.context import SYSTEM

app = typer.Typer(help="Console users (operators and merchant users).", no_args_is_help=True)
PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="Read the password from standard input.")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command("create")
@guarded
def users_create(
    username: Annotated[str, typer.Argument()],
    role: Annotated[UserRole, typer.Option()],
    merchant_id: Annotated[str | None, typer.Option(help="The merchant a merchant user "
                                                    "sees (merchant role only).")] = None,
    display_name: Annotated[str | None, typer.Option()] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a console user."""
    try:
        user = users.create_user(context(), SYSTEM, users.NewUser(
            username, _password(password_stdin), role, merchant_id, display_name))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json({"username": user.username, "role": user.role.value,
                   "merchant_id": user.merchant_id})
    else:
        console.print(f"user {user.username} ({user.role.value}"
                      f"{', merchant ' + user.merchant_id if user.merchant_id else ''}) created")


@app.command("reset-password")
@guarded
def users_reset_password(
    username: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Set a new password: unlocks the user and ends its console sessions."""
    try:
        user = users.reset_password(context(), SYSTEM, username, _password(password_stdin))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json({"username": user.username, "password_reset": True})
    else:
        console.print(f"password of {user.username} reset")


@app.command("list")
@guarded
def users_list(as_json: JsonFlag = False) -> None:
    """Every console user (never a password or its hash)."""
    try:
        found = users.list_users(context(), SYSTEM)
    except AutosettleError as exc:
        fail(exc)
        return
    rows = [{"username": u.username, "role": u.role.value, "merchant_id": u.merchant_id,
             "display_name": u.display_name,
             "locked_until": u.locked_until.isoformat() if u.locked_until else None}
            for u in found]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        console.print(f"{row['username']:<20} {row['role']:<9} {row['merchant_id'] or '-':<16}"
                      f" {row['display_name']}"
                      + (f"  locked until {row['locked_until']}" if row["locked_until"] else ""))
