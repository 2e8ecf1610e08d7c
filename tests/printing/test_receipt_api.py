"""E-receipts and printers through the REST API, on both databases: formats, the
transaction's role rules, printer management, diagnosis, jobs and reprints."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from printtools import (
    MID,
    MID_OTHER,
    PAN,
    TID,
    TID2,
    FakePrinter,
    PrinterState,
    decode_escpos,
    sale,
    seed_shop,
    txn_of,
)

from autosettle.domain.transactions import TxnType
from autosettle.services import apikeys
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator


def bearer(ctx: ServiceContext, role: Role, mid: str | None = None,
           tid: str | None = None) -> dict[str, str]:
    key = apikeys.create_api_key(ctx, SYSTEM, role, f"{role}", mid, tid).key
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(ctx: ServiceContext, sim: IssuerSimulator) -> dict[str, dict[str, str]]:
    seed_shop(ctx, sim)
    ctx.settings.printer_timeout_s = 1.0
    return {"operator": bearer(ctx, Role.OPERATOR), "merchant": bearer(ctx, Role.MERCHANT, MID),
            "other": bearer(ctx, Role.MERCHANT, MID_OTHER),
            "till": bearer(ctx, Role.TERMINAL, MID, TID),
            "other_till": bearer(ctx, Role.TERMINAL, MID, TID2)}


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


def test_the_receipt_in_every_format(client: TestClient, ctx: ServiceContext,
                                     keys: dict[str, dict[str, str]]) -> None:
    txn = txn_of(sale(ctx, 1234))
    url = f"/v1/transactions/{txn}/receipt"
    text = client.get(url, params={"format": "txt"}, headers=keys["till"])
    assert text.status_code == 200, text.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "持卡人存根 CARDHOLDER COPY" in text.text and "RMB 12.34" in text.text
    assert f"{PAN[:6]}*********{PAN[-4:]}" in text.text and PAN not in text.text
    merchant_copy = client.get(url, params={"format": "txt", "copy": "merchant", "width": 48},
                               headers=keys["merchant"])
    assert "商户存根 MERCHANT COPY" in merchant_copy.text
    escpos = client.get(url, params={"format": "escpos"}, headers=keys["operator"])
    decoded = decode_escpos(escpos.content)
    assert decoded.cuts == 1 and decoded.qr_payloads == [txn]
    png = client.get(url, params={"format": "png"}, headers=keys["merchant"])
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.width == 32 * 12 + 2 * 24
    pdf = client.get(url, headers=keys["merchant"])  # PDF is the default
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and b"STSong-Light" in pdf.content


def test_the_receipt_follows_the_transactions_role_rules(
        client: TestClient, ctx: ServiceContext, keys: dict[str, dict[str, str]]) -> None:
    txn = txn_of(sale(ctx, 100))
    url = f"/v1/transactions/{txn}/receipt?format=txt"
    for who in ("other", "other_till"):
        response = client.get(url, headers=keys[who])
        assert response.status_code == 404, who
        assert response.json()["error"]["code"] == "not_found"
    assert client.get(url).status_code == 401
    assert client.get(f"/v1/transactions/{txn}/receipt?format=doc",
                      headers=keys["till"]).status_code == 422
    assert client.get("/v1/transactions/nope/receipt", headers=keys["till"]).status_code == 404


def test_a_balance_inquiry_has_no_receipt(client: TestClient, ctx: ServiceContext,
                                          keys: dict[str, dict[str, str]]) -> None:
    from autosettle.services import payments
    from autosettle.services.payments import CardInput, PaymentRequest

    result = payments.authorize(ctx, PaymentRequest(TxnType.BALANCE_INQUIRY, MID, TID, None,
                                                    CardInput(PAN, "3012", "123456")))
    response = client.get(f"/v1/transactions/{txn_of(result)}/receipt", headers=keys["till"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


def test_printers_through_the_api(client: TestClient, ctx: ServiceContext,
                                  keys: dict[str, dict[str, str]], fake: FakePrinter) -> None:
    body = {"name": "front-desk", "merchant_id": MID, "terminal_id": TID,
            "interface": "network", "address": fake.address, "width_cols": 48}
    assert client.post("/v1/printers", json=body, headers=keys["merchant"]).status_code == 403
    created = client.post("/v1/printers", json=body,
                          headers={**keys["operator"], "Idempotency-Key": "p1"})
    assert created.status_code == 201, created.text
    replay = client.post("/v1/printers", json=body,
                         headers={**keys["operator"], "Idempotency-Key": "p1"})
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert client.post("/v1/printers", json=body, headers=keys["operator"]).status_code == 409
    bad = client.post("/v1/printers", json={**body, "name": "b", "terminal_id": TID2,
                                            "address": "/dev/ttyS0"}, headers=keys["operator"])
    assert bad.status_code == 422
    assert [p["name"] for p in client.get("/v1/printers",
                                          headers=keys["merchant"]).json()["items"]] == \
        ["front-desk"]
    assert client.get("/v1/printers", headers=keys["other"]).json()["items"] == []
    assert client.get("/v1/printers/front-desk", headers=keys["other_till"]).status_code == 404

    check = client.post("/v1/printers/front-desk/check", headers=keys["till"])
    assert check.status_code == 200, check.text
    assert check.json()["ok"] is True
    assert [s["outcome"] for s in check.json()["steps"]] == ["ok"] * 6
    fake.state = PrinterState(paper_out=True)
    failed = client.post("/v1/printers/front-desk/check", headers=keys["merchant"]).json()
    assert failed["ok"] is False
    paper = next(s for s in failed["steps"] if s["outcome"] == "failed")
    assert paper["name"] == "paper" and paper["problem_zh"] == "打印机缺纸"
    fake.state = PrinterState()

    txn = txn_of(sale(ctx, 300))
    from autosettle.services import printing

    printing.follow(ctx)
    printing.deliver(ctx)
    jobs = client.get("/v1/printers/front-desk/jobs", headers=keys["till"]).json()["items"]
    assert {j["state"] for j in jobs} == {"printed"} and {j["txn_id"] for j in jobs} == {txn}
    reprint = client.post("/v1/printers/front-desk/reprints", json={},
                          headers={**keys["till"], "Idempotency-Key": "r1"})
    assert reprint.status_code == 201, reprint.text
    again = client.post("/v1/printers/front-desk/reprints", json={},
                        headers={**keys["till"], "Idempotency-Key": "r1"})
    assert again.json() == reprint.json()  # replayed, not queued twice
    assert all(j["duplicate"] for j in reprint.json()["items"])
    pending = client.get("/v1/print-jobs?state=pending", headers=keys["operator"]).json()
    assert len(pending["items"]) == 2
    cancel = client.post(f"/v1/print-jobs/{pending['items'][0]['job_id']}/cancel",
                         headers=keys["operator"])
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
    assert client.patch("/v1/printers/front-desk", json={"copies": 3},
                        headers=keys["operator"]).json()["copies"] == 3
    assert client.delete("/v1/printers/front-desk", headers=keys["till"]).status_code == 403
    assert client.delete("/v1/printers/front-desk", headers=keys["operator"]).status_code == 204
    assert client.get("/v1/printers/front-desk", headers=keys["operator"]).status_code == 404
