"""The operator's refund from the risk review queue (docs/risk.md).

A held transaction the operator will not release is refunded in full (what is left of it):
a refund through the ordinary payment path (``services.payments.authorize``), at the
original's terminal, so the channel, the ledger and the settlement items move as for any
refund. Its held capture item and the refund's negative item then net to nothing.
"""

from __future__ import annotations

from autosettle.domain import transactions as tm
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.money import Money, currency
from autosettle.services import payments
from autosettle.services.audit import record as audit
from autosettle.services.context import Principal, ServiceContext


def refund_reviewed(ctx: ServiceContext, who: Principal,
                    txn_id: str) -> payments.PaymentResult:
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        original = uow.transactions.get_any_merchant(txn_id)
        found = uow.risk.decision(original.merchant_id, txn_id) if original else None
    if original is None or found is None or found.decision != "review":
        raise NotFoundError(f"no transaction {txn_id} on review")
    merchant_id = original.merchant_id
    left = original.amount_minor - original.refunded_minor
    if original.status != tm.TxnStatus.APPROVED.value or left <= 0:
        raise ValidationError(f"transaction {txn_id} is {original.status} with nothing left "
                              "to refund", ErrorCode.INVALID_STATE)
    result = payments.authorize(ctx, payments.PaymentRequest(
        tm.TxnType.REFUND, merchant_id, original.terminal_id,
        Money(left, currency(original.currency)), original=payments.OriginalRef(txn_id=txn_id),
        idempotency_key=f"risk-refund-{txn_id}"))
    with ctx.db.unit_of_work() as uow:
        audit(uow, who, "risk_review.refund", f"merchant/{merchant_id}/transaction/{txn_id}",
              ctx.now(), outcome="ok" if result.approved else "declined",
              detail={"response_code": result.response_code.value, "amount_minor": left})
    return result
