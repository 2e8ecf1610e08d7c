"""A bank that pays our payout file and writes its return file (docs/reconciliation.md).

It reads the fixed-width payout file we send (docs/payout-file.md: header, then one 200-byte
detail record per payout, GB 18030) and answers each payout: paid (``S``), or returned
(``R``) with a reason code and text. Which ones come back is the caller's choice: by payout
id, by account number (a closed account returns every payout to it), or none. The return
file has a header and a trailer with the count and total, so the import can tell a
truncated one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from autosettle.domain.recon_layouts import control_record, fixed_record
from autosettle.services.recon import builtin_sources

PAYOUT_RECORD_BYTES = 200
ENCODING = "gb18030"
CLOSED_ACCOUNT = ("R001", "账户已销户 account closed")


@dataclass(frozen=True, slots=True)
class PayoutLine:
    payout_id: str
    merchant_id: str
    account_number: str
    amount_minor: int


def read_payout_file(path: Path) -> tuple[date, list[PayoutLine]]:
    """The file date and the detail records of our fixed-width payout file."""
    with open(path, "rb") as handle:
        header = handle.readline()
        if not header.startswith(b"H"):
            raise ValueError(f"{path} does not start with a payout file header")
        on = date(int(header[1:5]), int(header[5:7]), int(header[7:9]))
        lines = []
        for raw in handle:
            if not raw.startswith(b"D"):
                continue
            lines.append(PayoutLine(raw[1:33].decode("ascii").strip(),
                                    raw[33:48].decode("ascii").strip(),
                                    raw[48:80].decode("ascii").strip(),
                                    int(raw[80:96])))
    return on, lines


def write_return_file(payout_file: Path, out: Path, *,
                      returned: Mapping[str, tuple[str, str]] | None = None,
                      closed_accounts: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Answer every payout of ``payout_file`` in the return file ``out``; ``returned`` maps a
    payout id to its (reason code, reason). Returns (payout id, ``paid``/``returned``)."""
    spec = builtin_sources()["bank"]
    assert spec.header is not None and spec.trailer is not None
    on, lines = read_payout_file(payout_file)
    closed = set(closed_accounts)
    answers = []
    with open(out, "wb") as handle:
        total = sum(p.amount_minor for p in lines)
        handle.write(control_record(spec.header, on, len(lines), total) + b"\n")
        for p in lines:
            reason = (returned or {}).get(p.payout_id)
            if reason is None and p.account_number in closed:
                reason = CLOSED_ACCOUNT
            values = {"record_type": "D", "order_ref": p.payout_id,
                      "merchant_id": p.merchant_id, "amount": f"{p.amount_minor:016d}",
                      "result_code": "R" if reason else "S",
                      "reason_code": reason[0] if reason else "",
                      "reason": _fit(reason[1], 40) if reason else ""}
            handle.write(fixed_record(spec, values) + b"\n")
            answers.append((p.payout_id, "returned" if reason else "paid"))
        handle.write(control_record(spec.trailer, on, len(lines), total) + b"\n")
    return answers


def _fit(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` bytes of GB 18030 without splitting a character."""
    out = ""
    for char in text:
        if len((out + char).encode(ENCODING)) > width:
            break
        out += char
    return out
