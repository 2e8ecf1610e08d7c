"""The slips a China UnionPay POS prints, as pure functions of the transaction's facts.

* :func:`receipt_slip`: the sales slip (POS 签购单) of an approved sale, void, refund,
  pre-authorization, completion ...; one per copy (商户存根 MERCHANT COPY, 持卡人存根
  CARDHOLDER COPY, 银行存根 BANK COPY), marked 重打印 DUPLICATE when reprinted.
* :func:`decline_slip`: a declined or refused transaction: the response code, the reason
  and what the cashier does next.
* :func:`settlement_slip`: the batch settlement slip (结算单) after a batch close: count
  and total per transaction type, and whether the terminal's totals balanced with ours.
* :func:`check_page`: the test page of ``autosettle printers check``.

Chinese labels with English beside them (``chinese=False`` for a printer without a
Chinese font: English only). The card number is always re-masked to first 6 / last 4
digits (:func:`mask_pan`), whatever the caller passes. Times are shown in Asia/Shanghai.

Pure: the standard library and ``autosettle.domain`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.money import Money, currency
from autosettle.domain.response_codes import ResponseCode, TerminalAction, describe, lookup
from autosettle.domain.transactions import TxnType
from autosettle.printing.layout import (
    WIDTHS_COLS,
    Align,
    Line,
    Slip,
    display_width,
    fits,
    pad_between,
    pad_left,
    wrap,
)

OPERATOR_DEFAULT: Final = "01"
PAN_SHOWN_FIRST: Final = 6
PAN_SHOWN_LAST: Final = 4


class CopyKind(StrEnum):
    """Which copy of a sales slip (the order a CUP terminal prints them in)."""

    MERCHANT = "merchant"
    CARDHOLDER = "cardholder"
    BANK = "bank"


COPY_ORDER: Final = (CopyKind.MERCHANT, CopyKind.CARDHOLDER, CopyKind.BANK)
COPY_LABELS: Final[Mapping[CopyKind, tuple[str, str]]] = MappingProxyType({
    CopyKind.MERCHANT: ("商户存根", "MERCHANT COPY"),
    CopyKind.CARDHOLDER: ("持卡人存根", "CARDHOLDER COPY"),
    CopyKind.BANK: ("银行存根", "BANK COPY"),
})

TYPE_LABELS: Final[Mapping[TxnType, tuple[str, str]]] = MappingProxyType({
    TxnType.SALE: ("消费", "SALE"),
    TxnType.VOID: ("撤销", "VOID"),
    TxnType.REFUND: ("退货", "REFUND"),
    TxnType.PREAUTH: ("预授权", "AUTH"),
    TxnType.PREAUTH_VOID: ("预授权撤销", "AUTH VOID"),
    TxnType.COMPLETION: ("预授权完成", "AUTH COMPLETE"),
    TxnType.COMPLETION_VOID: ("预授权完成撤销", "AUTH COMPLETE VOID"),
    TxnType.BALANCE_INQUIRY: ("余额查询", "BALANCE INQUIRY"),
})
"""Every transaction type's name on a slip (a test proves the table is complete)."""

MONEY_BACK_TYPES: Final = frozenset({TxnType.VOID, TxnType.REFUND, TxnType.PREAUTH_VOID,
                                     TxnType.COMPLETION_VOID})
"""Types that give money (or a hold) back to the cardholder: printed with a minus sign."""

ORIGINAL_TYPES: Final = MONEY_BACK_TYPES | {TxnType.COMPLETION}
"""Types that name an original transaction: its trace (原凭证号) is printed."""

BRAND_LABELS: Final[Mapping[str, str]] = MappingProxyType({
    "unionpay": "银联 UnionPay", "visa": "VISA", "mastercard": "MasterCard",
    "amex": "AMEX", "jcb": "JCB", "unknown": "",
})
KIND_LABELS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType({
    "debit": ("借记卡", "DEBIT"), "credit": ("贷记卡", "CREDIT"),
    "foreign": ("外卡", "FOREIGN"), "other": ("其他", "OTHER"),
})

