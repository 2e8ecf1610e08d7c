"""ISO 8583 / China UnionPay response codes (field 39) and what the terminal does with them.

One table, :data:`RESPONSE_TABLE`, gives for every :class:`ResponseCode` the English text for
the cashier, the Chinese text for the cashier's screen and the receipt (the usual CUP terminal
wording), and the :class:`TerminalAction` the terminal takes: complete, decline, retry, sign on
again, or reverse. Whether a code is an approval is derived from the action, so the table
cannot contradict itself.

Pure values: no I/O, imports only the standard library.

>>> describe(ResponseCode.INSUFFICIENT_FUNDS).chinese
'可用余额不足'
>>> is_approved(ResponseCode.APPROVED), is_approved(ResponseCode.INCORRECT_PIN)
(True, False)
>>> describe(ResponseCode.ISSUER_TIMEOUT).should_reverse
True
>>> lookup("a0")
<ResponseCode.MAC_ERROR: 'A0'>
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ResponseCode(StrEnum):
    """Field 39 codes autosettle answers with or understands (value = the two characters)."""

    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    INVALID_MERCHANT = "03"
    PICK_UP_CARD = "04"
    DO_NOT_HONOUR = "05"
    ERROR = "06"  # also the reason code a terminal puts in a reversal for "other" causes
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    NO_SUCH_ISSUER = "15"
    OPERATION_ERROR = "22"
    ORIGINAL_NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    SUSPECTED_FRAUD_PICK_UP = "34"
    PIN_TRIES_EXCEEDED_AT_ISSUER = "38"
    FUNCTION_NOT_SUPPORTED = "40"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    NOT_PERMITTED_TO_TERMINAL = "58"
    CARD_VERIFICATION_ERROR = "59"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    AMOUNT_MISMATCH = "64"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    RESPONSE_TOO_LATE = "68"
    PIN_TRIES_EXCEEDED = "75"
    CUTOFF_IN_PROGRESS = "90"
    ISSUER_UNAVAILABLE = "91"
    ROUTING_UNAVAILABLE = "92"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"
    TERMINAL_NOT_REGISTERED = "97"
    ISSUER_TIMEOUT = "98"
    PIN_FORMAT_ERROR = "99"
    MAC_ERROR = "A0"


class TerminalAction(StrEnum):
    """What the terminal (and the cashier) does after receiving a code."""

    COMPLETE = "complete"
    """Approved: print the receipt, delete the stored reversal record."""
    DECLINE = "decline"
    """Final for this request: retrying it unchanged gives the same answer."""
    RETRY = "retry"
    """Transient fault on the way; nothing moved. The same request may be sent again later."""
    SIGN_ON = "sign_on"
    """The session keys are bad: sign on again (签到) for new working keys, then retry."""
    REVERSE = "reverse"
    """The issuer's outcome is unknown: send a reversal (冲正) of the original, then retry."""


@dataclass(frozen=True, slots=True)
class ResponseText:
    """One row of the response-code table."""

    code: ResponseCode
    english: str
    chinese: str
    action: TerminalAction

    @property
    def approved(self) -> bool:
        """True when the code approves the transaction (only ``00`` in this table)."""
        return self.action is TerminalAction.COMPLETE

    @property
    def should_reverse(self) -> bool:
        """True when the terminal must reverse the original because money may have moved."""
        return self.action is TerminalAction.REVERSE

    @property
    def may_retry(self) -> bool:
        """True when the same request may be sent again (after a sign-on or reversal)."""
        return self.action in _RETRYABLE


_RETRYABLE: Final = frozenset(
    {TerminalAction.RETRY, TerminalAction.SIGN_ON, TerminalAction.REVERSE}
)

_C, _D, _R, _S, _V = (
    TerminalAction.COMPLETE,
    TerminalAction.DECLINE,
    TerminalAction.RETRY,
    TerminalAction.SIGN_ON,
    TerminalAction.REVERSE,
)
_RC = ResponseCode

