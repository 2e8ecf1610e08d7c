"""E-receipts: ``GET /v1/transactions/{txn_id}/receipt?format=pdf|png|txt|escpos``.

The same slip the printer prints, as a file for a link by SMS or in the merchant's app.
Who may fetch it: whoever may see the transaction (services/receipts.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from autosettle.api.deps import Ctx, Who
from autosettle.api.error_schemas import ErrorResponse
from autosettle.services import receipts

router = APIRouter(prefix="/v1", tags=["transactions"])
FORMAT_PATTERN = "^(pdf|png|txt|escpos)$"
COPY_PATTERN = "^(merchant|cardholder|bank)$"
RECEIPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The receipt file",
          "content": {"application/pdf": {}, "image/png": {}, "text/plain": {},
                      "application/octet-stream": {}}},
    409: {"model": ErrorResponse,
          "description": "invalid_state: the transaction has no receipt (pending, reversed, "
                         "or a balance inquiry)"},
}


@router.get("/transactions/{txn_id}/receipt", response_class=Response,
            responses=RECEIPT_RESPONSES)
def receipt(txn_id: str, ctx: Ctx, who: Who,
            format: Annotated[str, Query(pattern=FORMAT_PATTERN)] = "pdf",
            copy: Annotated[str, Query(pattern=COPY_PATTERN)] = "cardholder",
            width: Annotated[int, Query(ge=32, le=48, description="32 (58 mm) or 48 (80 mm)"
                                        )] = 32) -> Response:
    """The transaction's slip as PDF, PNG, plain text or ESC/POS bytes."""
    found = receipts.render_receipt(ctx, who, txn_id, format, copy, width)
    return Response(found.content, media_type=found.media_type,
                    headers={"Content-Disposition": f'inline; filename="{found.filename}"'})