# What the cashier does after a decline: specific codes first, then by terminal action.
_ADVICE_BY_CODE: Final[Mapping[ResponseCode, tuple[str, str]]] = MappingProxyType({
    ResponseCode.INSUFFICIENT_FUNDS: ("请持卡人换卡或联系发卡行",
                                      "Use another card or contact the issuer"),
    ResponseCode.INCORRECT_PIN: ("请持卡人重新输入密码", "Ask the cardholder to re-enter the PIN"),
    ResponseCode.PIN_TRIES_EXCEEDED: ("密码已锁,请持卡人联系发卡行",
                                      "PIN locked: the cardholder contacts the issuer"),
    ResponseCode.EXPIRED_CARD: ("卡已过期,请换卡", "Card expired: use another card"),
    ResponseCode.EXCEEDS_AMOUNT_LIMIT: ("超出限额,请换卡或分笔支付",
                                        "Over the limit: another card or a smaller amount"),
    ResponseCode.INVALID_CARD_NUMBER: ("请核对卡号后重试", "Check the card number and retry"),
    ResponseCode.INVALID_AMOUNT: ("请核对金额后重试", "Check the amount and retry"),
    ResponseCode.ORIGINAL_NOT_FOUND: ("请核对原交易凭证号",
                                      "Check the original trace number"),
})
_ADVICE_BY_ACTION: Final[Mapping[TerminalAction, tuple[str, str]]] = MappingProxyType({
    TerminalAction.COMPLETE: ("", ""),
    TerminalAction.DECLINE: ("请持卡人换卡支付或联系发卡行",
                             "Use another card or contact the issuer"),
    TerminalAction.RETRY: ("请稍后重试", "Retry in a moment"),
    TerminalAction.SIGN_ON: ("请终端重新签到后重试", "Sign the terminal on again, then retry"),
    TerminalAction.REVERSE: ("交易已冲正,请重试", "The transaction was reversed: retry"),
})


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """Everything a sales or decline slip shows; JSON-safe (the print queue stores it)."""

    merchant_name: str
    merchant_id: str
    terminal_id: str
    txn_type: str
    amount_minor: int
    currency: str
    at_utc: str
    """ISO 8601, timezone-aware; shown in Asia/Shanghai."""
    batch_no: str
    trace: str
    rrn: str
    reference: str
    """The transaction id: the QR code's payload."""
    approved: bool
    pan_masked: str | None = None
    card_brand: str | None = None
    card_kind: str | None = None
    issuer: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    refusal_reason: str | None = None
    original_trace: str | None = None
    original_rrn: str | None = None
    pin_verified: bool = False
    operator: str = OPERATOR_DEFAULT

    def to_json(self) -> str:
        return json.dumps({"receipt": asdict(self)}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class TypeTotal:
    """One row of a settlement slip: a transaction type's approved count and amount."""

    txn_type: str
    count: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class SettlementData:
    """A terminal batch close: totals per type and the reconciliation verdict per block."""

    merchant_name: str
    merchant_id: str
    terminal_id: str
    batch_no: str
    at_utc: str
    currency: str
    totals: tuple[TypeTotal, ...]
    domestic_balanced: bool
    foreign_balanced: bool
    operator: str = OPERATOR_DEFAULT

    def to_json(self) -> str:
        return json.dumps({"settlement": asdict(self)}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class CheckPageData:
    """The test page: which printer, where, when."""

    printer_name: str
    interface: str
    address: str
    at_utc: str
    extra: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps({"test": asdict(self)}, ensure_ascii=False, sort_keys=True)


SlipData = ReceiptData | SettlementData | CheckPageData


def slip_data_from_json(text: str) -> SlipData:
    """The data a queued job stored (:meth:`ReceiptData.to_json` and friends)."""
    raw: dict[str, Any] = json.loads(text)
    if "receipt" in raw:
        return ReceiptData(**raw["receipt"])
    if "settlement" in raw:
        body = dict(raw["settlement"])
        body["totals"] = tuple(TypeTotal(**t) for t in body["totals"])
        return SettlementData(**body)
    body = dict(raw["test"])
    body["extra"] = tuple(body.get("extra", ()))
    return CheckPageData(**body)


def mask_pan(value: str | None) -> str:
    """A card number shown as first 6 / last 4 digits, whatever ``value`` holds.

    >>> mask_pan("6222020000000000014")
    '622202*********0014'
    >>> mask_pan("622202*********0014")
    '622202*********0014'
    >>> mask_pan(None)
    ''
    """
    if not value:
        return ""
    digits = [ch for ch in value if ch.isdigit()]
    length = len(value)
    if len(digits) < PAN_SHOWN_FIRST + PAN_SHOWN_LAST:
        return "*" * length  # too short to be a card number: show none of it
    head = "".join(digits[:PAN_SHOWN_FIRST])
    tail = "".join(digits[-PAN_SHOWN_LAST:])
    return head + "*" * (length - PAN_SHOWN_FIRST - PAN_SHOWN_LAST) + tail


def local_time(at_utc: str) -> str:
    """``2026-09-18 10:00:00``: an ISO instant in Asia/Shanghai."""
    return datetime.fromisoformat(at_utc).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def amount_text(amount_minor: int, code: str, negative: bool = False) -> str:
    """``RMB 12.34`` (``RMB -12.34`` when money goes back); other currencies by code."""
    shown = Money(-amount_minor if negative else amount_minor, currency(code)).format()
    return f"{'RMB' if code == 'CNY' else code} {shown}"


def type_label(txn_type: str, chinese: bool = True) -> str:
    """``消费 SALE``."""
    try:
        zh, en = TYPE_LABELS[TxnType(txn_type)]
    except ValueError:
        zh, en = txn_type, txn_type.upper()
    return f"{zh} {en}" if chinese else en


def advice(code: str | None) -> tuple[str, str, str, str]:
    """(reason zh, reason en, what to do zh, what to do en) for a response code."""
    found = lookup(code) if code else None
    if found is None:
        return ("交易被拒绝", "Declined", "请联系收单机构", "Contact the acquirer")
    text = describe(found)
    todo = _ADVICE_BY_CODE.get(found) or _ADVICE_BY_ACTION[text.action]
    return text.chinese, text.english, todo[0], todo[1]


class _Builder:
    """Lines of one slip; labels Chinese + English, or English only."""

    def __init__(self, width_cols: int, chinese: bool) -> None:
        if width_cols not in WIDTHS_COLS:
            raise ValueError(f"slip width must be one of {WIDTHS_COLS} columns")
        self.cols = width_cols
        self.chinese = chinese
        self.lines: list[Line] = []

    def label(self, zh: str, en: str) -> str:
        return f"{zh} {en}" if self.chinese else en

    def add(self, text: str = "", align: Align = Align.LEFT, bold: bool = False,
            large: bool = False) -> None:
        indent = len(text) - len(text.lstrip(" "))
        if display_width(text) <= self.cols:
            parts = [text]  # laid out by the caller: kept as it is, spaces included
        else:
            parts = [" " * indent + part for part in wrap(text, self.cols - indent)]
        for part in parts:
            self.lines.append(Line(part, align, bold, large))

    def rule(self, ch: str = "-") -> None:
        self.lines.append(Line(ch * self.cols))

    def pair(self, zh: str, en: str, value: str, bold: bool = False,
             large: bool = False) -> None:
        """``label: value`` on one line when it fits, else the value indented below."""
        label = f"{self.label(zh, en)}:"
        if fits(label, value, self.cols):
            self.lines.append(Line(pad_between(label, value, self.cols), Align.LEFT, bold,
                                   large))
            return
        self.add(label)
        for part in wrap(value, self.cols - 2):
            self.lines.append(Line(f"  {part}", Align.LEFT, bold, large))

    def slip(self, qr: str | None = None, caption: str | None = None) -> Slip:
        return Slip(self.cols, tuple(self.lines), qr, caption, self.chinese)


def _header(b: _Builder, title_zh: str, title_en: str, data: ReceiptData | SettlementData,
            duplicate: bool) -> None:
    if b.chinese:
        b.add(title_zh, Align.CENTER, bold=True, large=True)
    b.add(title_en, Align.CENTER, bold=True)
    if duplicate:
        b.add(b.label("重打印", "DUPLICATE"), Align.CENTER, bold=True, large=True)
    b.rule()
    b.pair("商户名称", "MERCHANT NAME", data.merchant_name)
    b.pair("商户编号", "MERCHANT NO.", data.merchant_id)
    b.pair("终端编号", "TERMINAL NO.", data.terminal_id)
    b.pair("操作员号", "OPERATOR NO.", data.operator)
    b.rule()


def _card(b: _Builder, data: ReceiptData) -> None:
    if data.issuer:
        b.pair("发卡行", "ISSUER", data.issuer)
    b.pair("卡号", "CARD NO.", mask_pan(data.pan_masked) or "-", bold=True)
    brand = BRAND_LABELS.get(data.card_brand or "unknown", data.card_brand or "")
    zh_kind, en_kind = KIND_LABELS.get(data.card_kind or "", ("", ""))
    kind = (f"{zh_kind} {en_kind}" if b.chinese else en_kind) if zh_kind else ""
    if not b.chinese:
        brand = brand.replace("银联 ", "")
    shown = " ".join(part for part in (brand, kind) if part)
    if shown:
        b.pair("卡类别", "CARD TYPE", shown)


def _trace(b: _Builder, data: ReceiptData) -> None:
    b.pair("交易类型", "TRANS TYPE", type_label(data.txn_type, b.chinese), bold=True)
    b.pair("批次号", "BATCH NO.", data.batch_no)
    b.pair("凭证号", "VOUCHER NO.", data.trace)
    if data.auth_code:
        b.pair("授权码", "AUTH NO.", data.auth_code)
    b.pair("参考号", "REF. NO.", data.rrn)
    b.pair("日期/时间", "DATE/TIME", local_time(data.at_utc))


def receipt_slip(data: ReceiptData, width_cols: int, copy: CopyKind = CopyKind.MERCHANT,
                 duplicate: bool = False, chinese: bool = True) -> Slip:
    """The sales slip (签购单) of an approved transaction, one copy."""
    b = _Builder(width_cols, chinese)
    _header(b, "银联POS签购单", "POS SALES SLIP", data, duplicate)
    zh_copy, en_copy = COPY_LABELS[copy]
    b.add(b.label(zh_copy, en_copy), Align.RIGHT, bold=True)
    _card(b, data)
    _trace(b, data)
    negative = _is_money_back(data.txn_type)
    b.pair("金额", "AMOUNT", amount_text(data.amount_minor, data.currency, negative),
           bold=True, large=True)
    b.rule()
    b.add(b.label("备注", "REFERENCE") + ":")
    if data.original_trace and _names_original(data.txn_type):
        b.pair("原凭证号", "ORIG. VOUCHER", data.original_trace)
        if data.original_rrn:
            b.pair("原参考号", "ORIG. REF. NO.", data.original_rrn)
    if duplicate:
        b.add(b.label("重打印凭证", "DUPLICATE RECEIPT"))
    b.rule()
    if data.pin_verified:
        b.add(b.label("密码验证,免签名", "PIN VERIFIED, NO SIGNATURE REQUIRED"))
    elif copy is not CopyKind.CARDHOLDER:  # the cardholder signs the copy the shop keeps
        b.add(b.label("持卡人签名", "CARDHOLDER SIGNATURE") + ":")
        b.add()
        b.add()
        b.rule("_")
    if chinese:
        b.add("本人确认以上交易,同意将其记入本卡账户")
    b.add("I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES")
    return _with_reference(b, data.reference)


def _with_reference(b: _Builder, reference: str) -> Slip:
    """The QR code of the transaction reference, the reference under it (32 characters:
    one line even on 58 mm paper)."""
    b.add(b.label("交易参考号", "TXN REFERENCE"), Align.CENTER)
    return b.slip(reference, reference)


def decline_slip(data: ReceiptData, width_cols: int, duplicate: bool = False,
                 chinese: bool = True) -> Slip:
    """The slip of a declined or refused transaction: code, reason, what to do."""
    b = _Builder(width_cols, chinese)
    _header(b, "交易失败", "TRANSACTION DECLINED", data, duplicate)
    if data.pan_masked:
        _card(b, data)
    b.pair("交易类型", "TRANS TYPE", type_label(data.txn_type, b.chinese), bold=True)
    b.pair("凭证号", "VOUCHER NO.", data.trace)
    b.pair("日期/时间", "DATE/TIME", local_time(data.at_utc))
    b.pair("金额", "AMOUNT", amount_text(data.amount_minor, data.currency,
                                           _is_money_back(data.txn_type)), bold=True)
    b.rule()
    reason_zh, reason_en, todo_zh, todo_en = advice(data.response_code)
    b.pair("应答码", "RESPONSE CODE", data.response_code or "--", bold=True, large=True)
    b.add(b.label("原因", "REASON") + ":")
    if chinese:
        b.add(f"  {reason_zh}")
    b.add(f"  {reason_en}")
    if data.refusal_reason:
        b.add(f"  ({data.refusal_reason})")
    b.add(b.label("处理建议", "WHAT TO DO") + ":")
    if chinese:
        b.add(f"  {todo_zh}")
    b.add(f"  {todo_en}")
    b.rule()
    b.add(b.label("本交易未扣款", "THE CARD WAS NOT CHARGED"), Align.CENTER, bold=True)
    return _with_reference(b, data.reference)


def settlement_slip(data: SettlementData, width_cols: int, duplicate: bool = False,
                    chinese: bool = True) -> Slip:
    """The batch settlement slip (结算单): count and amount per type, and the verdict."""
    b = _Builder(width_cols, chinese)
    _header(b, "结算总计单", "SETTLEMENT SLIP", data, duplicate)
    b.pair("批次号", "BATCH NO.", data.batch_no)
    b.pair("日期/时间", "DATE/TIME", local_time(data.at_utc))
    b.rule()
    count_cols, amount_cols = 5, 14
    b.add(pad_between(b.label("类型", "TYPE"),
                      pad_left(b.label("笔数", "CNT"), count_cols) + " "
                      + pad_left(b.label("金额", "AMOUNT"), amount_cols), b.cols))
    for total in data.totals:
        name = type_label(total.txn_type, b.chinese)
        money = amount_text(total.amount_minor, data.currency, _is_money_back(total.txn_type))
        figures = pad_left(str(total.count), count_cols) + " " + pad_left(money, amount_cols)
        if fits(name, figures, b.cols):
            b.add(pad_between(name, figures, b.cols))
        else:
            b.add(name)
            b.add(figures, Align.RIGHT)
    b.rule()
    for zh, en, ok in (("内卡", "DOMESTIC", data.domestic_balanced),
                       ("外卡", "FOREIGN", data.foreign_balanced)):
        verdict = b.label("对账平", "BALANCED") if ok else b.label("对账不平", "NOT BALANCED")
        b.pair(zh, en, verdict, bold=True)
    if not (data.domestic_balanced and data.foreign_balanced):
        b.add(b.label("请核对交易明细,联系收单机构",
                      "Check the batch detail and contact the acquirer"))
    return b.slip()


def check_page(data: CheckPageData, width_cols: int, chinese: bool = True) -> Slip:
    """The test page: a column ruler, a line of Chinese, the printer's settings, a QR."""
    b = _Builder(width_cols, chinese)
    if chinese:
        b.add("打印测试页", Align.CENTER, bold=True, large=True)
    b.add("PRINTER TEST PAGE", Align.CENTER, bold=True)
    b.rule()
    b.add("".join(str(i % 10) for i in range(1, b.cols + 1)))
    if chinese:
        b.add("中文打印测试 GB18030: 银联消费撤销退货")
    b.pair("打印机", "PRINTER", data.printer_name)
    b.pair("接口", "INTERFACE", data.interface)
    b.pair("地址", "ADDRESS", data.address)
    b.pair("纸宽", "WIDTH", f"{b.cols} cols ({'58' if b.cols == 32 else '80'} mm)")
    b.pair("时间", "TIME", local_time(data.at_utc))
    for extra in data.extra:
        b.add(extra)
    b.rule()
    return b.slip(f"TEST {data.printer_name}", b.label("测试", "TEST") + " OK")


def render(data: SlipData, width_cols: int, copy: CopyKind | None = None,
           duplicate: bool = False, chinese: bool = True) -> Slip:
    """The slip for any stored slip data (what a print job holds)."""
    if isinstance(data, SettlementData):
        return settlement_slip(data, width_cols, duplicate, chinese)
    if isinstance(data, CheckPageData):
        return check_page(data, width_cols, chinese)
    if not data.approved:
        return decline_slip(data, width_cols, duplicate, chinese)
    return receipt_slip(data, width_cols, copy or CopyKind.MERCHANT, duplicate, chinese)


def _is_money_back(txn_type: str) -> bool:
    return txn_type in {t.value for t in MONEY_BACK_TYPES}


def _names_original(txn_type: str) -> bool:
    return txn_type in {t.value for t in ORIGINAL_TYPES}


def widest_line(slip: Slip) -> int:
    """Columns of the widest line (tests: never more than the slip's width)."""
    return max((display_width(line.text) for line in slip.lines), default=0)