# Why these actions: 68 and 98 mean the switch got no (timely) answer from the issuer, so the
# card may have been charged; CUP terminals reverse then. 30, 90, 91, 92, 94 and 96 are faults
# on the way that moved nothing. 99 and A0 mean the working keys disagree: sign on again.
# Everything else is the issuer's or the acquirer's final word on this request.
_ROWS: Final[tuple[tuple[ResponseCode, str, str, TerminalAction], ...]] = (
    (_RC.APPROVED, "Approved", "交易成功", _C),
    (_RC.REFER_TO_ISSUER, "Refer to card issuer", "请持卡人与发卡银行联系", _D),
    (_RC.INVALID_MERCHANT, "Invalid merchant", "无效商户", _D),
    (_RC.PICK_UP_CARD, "Pick up card", "此卡被没收", _D),
    (_RC.DO_NOT_HONOUR, "Do not honour", "持卡人认证失败", _D),
    (_RC.ERROR, "Error", "出错", _D),
    (_RC.INVALID_TRANSACTION, "Invalid transaction", "无效交易", _D),
    (_RC.INVALID_AMOUNT, "Invalid amount", "无效金额", _D),
    (_RC.INVALID_CARD_NUMBER, "Invalid card number", "无效卡号", _D),
    (_RC.NO_SUCH_ISSUER, "No such issuer", "此卡无对应发卡方", _D),
    (_RC.OPERATION_ERROR, "Operation error or allowed period exceeded",
     "操作有误,或超出交易允许天数", _D),
    (_RC.ORIGINAL_NOT_FOUND, "Original transaction not found, contact issuer",
     "没有原始交易,请联系发卡方", _D),
    (_RC.FORMAT_ERROR, "Format error, please retry", "请重试", _R),
    (_RC.SUSPECTED_FRAUD_PICK_UP, "Suspected fraud, pick up card", "作弊卡,吞卡", _D),
    (_RC.PIN_TRIES_EXCEEDED_AT_ISSUER, "PIN tries exceeded, contact issuer",
     "密码错误次数超限,请与发卡方联系", _D),
    (_RC.FUNCTION_NOT_SUPPORTED, "Transaction not supported by issuer",
     "发卡方不支持的交易类型", _D),
    (_RC.LOST_CARD, "Lost card, pick up", "挂失卡,请没收", _D),
    (_RC.STOLEN_CARD, "Stolen card, pick up", "被窃卡,请没收", _D),
    (_RC.INSUFFICIENT_FUNDS, "Insufficient funds", "可用余额不足", _D),
    (_RC.EXPIRED_CARD, "Expired card", "该卡已过期", _D),
    (_RC.INCORRECT_PIN, "Incorrect PIN", "密码错", _D),
    (_RC.NOT_PERMITTED_TO_CARDHOLDER, "Transaction not permitted to card",
     "不允许此卡交易", _D),
    (_RC.NOT_PERMITTED_TO_TERMINAL, "Transaction not permitted on this terminal",
     "发卡方不允许该卡在本终端进行此交易", _D),
    (_RC.CARD_VERIFICATION_ERROR, "Card verification error", "卡片校验错", _D),
    (_RC.EXCEEDS_AMOUNT_LIMIT, "Exceeds amount limit", "交易金额超限", _D),
    (_RC.RESTRICTED_CARD, "Restricted card", "受限制的卡", _D),
    (_RC.AMOUNT_MISMATCH, "Amount differs from original", "交易金额与原交易不匹配", _D),
    (_RC.EXCEEDS_FREQUENCY_LIMIT, "Exceeds frequency limit", "超出消费次数限制", _D),
    (_RC.RESPONSE_TOO_LATE, "Response received too late, please retry",
     "交易超时,请重试", _V),
    (_RC.PIN_TRIES_EXCEEDED, "PIN tries exceeded", "密码错误次数超限", _D),
    (_RC.CUTOFF_IN_PROGRESS, "Cut-off in progress, retry later", "系统日切,请稍后重试", _R),
    (_RC.ISSUER_UNAVAILABLE, "Issuer unavailable, retry later",
     "发卡方状态不正常,请稍后重试", _R),
    (_RC.ROUTING_UNAVAILABLE, "Issuer unreachable, retry later",
     "发卡方线路异常,请稍后重试", _R),
    (_RC.DUPLICATE_TRANSMISSION, "Duplicate transmission, retry later",
     "拒绝,重复交易,请稍后重试", _R),
    (_RC.SYSTEM_MALFUNCTION, "System malfunction, retry later",
     "拒绝,交换中心异常,请稍后重试", _R),
    (_RC.TERMINAL_NOT_REGISTERED, "Terminal not registered", "终端未登记", _D),
    (_RC.ISSUER_TIMEOUT, "Issuer timed out", "发卡方超时", _V),
    (_RC.PIN_FORMAT_ERROR, "PIN format error, sign on again", "PIN格式错,请重新签到", _S),
    (_RC.MAC_ERROR, "MAC error, sign on again", "MAC校验错,请重新签到", _S),
)

RESPONSE_TABLE: Final[Mapping[ResponseCode, ResponseText]] = MappingProxyType(
    {code: ResponseText(code, en, zh, action) for code, en, zh, action in _ROWS}
)
"""Every response code with its texts and terminal action (a test proves it is complete)."""


def describe(code: ResponseCode) -> ResponseText:
    """The texts and the terminal action for ``code``.

    >>> describe(ResponseCode.MAC_ERROR).chinese
    'MAC校验错,请重新签到'
    """
    return RESPONSE_TABLE[code]


def is_approved(code: ResponseCode) -> bool:
    """True when ``code`` approves the transaction."""
    return RESPONSE_TABLE[code].approved


def lookup(field39: str) -> ResponseCode | None:
    """The code for a received field 39 (case-insensitive), or None when it is not ours.

    >>> lookup("51")
    <ResponseCode.INSUFFICIENT_FUNDS: '51'>
    >>> lookup("Z9") is None
    True
    """
    try:
        return ResponseCode(field39.strip().upper())
    except ValueError:
        return None
