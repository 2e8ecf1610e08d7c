"""After a realistic workload, no full card number is in the database, the logs or the files.

The workload: the demo data set (settlement accounts included), a settlement account whose
number is a debit card number, card payments through the API (approved, declined, refused
as invalid), transaction search and CSV export, the tokenizer, and the receipts: a file
printer on the paying terminal (print jobs, printed slips, a reprint) and the e-receipts.
Every SQL statement is logged during it (with its parameters), so the log scan also proves
that no full number ever reached the database, not only that none stayed there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from apitools import bearer, row_counts
from fastapi.testclient import TestClient
from sqlalchemy import select

from autosettle.domain.cards import CardBrand, brand_of, luhn_check_digit, luhn_ok
from autosettle.services import merchants, printing
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.merchants import NewSettlementAccount
from autosettle.simulators import demo_seed as demo
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import metadata


def make_pan(serial: int, bin6: str = "622202") -> str:
    body = f"{bin6}{serial:012d}"
    return body + luhn_check_digit(body)


PAN = make_pan(424242)               # at the simulator, approved
PAN_DECLINED = make_pan(515151)      # at the simulator, wrong PIN
PAN_UNKNOWN = make_pan(616161)       # not at the simulator
PAN_AS_ACCOUNT = make_pan(717171, "621700")  # a debit card used as a settlement account
VISA_TEST = "4111111111111111"
PAN_BAD_LUHN = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)
DEMO_ACCOUNTS = [d.account.account_number for d in demo.DEMO_MERCHANTS]
SECRETS = [PAN, PAN_DECLINED, PAN_UNKNOWN, PAN_AS_ACCOUNT, VISA_TEST, PAN_BAD_LUHN,
           *DEMO_ACCOUNTS]
DIGIT_RUN = re.compile(rb"(?<![0-9A-Fa-f])[0-9]{13,19}(?![0-9A-Fa-f])")


def card_like_numbers(data: bytes) -> set[str]:
    """Runs of 13-19 digits that pass the Luhn check and start like a card number.

    Runs glued to hex letters are part of digests and tokens (64 hex characters have a
    fair chance of 13 digits in a row), not numbers.
    """
    found = set()
    for match in DIGIT_RUN.finditer(data):
        digits = match.group().decode()
        if luhn_ok(digits) and brand_of(digits) is not CardBrand.UNKNOWN:
            found.add(digits)
    return found


def leaks(data: bytes) -> list[str]:
    """Every full secret (or card-like number) in ``data``, in any common encoding."""
    hits = [s for s in SECRETS for encoded in (s.encode(), s.encode("utf-16-le"))
            if encoded in data]
    return hits + sorted(card_like_numbers(data))


def all_rows(ctx: ServiceContext) -> bytes:
    parts = []
    with ctx.db.unit_of_work() as uow:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in uow.connection.execute(select(table)))
    return "\n".join(parts).encode()


def test_secrets_are_what_they_claim() -> None:
    assert all(luhn_ok(p) for p in (PAN, PAN_DECLINED, PAN_UNKNOWN, PAN_AS_ACCOUNT, VISA_TEST))
    assert not luhn_ok(PAN_BAD_LUHN)
    assert card_like_numbers(f"x{PAN}x {VISA_TEST},".encode()) == {PAN, VISA_TEST}
    assert card_like_numbers(f"ab{PAN}".encode()) == set()  # part of a hex digest
    assert leaks(b"nothing here 898310054110001 2026091802") == []


def test_no_full_pan_anywhere_after_the_workload(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement + values
    answers: list[str] = []

    keys = demo.seed(ctx)
    hualian = demo.DEMO_MERCHANTS[0].merchant.merchant_id
    lao_wang = demo.DEMO_MERCHANTS[1]
    merchants.add_settlement_account(ctx, SYSTEM, lao_wang.merchant.merchant_id,
                                     NewSettlementAccount("CCB", PAN_AS_ACCOUNT,
                                                          lao_wang.merchant.legal_name,
                                                          lao_wang.account.account_type))
    sim.add_card(PAN, balance_minor=1_000_000, pin="123456")
    sim.add_card(PAN_DECLINED, balance_minor=1_000_000, pin="654321")
    terminal = bearer(keys[f"terminal:{hualian}:HL000001"])
    operator = bearer(keys["operator"])
    spool = tmp_path / "printer" / "HL000001.prn"
    assert client.post("/v1/printers", headers=operator, json={
        "name": "till-1", "merchant_id": hualian, "terminal_id": "HL000001",
        "interface": "file", "address": str(spool)}).status_code == 201

    def pay(pan: str, key: str, **extra: object) -> int:
        body = {"amount": "12.34", "card": {"pan": pan, "expiry": "3012", "pin": "123456"},
                **extra}
        response = client.post("/v1/payments/sales", json=body,
                               headers={**terminal, "Idempotency-Key": key})
        answers.append(response.text)
        return response.status_code

    assert pay(PAN, "sale-ok") == 201
    assert pay(PAN, "sale-ok") == 200                     # replayed
    assert pay(PAN_DECLINED, "sale-wrong-pin") == 201     # a decline is an answer
    assert pay(PAN_UNKNOWN, "sale-unknown-card") == 201
    assert pay(PAN_BAD_LUHN, "sale-bad-luhn") == 422
    assert pay(" ".join([PAN[:4], PAN[4:8], PAN[8:12], PAN[12:]]), "sale-spaced") == 201
    assert pay(VISA_TEST, "sale-extra-field", tip="1") == 422
    assert pay(PAN[:12], "sale-short") == 422
    for url in ("/v1/transactions", "/v1/transactions.csv",
                f"/v1/merchants/{hualian}/settlement-accounts",
                f"/v1/merchants/{lao_wang.merchant.merchant_id}/settlement-accounts"):
        response = client.get(url, headers=operator)
        assert response.status_code == 200, (url, response.text)
        answers.append(response.text)
    assert printing.follow(ctx) >= 3 and printing.deliver(ctx).printed >= 3
    assert client.post("/v1/printers/till-1/reprints", json={},
                       headers=terminal).status_code == 201
    assert printing.deliver(ctx).printed >= 1
    sold = client.get("/v1/transactions?limit=50", headers=operator).json()["items"]
    for item in sold:
        for fmt in ("txt", "escpos"):
            receipt = client.get(f"/v1/transactions/{item['txn_id']}/receipt",
                                 params={"format": fmt}, headers=operator)
            assert receipt.status_code in (200, 409), receipt.text
            answers.append(receipt.content.decode("gb18030", errors="replace"))
    assert row_counts(ctx)["print_jobs"] >= 4 and spool.stat().st_size > 0
    card = ctx.tokenizer.describe(PAN)
    assert PAN not in repr(card) and card.masked == f"{PAN[:6]}{'*' * 9}{PAN[-4:]}"
    assert row_counts(ctx)["transactions"] >= 3  # the workload did reach the database

    for answer in answers:
        assert leaks(answer.encode()) == [], answer
    assert leaks(all_rows(ctx)) == []
    if not ctx.db.is_postgres:
        db_file = Path(ctx.db.engine.url.database or "")
        files = sorted(db_file.parent.glob(db_file.name + "*"))
        assert files
        for path in files:
            assert leaks(path.read_bytes()) == [], path
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        if path.suffix in {".db", ".db-wal", ".db-shm", ".json", ".prn"} or "-wal" in path.name:
            assert leaks(path.read_bytes()) == [], path  # issuer simulator included
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "INSERT INTO" in logged  # the statements were captured
    assert leaks(logged.encode()) == []
