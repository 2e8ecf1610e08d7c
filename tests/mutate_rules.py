"""Remove each documented settlement rule from the code, one at a time, and run its test.

The table "Rules and the tests that guard them" in docs/settlement.md says which test fails
when which rule is taken out; this script checks it again. Run it by hand from the
repository root (it is not a test; it edits a source file, runs pytest, and restores the
file, whatever happens)::

    .venv/bin/python tests/mutate_rules.py            # every rule
    .venv/bin/python tests/mutate_rules.py F10 L2     # some of them

Each mutant names the rule, the file, the text it replaces (which must occur exactly once:
when the code moves on, a mutant that no longer applies is reported, not run) and the test
that must fail. Exit status 1 if a mutant survived or no longer applies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Mutant(NamedTuple):
    key: str
    rule: str
    path: str
    changes: list[tuple[str, str]]
    test: str


CAL = "src/autosettle/domain/calendar.py"
FEES = "src/autosettle/domain/fees.py"
MONEY = "src/autosettle/domain/money.py"
SET = "src/autosettle/services/settlement.py"
ITEMS = "src/autosettle/services/settlement_items.py"
PAY = "src/autosettle/services/payouts.py"
PM = "src/autosettle/services/payments.py"
FSS = "src/autosettle/services/fee_schedules.py"
CLAIMS = "src/autosettle/store/settlement_claims.py"
JOBS = "src/autosettle/jobs/settlement.py"
SCHED = "src/autosettle/jobs/scheduler.py"
LEASES = "src/autosettle/services/leases.py"
RULES = "tests/integration/test_settlement_rules.py::"
FLOW = "tests/integration/test_settlement_flow.py::"
CALENDAR = "tests/integration/test_settlement_calendar.py::"
PAYOUT = "tests/integration/test_settlement_payout_export.py::"
FEE_SCHEDULES = "tests/integration/test_fee_schedules.py::"
CURSORS = "tests/integration/test_settlement_cursors.py::"
PAYMENTS = "tests/integration/test_payments_flow.py::"
SCHEDULER = "tests/jobs/test_scheduler.py::"
RISK_SCORE = "src/autosettle/services/risk_scoring.py"
RISK_JOB = "tests/jobs/test_risk_scoring_scheduled.py::"

MUTANTS = [
    Mutant('C1', 'cut-off', CAL, [
        ('local.time() >= cutoff',
         'local.time() > cutoff'),
    ], CALENDAR + 'test_cutoff_splits_business_dates'),
    Mutant('C2', 'midnight cut-off', CAL, [
        ('if cutoff != time(0, 0) and local.time() >= cutoff',
         'if local.time() >= cutoff'),
    ], 'tests/unit/test_calendar.py::test_custom_and_midnight_cutoff'),
    Mutant('C3', 'holidays/in-lieu', CAL, [
        ('return bool(chinese_calendar.is_workday(d))',
         'return d.weekday() < 5'),
    ], CALENDAR + 'test_national_day_week'),
    Mutant('C4', 'overrides win', CAL, [
        ('        if override is not None:\n            return override',
         '        if False:\n            return override'),
    ], CALENDAR + 'test_bank_closure_announced_before_capture'),
    Mutant('C5', 'uncovered year alert', CAL, [
        ('        self._fallback_years.add(d.year)\n',
         ''),
    ], CALENDAR + 'test_uncovered_year_falls_back_to_weekends_and_alerts'),
    Mutant('C6', 'T+1', CAL, [
        ('return calendar.nth_workday_after(business_date, c.days)',
         'return business_date + timedelta(days=c.days)'),
    ], FLOW + 'test_t1_settlement_with_fees_refund_and_payout'),
    Mutant('C7', 'T+0', CAL, [
        ('return calendar.workday_on_or_after(business_date)',
         'return business_date'),
    ], CALENDAR + 'test_spring_festival_week'),
    Mutant('C8', 'D+1 calendar days', CAL, [
        ('    if c.kind is CycleKind.D:\n',
         '    if c.kind is CycleKind.D and c.days == 0:\n'),
    ], CALENDAR + 'test_national_day_week'),
    Mutant('C9', 'D+0 business date', CAL, [
        ('    if c.kind is CycleKind.D:\n',
         '    if c.kind is CycleKind.D and c.days == 1:\n'),
    ], CALENDAR + 'test_spring_festival_week'),
    Mutant('C10', 'T runs only on workdays', SET, [
        ('run_cycles = tuple(c for c in cycles if workday or not c.startswith("T"))',
         'run_cycles = tuple(cycles)'),
    ], CALENDAR + 'test_bank_closure_announced_after_capture'),
    Mutant('C11', 'D runs every day', SET, [
        ('run_cycles = tuple(c for c in cycles if workday or not c.startswith("T"))',
         'run_cycles = tuple(c for c in cycles if workday)'),
    ], CALENDAR + 'test_national_day_week'),
    Mutant('F1', 'rate per card kind', FEES, [
        ('return self.rates.get(kind, self.fallback)',
         'return self.fallback'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F2', 'cap', FEES, [
        ('        if self.cap is not None and fee > self.cap:\n',
         '        if False:\n'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F3', 'minimum', FEES, [
        ('        if self.minimum is not None and fee < self.minimum:\n',
         '        if False:\n'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F4', 'fixed fee', FEES, [
        ('return schedule.rule_for(CardKind(kind)).fee(amount) + schedule.fixed_fee',
         'return schedule.rule_for(CardKind(kind)).fee(amount)'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F5', 'one rounding half up', MONEY, [
        ('rounding=ROUND_HALF_UP))',
         'rounding="ROUND_HALF_EVEN"))'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F6', 'default price list', FEES, [
        ('CardKind.DEBIT: RateRule(Decimal("0.0041"), cap=_DISCOUNTED_CAP)',
         'CardKind.DEBIT: RateRule(Decimal("0.0050"), cap=_DISCOUNTED_CAP)'),
    ], RULES + 'test_same_day_cycles_pay_the_surcharge_and_next_day_cycles_do_not'),
    Mutant('F7', 'same-day surcharge charged', SET, [
        ('surcharge = payout_surcharge(schedule, claim.cycle,',
         'surcharge = 0 * payout_surcharge(schedule, claim.cycle,'),
    ], RULES + 'test_same_day_cycles_pay_the_surcharge_and_next_day_cycles_do_not'),
    Mutant('F8', 'surcharge only T0/D0 (domain)', FEES, [
        ('if not as_cycle(cycle).is_same_day or payout_amount.is_zero:',
         'if payout_amount.is_zero:'),
    ], 'tests/unit/test_fees.py::test_payout_surcharge_only_for_same_day_cycles'),
    Mutant('F8b', 'surcharge only T0/D0 (run)', SET, [
        ('run_date) if claim.cycle in SAME_DAY else None',
         'run_date)'),
        ('same_day = sorted({c.merchant_id for _, c, _ in claims if c.cycle in SAME_DAY})',
         'same_day = sorted({c.merchant_id for _, c, _ in claims})'),
        ('surcharge = payout_surcharge(schedule, claim.cycle,',
         'surcharge = payout_surcharge(schedule, SAME_DAY[0],'),
    ], RULES + 'test_same_day_cycles_pay_the_surcharge_and_next_day_cycles_do_not'),
    Mutant('F9', 'surcharge rate + fixed', FEES, [
        ('return apply_rate(payout_amount, surcharge.rate) + surcharge.fixed',
         'return surcharge.fixed'),
    ], RULES + 'test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate'),
    Mutant('F10', 'no surcharge unless the payout covers it', SET, [
        ('            if surcharge >= available:\n                surcharge = 0',
         '            if False:\n                surcharge = 0'),
    ], RULES + 'test_no_surcharge_on_a_payout_that_would_not_cover_it'),
    Mutant('F10b', 'debt-recovery batch not charged', SET, [
        ('            if surcharge >= available:\n                surcharge = 0',
         '            if False:\n                surcharge = 0'),
    ], RULES + 'test_a_batch_that_recovers_debt_is_not_charged_the_surcharge'),
    Mutant('F11', 'foreign-currency batch: no surcharge', SET, [
        ('if schedule is not None and schedule.currency == cur:',
         'if schedule is not None:'),
    ], CURSORS + 'test_same_day_item_in_a_foreign_currency_does_not_block_the_merchant'),
    Mutant('F12', 'pro rata, cumulative rounding', FEES, [
        ('    share = round_minor(Decimal(original_fee.amount_minor * refunded.amount_minor)',
         '    share = round_minor(Decimal(original_fee.amount_minor * refund_amount.amount_minor)'),
        ('credit = min(max(share - done_fee.amount_minor, 0),',
         'credit = min(max(share, 0),'),
    ], RULES + 'test_partial_refunds_return_the_fee_pro_rata_with_cumulative_rounding'),
    Mutant('F12b', 'pro rata at all', FEES, [
        ('credit = min(max(share - done_fee.amount_minor, 0),',
         'credit = 0 * min(max(share - done_fee.amount_minor, 0),'),
    ], RULES + 'test_partial_refunds_return_the_fee_pro_rata_with_cumulative_rounding'),
    Mutant('F13', 'refund policy none', FEES, [
        ('if schedule.refund_fee_policy is RefundFeePolicy.NONE or original_amount.is_zero:',
         'if original_amount.is_zero:'),
    ], 'tests/unit/test_fees.py::test_refund_policy_none_keeps_the_fee'),
    Mutant('F13b', 'refund policy none (service)', FEES, [
        ('if schedule.refund_fee_policy is RefundFeePolicy.NONE or original_amount.is_zero:',
         'if original_amount.is_zero:'),
    ], FEE_SCHEDULES + 'test_new_version_applies_from_its_business_date'),
    Mutant('F14', 'void returns the fee', ITEMS, [
        ('voided_fee = captured.fee_minor if captured else 0',
         'voided_fee = 0'),
    ], FLOW + 'test_t1_settlement_with_fees_refund_and_payout'),
    Mutant('F15', 'reversal takes the fee back', ITEMS, [
        ('                     -old.fee_minor)',
         '                     0)'),
    ], RULES + 'test_a_reversal_takes_the_sale_and_its_fee_back'),
    Mutant('F16', 'version from effective date', FEES, [
        ('if schedule.effective_from <= on and (',
         'if ('),
    ], FEE_SCHEDULES + 'test_new_version_applies_from_its_business_date'),
    Mutant('F17', "refund uses the sale's terms", ITEMS, [
        ('priced = terms.schedule_on(captured.business_date) if captured else schedule',
         'priced = schedule'),
    ], FEE_SCHEDULES + 'test_new_version_applies_from_its_business_date'),
    Mutant('F18', 'version not in the past', FSS, [
        ('        if schedule.effective_from < today:\n',
         '        if False:\n'),
    ], FEE_SCHEDULES + 'test_a_version_cannot_reach_back_over_captured_transactions'),
    Mutant('F19', 'version not over captured dates', FSS, [
        ('if latest is not None and latest >= schedule.effective_from:',
         'if False:'),
    ], FEE_SCHEDULES + 'test_a_version_cannot_reach_back_over_captured_transactions'),
    Mutant('S1', 'due by the run date', CLAIMS, [
        ('"i.item_id > r.h AND i.item_id <= {p} AND i.due_date <= r.due_by"',
         '"i.item_id > r.h AND i.item_id <= {p}"'),
    ], RULES + 'test_a_run_settles_what_is_due_by_its_date_and_nothing_later'),
    Mutant('S2', 'a run key settles once', SET, [
        ('        if (group.merchant_id, group.cycle) in skipped:\n',
         '        if False:\n'),
    ], CURSORS + 'test_rerunning_a_run_key_changes_nothing'),
    Mutant('S3', 'held items carried', CLAIMS, [
        ('                    held_keys.add((m, cy))\n                    continue\n',
         '                    held_keys.add((m, cy))\n'),
    ], RULES + 'test_a_held_transaction_is_carried_and_settled_once_released'),
    Mutant('S4', 'released items settled', CLAIMS, [
        ('in self._released(merchant_ids, cycles):',
         'in []:'),
    ], RULES + 'test_a_held_transaction_is_carried_and_settled_once_released'),
    Mutant('S5', 'inactive merchants carried', SET, [
        ('        if merchant.status not in SETTLEABLE_STATUSES:\n',
         '        if False:\n'),
    ], RULES + 'test_a_merchant_that_is_not_active_is_carried_until_it_is'),
    Mutant('S6', 'negative net becomes debt', SET, [
        ('plan = NetPlan(payout=0, debt_recovered=0, debt_added=fees - gross)',
         'plan = NetPlan(payout=gross - fees, debt_recovered=0, debt_added=0)'),
    ], FLOW + 'test_refunds_larger_than_sales_become_debt'),
    Mutant('S7', 'old debt taken first', SET, [
        ('debt = max(debts[(claim.merchant_id, claim.currency)], 0)',
         'debt = 0'),
    ], FLOW + 'test_refunds_larger_than_sales_become_debt'),
    Mutant('S8', 'failing merchant alerts', SET, [
        ('                    _alert(ctx, "error", "settlement_failed", merchant_id,',
         '                    0 and _alert(ctx, "error", "settlement_failed", merchant_id,'),
    ], RULES + 'test_one_merchant_failing_does_not_stop_the_others'),
    Mutant('S8b', 'others proceed', SET, [
        ("except Exception as exc:  # one merchant's failure never stops the others",
         'except ZeroDivisionError as exc:'),
    ], RULES + 'test_one_merchant_failing_does_not_stop_the_others'),
    Mutant('S9', 'T batch on a closed day arrives next workday', SET, [
        ('    if cycle.startswith("T") and not calendar.is_workday(run_date):\n',
         '    if False:\n'),
    ], RULES + 'test_a_t_cycle_batch_dated_on_a_closed_day_arrives_the_next_workday'),
    Mutant('V1', 'batch equals its items', PAY, [
        ('        if count != batch.item_count:\n',
         '        if False:\n'),
    ], PAYOUT + 'test_retry_of_a_blocked_payout_checks_the_batch_again'),
    Mutant('V1b', 'entry posts what the batch says', PAY, [
        ('if sum(lines.values()) != 0 or lines != _expected_lines(merchant.merchant_id, batch):',
         'if False:'),
    ], PAYOUT + 'test_retry_of_a_blocked_payout_checks_the_batch_again'),
    Mutant('V2', 'yiqing', PAY, [
        ('            found.append("no verified settlement account in the '
         'merchant\'s own name (一清)")',
         '            pass'),
    ], RULES + 'test_yiqing_blocks_only_the_payout_of_the_merchant_without_its_own_account'),
    Mutant('V3', 'block only the offender', PAY, [
        ('        if found:\n            blocked.add(batch.batch_id)',
         '        if True:\n            blocked.add(batch.batch_id)'),
    ], RULES + 'test_yiqing_blocks_only_the_payout_of_the_merchant_without_its_own_account'),
    Mutant('V4', 'payout_blocked alert', PAY, [
        ('            uow.alerts.raise_alert(now, "critical", "payout_blocked",',
         '            0 and uow.alerts.raise_alert(now, "critical", "payout_blocked",'),
    ], RULES + 'test_yiqing_blocks_only_the_payout_of_the_merchant_without_its_own_account'),
    Mutant('P1', 'sent: payable to clearing', PAY, [
        ('    uow.ledger.post(transfer(\n        '
         'f"payout:{payout.payout_id}:sent:{payout.attempts}"',
         '    0 and uow.ledger.post(transfer(\n        '
         'f"payout:{payout.payout_id}:sent:{payout.attempts}"'),
    ], FLOW + 'test_t1_settlement_with_fees_refund_and_payout'),
    Mutant('P2', 'export idempotent', PAY, [
        ('for payout in uow.settlement.payouts(status="pending", expected_by=on, limit=None):',
         'for payout in (fresh := uow.settlement.payouts(status="pending", '
         'expected_by=on, limit=None)):'),
        ('if p.status in ("sent", "confirmed")]',
         'if p.payout_id in {f.payout_id for f in fresh}]'),
    ], PAYOUT + 'test_payout_file_after_a_long_history'),
    Mutant('P3', 'confirmed: clearing to bank', PAY, [
        ('        uow.ledger.post(transfer(\n            '
         'f"payout:{payout_id}:confirmed:{payout.attempts}"',
         '        0 and uow.ledger.post(transfer(\n            '
         'f"payout:{payout_id}:confirmed:{payout.attempts}"'),
    ], FLOW + 'test_t1_settlement_with_fees_refund_and_payout'),
    Mutant('P4', 'failed: back to payable', PAY, [
        ('        uow.ledger.post(transfer(\n            '
         'f"payout:{payout_id}:failed:{payout.attempts}"',
         '        0 and uow.ledger.post(transfer(\n            '
         'f"payout:{payout_id}:failed:{payout.attempts}"'),
    ], FLOW + 'test_failed_payout_returns_money_and_alerts'),
    Mutant('P5', 'failed: alert', PAY, [
        ('        uow.alerts.raise_alert(now, "critical", "payout_failed",',
         '        0 and uow.alerts.raise_alert(now, "critical", "payout_failed",'),
    ], FLOW + 'test_failed_payout_returns_money_and_alerts'),
    Mutant('P6', 'retry: own verified account', PAY, [
        ('        if account is None:\n            raise ConflictError("the '
         'merchant still has no verified account in its own name")',
         '        if False:\n            raise ConflictError("the merchant still '
         'has no verified account in its own name")'),
    ], RULES + 'test_yiqing_blocks_only_the_payout_of_the_merchant_without_its_own_account'),
    Mutant('P7', 'retry: not above the payable', PAY, [
        ('        if payout.amount_minor > payable:\n            raise '
         'ConflictError(f"payout {payout.amount_minor} exceeds the payable '
         '{payable}")',
         '        if False:\n            raise ConflictError(f"payout '
         '{payout.amount_minor} exceeds the payable {payable}")'),
    ], RULES + 'test_a_retry_never_pays_more_than_the_merchant_is_owed'),
    Mutant('P8', 'retry of a blocked payout re-verifies', PAY, [
        ('            if problems:\n                raise ConflictError("the batch '
         'still fails its checks: "',
         '            if False:\n                raise ConflictError("the batch '
         'still fails its checks: "'),
    ], PAYOUT + 'test_retry_of_a_blocked_payout_checks_the_batch_again'),
    Mutant('J1', 'daily run at the settlement time', JOBS, [
        ('        if local.time() < ctx.settings.settlement_time:\n',
         '        if False:\n'),
    ], SCHEDULER + 'test_the_daily_run_waits_for_its_time_then_settles_and_exports'),
    Mutant('J2', 'payouts after their settlement run', SCHED, [
        ('if due.after is not None and not leases.is_done(ctx, *due.after):',
         'if False:'),
    ], SCHEDULER + 'test_the_payout_file_waits_for_its_settlement_run'),
    Mutant('J3', 'catch-up bounded', JOBS, [
        ('    first = max(first, latest - timedelta(days=bound - 1))\n',
         ''),
    ], SCHEDULER + 'test_runs_missed_while_down_are_caught_up_oldest_first'),
    Mutant('J4', 'maintenance defers', SCHED, [
        ('                if window is not None:\n',
         '                if False:\n'),
    ], SCHEDULER + 'test_a_maintenance_window_defers_jobs_to_its_end'),
    Mutant('J5', 'manual runs refused in a window', LEASES, [
        ('    maintenance.require_open(ctx)\n',
         ''),
    ], 'tests/jobs/test_settlement_api.py::test_maintenance_notices_calendar_and'
       '_runs_inside_a_window'),
    Mutant('J6', 'a finished run never runs again', LEASES, [
        ('        if current["status"] == DONE:\n',
         '        if False:\n'),
    ], 'tests/jobs/test_leases.py::test_a_run_happens_once_and_is_recorded'),
    Mutant('J7', 'the daily run waits for the cash-out scoring', JOBS, [
        ('after=risk_jobs.gate(ctx, day),', 'after=None,'),
    ], RISK_JOB + 'test_settlement_waits_while_the_scoring_is_held_by_another_instance'),
    Mutant('J8', 'the scoring is planned ahead of the daily run', JOBS, [
        ('[cutoff_planner(ctx), *risk_jobs.planners(ctx), daily_planner(ctx),',
         '[cutoff_planner(ctx), daily_planner(ctx), *risk_jobs.planners(ctx),'),
    ], RISK_JOB + 'test_after_downtime_the_missed_date_is_scored_before_its_settlement_runs'),
    Mutant('J9', 'scoring a date again changes nothing', RISK_SCORE, [
        ('    if previous is not None and (previous.score,',
         '    if False and (previous.score,'),
    ], RISK_JOB + 'test_scoring_the_date_again_changes_nothing'),
    Mutant('L1', 'capture posting', PM, [
        ('                lines = [Line.debit(RECEIVABLE, amount), '
         'Line.credit(unsettled, amount)]\n',
         '                lines = [Line.debit(RECEIVABLE, amount), '
         'Line.credit(HOLDS_CONTRA, amount)]\n'),
    ], PAYMENTS + 'test_sale_approved_posts_and_charges'),
    Mutant('L2', 'completion releases the whole hold', PM, [
        ('hold = Money(held.amount_minor, amount.currency)',
         'hold = amount'),
    ], PAYMENTS + 'test_preauth_and_completion'),
    Mutant('L3', 'cancel releases the hold', PM, [
        ('            case tm.EventKind.HOLD_RELEASED:\n                lines = '
         '[Line.debit(HOLDS_CONTRA, amount), Line.credit(HOLDS, amount)]',
         '            case tm.EventKind.HOLD_RELEASED:\n                lines = '
         '[Line.debit(HOLDS, amount), Line.credit(HOLDS_CONTRA, amount)]'),
    ], PAYMENTS + 'test_cancel_releases_the_hold'),
    Mutant('L4', 'void/refund posting', PM, [
        ('                lines = [Line.debit(unsettled, amount), Line.credit(RECEIVABLE, amount)]',
         '                lines = [Line.debit(unsettled, amount), '
         'Line.credit(HOLDS_CONTRA, amount)]'),
    ], PAYMENTS + 'test_void_refund_and_reversal'),
    Mutant('L5', 'reversal negates the entries', PM, [
        ('Money(-row.balance_minor, currency(row.currency)))',
         'Money(row.balance_minor, currency(row.currency)))'),
    ], PAYMENTS + 'test_void_refund_and_reversal'),
    Mutant('L6', 'unacknowledged reversal stays queued', PM, [
        ('ok, error = False, str(exc)',
         'ok, error = True, str(exc)'),
    ], PAYMENTS + 'test_unacknowledged_reversal_stays_queued_until_the_issuer_takes_it'),
]


def run(mutant: Mutant) -> bool | None:
    """True: the test failed (the rule is guarded); None: the mutant no longer applies."""
    path = ROOT / mutant.path
    original = path.read_text(encoding="utf-8")
    mutated = original
    for old, new in mutant.changes:
        if mutated.count(old) != 1:
            return None
        mutated = mutated.replace(old, new)
    backup = path.with_name(path.name + ".orig")
    shutil.copyfile(path, backup)
    try:
        path.write_text(mutated, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             mutant.test], cwd=ROOT, capture_output=True, text=True, check=False)
    finally:
        shutil.copyfile(backup, path)
        backup.unlink()
    return done.returncode == 1


def main(keys: list[str]) -> int:
    """Run the mutants named in ``keys`` (all when empty); 1 if any survived."""
    chosen = [m for m in MUTANTS if not keys or m.key in keys]
    bad = 0
    for mutant in chosen:
        outcome = run(mutant)
        word = {True: "fails when removed", False: "SURVIVED", None: "NO LONGER APPLIES"}
        print(f"{mutant.key:5} {word[outcome]:18} {mutant.rule}", flush=True)
        bad += outcome is not True
    print(f"{len(chosen) - bad} of {len(chosen)} rules guarded")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
