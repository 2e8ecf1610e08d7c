"""``autosettle risk ...``: risk control from the command line (docs/risk.md).

* ``risk rules [--all]``, ``risk rule-set ID --kind .. --scope .. [--value ..] --params JSON``,
  ``risk rule-off ID``, ``risk rule-versions ID``: the rule editor (operator)
* ``risk view MERCHANT``: limits, today's usage, pre-registrations, reasons
* ``risk preregister MERCHANT --amount-minor N --from .. --to ..``, ``risk prereg-cancel``
* ``risk queue``, ``risk hold|release MERCHANT TXN``, ``risk refund TXN``: the review queue
* ``risk score --date D``, ``risk flagged``, ``risk flagged-release MERCHANT D``
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, guarded
from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ValidationError
from autosettle.domain.money import Money
from autosettle.services import risk, risk_review, risk_scoring
from autosettle.services.context import SYSTEM

app = typer.Typer(help="Risk control: rules, limits, pre-registrations, reviews, scores.",
                  no_args_is_help=True)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"--date must be YYYY-MM-DD, got {text!r}") from None


def _instant(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} must be ISO 8601, got {text!r}") from None
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


def _rule_dict(rule: Any) -> dict[str, Any]:
    return {"rule_id": rule.rule_id, "version": rule.version, "kind": str(rule.kind),
            "scope": str(rule.scope), "scope_value": rule.scope_value,
            "card_kind": rule.card_kind, "action": str(rule.action),
            "params": dict(rule.params), "active": rule.active, "note": rule.note}


@app.command("rules")
@guarded
def rules(include_inactive: Annotated[bool, typer.Option("--all")] = False,
          as_json: JsonFlag = False) -> None:
    """The latest version of every rule (built-in defaults are version 0)."""
    found = risk.list_rules(context(), SYSTEM, include_inactive)
    if as_json:
        emit_json([_rule_dict(r) for r in found])
        return
    table = Table("rule", "v", "kind", "scope", "card", "action", "params", "active")
    for r in found:
        table.add_row(r.rule_id, str(r.version), str(r.kind),
                      f"{r.scope}{'=' + r.scope_value if r.scope_value else ''}",
                      r.card_kind or "", str(r.action), json.dumps(dict(r.params)),
                      "yes" if r.active else "no")
    console.print(table)


@app.command("rule-set")
@guarded
def rule_set(
    rule_id: Annotated[str, typer.Argument(help="Rule id (a default's id replaces it).")],
    kind: Annotated[str, typer.Option(help="single_max, single_min, cumulative, velocity, "
                                      "time_window, allowed or block.")],
    params: Annotated[str, typer.Option(help="JSON object of the kind's parameters.")],
    scope: Annotated[str, typer.Option(help="all, merchant_type, mcc, merchant, terminal.")]
    = "all",
    value: Annotated[str | None, typer.Option(help="Scope value.")] = None,
    card_kind: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str, typer.Option(help="decline, review or alert.")] = "decline",
    note: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add the next version of a rule; effective at once."""
    try:
        parsed = json.loads(params)
    except ValueError:
        raise ValidationError("--params must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise ValidationError("--params must be a JSON object")
    rule = risk.put_rule(context(), SYSTEM, rule_id, risk.RuleInput(
        kind, scope, action, parsed, value, card_kind, True, note))
    if as_json:
        emit_json(_rule_dict(rule))
    else:
        console.print(f"rule {rule.ref} saved")


@app.command("rule-off")
@guarded
def rule_off(rule_id: str, as_json: JsonFlag = False) -> None:
    """Deactivate a rule (a new, inactive version)."""
    rule = risk.deactivate_rule(context(), SYSTEM, rule_id)
    if as_json:
        emit_json(_rule_dict(rule))
    else:
        console.print(f"rule {rule.ref} is inactive")


@app.command("rule-versions")
@guarded
def rule_versions(rule_id: str, as_json: JsonFlag = False) -> None:
    found = risk.rule_versions(context(), SYSTEM, rule_id)
    if as_json:
        emit_json([{**_rule_dict(s.rule), "created_by": s.created_by,
                    "created_at": s.created_at} for s in found])
        return
    for s in found:
        console.print(f"{s.rule.ref} {s.created_at.isoformat()} {s.created_by} "
                      f"{json.dumps(dict(s.rule.params))} active={s.rule.active}")


@app.command("view")
@guarded
def view(merchant_id: str, as_json: JsonFlag = False) -> None:
    """A merchant's limits and today's usage, pre-registrations and recent decisions."""
    ctx = context()
    found = risk.merchant_view(ctx, SYSTEM, merchant_id)
    if as_json:
        emit_json(found)
        return
    console.print(f"merchant {found.merchant_id}, business date {found.business_date}")
    table = Table("rule", "kind", "limit", "used today/month")
    for u in found.limits:
        limit = " ".join(x for x in (
            Money(u.limit_amount_minor).format() if u.limit_amount_minor else "",
            f"{u.limit_count} txns" if u.limit_count else "",
            f"({u.subject}, {u.period})" if u.period else "",
            f"[{u.card_kind}]" if u.card_kind else "", u.action) if x)
        used = "" if u.used_amount_minor is None else \
            f"{Money(u.used_amount_minor).format()} in {u.used_count}"
        table.add_row(u.rule, u.kind, limit, used)
    console.print(table)
    for p in found.preregistrations:
        console.print(f"pre-registration {p.prereg_id}: {Money(p.amount_minor).format()} "
                      f"{p.valid_from.isoformat()}..{p.valid_to.isoformat()} "
                      f"{risk.preregistration_state(p, ctx.now())}")
    for e in found.decisions:
        d = e.decision
        console.print(f"{d.created_at.isoformat()} {d.txn_id} {d.decision} {d.response_code} "
                      f"{Money(d.amount_minor).format()}: {d.reason_en} / {d.reason_zh} "
                      f"[{', '.join(d.fired)}]{' HELD' if e.held else ''}")


@app.command("preregister")
@guarded
def preregister(
    merchant_id: str,
    amount_minor: Annotated[int, typer.Option(help="Amount, fen.")],
    valid_from: Annotated[str, typer.Option("--from", help="ISO 8601 (Shanghai if no "
                                            "offset).")],
    valid_to: Annotated[str, typer.Option("--to", help="ISO 8601 (Shanghai if no offset).")],
    terminal_id: Annotated[str | None, typer.Option("--terminal")] = None,
    card_last4: Annotated[str | None, typer.Option("--last4")] = None,
    note: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Pre-register (报备) one expected large transaction."""
    found = risk.preregister(context(), SYSTEM, merchant_id, risk.NewPreregistration(
        amount_minor, _instant(valid_from, "--from"), _instant(valid_to, "--to"),
        terminal_id, card_last4, note))
    if as_json:
        emit_json(found)
    else:
        console.print(f"pre-registration {found.prereg_id} open")


@app.command("prereg-cancel")
@guarded
def prereg_cancel(merchant_id: str, prereg_id: int) -> None:
    risk.cancel_preregistration(context(), SYSTEM, merchant_id, prereg_id)
    console.print(f"pre-registration {prereg_id} cancelled")


@app.command("queue")
@guarded
def queue(as_json: JsonFlag = False) -> None:
    """Transactions on review, newest first."""
    found = risk.review_queue(context(), SYSTEM)
    if as_json:
        emit_json([{**asdict(e.decision), "held": e.held} for e in found])
        return
    for e in found:
        d = e.decision
        console.print(f"{d.merchant_id} {d.txn_id} {Money(d.amount_minor).format()} "
                      f"{d.reason_en} [{', '.join(d.fired)}] "
                      f"{'HELD' if e.held else 'released'}")


@app.command("hold")
@guarded
def hold(merchant_id: str, txn_id: str) -> None:
    changed = risk.set_review_hold(context(), SYSTEM, merchant_id, txn_id, True)
    console.print(f"{changed} item(s) held")


@app.command("release")
@guarded
def release(merchant_id: str, txn_id: str) -> None:
    changed = risk.set_review_hold(context(), SYSTEM, merchant_id, txn_id, False)
    console.print(f"{changed} item(s) released")


@app.command("refund")
@guarded
def refund(txn_id: str) -> None:
    result = risk_review.refund_reviewed(context(), SYSTEM, txn_id)
    console.print(f"refund {result.response_code.value}: {result.message}")


@app.command("score")
@guarded
def score(on: Annotated[str, typer.Option("--date", help="Business date.")],
          as_json: JsonFlag = False) -> None:
    """Score every merchant-day of a business date (cash-out signals)."""
    found = risk_scoring.score_day(context(), SYSTEM, _day(on))
    if as_json:
        emit_json(found)
        return
    for s in found:
        console.print(f"{s.merchant_id} {s.score}{' ON REVIEW' if s.on_review else ''}: "
                      + "; ".join(str(r["english"]) for r in s.reasons))


@app.command("flagged")
@guarded
def flagged(as_json: JsonFlag = False) -> None:
    """Merchant-days on review, with their reasons."""
    found = risk_scoring.flagged(context(), SYSTEM)
    if as_json:
        emit_json(found)
        return
    for s in found:
        console.print(f"{s.business_date} {s.merchant_id} {s.score}: "
                      + "; ".join(str(r["english"]) for r in s.reasons))


@app.command("flagged-release")
@guarded
def flagged_release(merchant_id: str, on: str) -> None:
    released = risk_scoring.release_merchant_day(context(), SYSTEM, merchant_id, _day(on))
    console.print(f"{released} item(s) released")
