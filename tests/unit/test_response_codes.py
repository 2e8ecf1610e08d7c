"""The field 39 response-code table: complete, both texts, consistent terminal actions."""

from __future__ import annotations

import doctest
import re

import pytest

from autosettle.domain import response_codes
from autosettle.domain.response_codes import (
    RESPONSE_TABLE,
    ResponseCode,
    TerminalAction,
    describe,
    is_approved,
    lookup,
)

# The codes issue 3 and domain.md §2 require, plus 06 (a terminal's "other" reversal reason).
REQUIRED = [
    "00", "01", "03", "04", "05", "06", "12", "13", "14", "15", "22", "25", "30", "34", "38",
    "40", "41", "43", "51", "54", "55", "57", "58", "59", "61", "62", "64", "65", "68", "75",
    "90", "91", "92", "94", "96", "97", "98", "99", "A0",
]

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_required_code_is_a_member() -> None:
    assert sorted(code.value for code in ResponseCode) == sorted(REQUIRED)


def test_table_is_complete_and_keyed_by_its_own_code() -> None:
    assert set(RESPONSE_TABLE) == set(ResponseCode)
    for code, row in RESPONSE_TABLE.items():
        assert row.code is code


@pytest.mark.parametrize("code", list(ResponseCode))
def test_every_code_has_english_and_chinese_text(code: ResponseCode) -> None:
    row = describe(code)
    assert row.english.strip()
    assert row.english.isascii()
    assert CJK.search(row.chinese), f"{code} has no Chinese text"
    assert len(code.value) == 2
    assert code.value.isalnum()
    assert code.value == code.value.upper()


def test_only_00_is_an_approval() -> None:
    approvals = [code for code in ResponseCode if is_approved(code)]
    assert approvals == [ResponseCode.APPROVED]
    assert describe(ResponseCode.APPROVED).action is TerminalAction.COMPLETE


@pytest.mark.parametrize(
    ("code", "chinese"),
    [
        ("00", "交易成功"),
        ("51", "余额不足"),
        ("55", "密码错"),
        ("75", "密码错误次数超限"),
        ("A0", "校验错,请重新签到"),
        ("90", "日切"),
        ("25", "原始交易"),
    ],
)
def test_usual_cup_wording(code: str, chinese: str) -> None:
    assert chinese in describe(ResponseCode(code)).chinese


def test_incorrect_pin_is_exactly_the_terminal_text() -> None:
    assert describe(ResponseCode.INCORRECT_PIN).chinese == "密码错"
    assert describe(ResponseCode.PIN_TRIES_EXCEEDED).chinese == "密码错误次数超限"


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (ResponseCode.ISSUER_TIMEOUT, TerminalAction.REVERSE),
        (ResponseCode.RESPONSE_TOO_LATE, TerminalAction.REVERSE),
        (ResponseCode.MAC_ERROR, TerminalAction.SIGN_ON),
        (ResponseCode.PIN_FORMAT_ERROR, TerminalAction.SIGN_ON),
        (ResponseCode.SYSTEM_MALFUNCTION, TerminalAction.RETRY),
        (ResponseCode.CUTOFF_IN_PROGRESS, TerminalAction.RETRY),
        (ResponseCode.INSUFFICIENT_FUNDS, TerminalAction.DECLINE),
        (ResponseCode.INCORRECT_PIN, TerminalAction.DECLINE),
        (ResponseCode.LOST_CARD, TerminalAction.DECLINE),
    ],
)
def test_terminal_actions(code: ResponseCode, action: TerminalAction) -> None:
    assert describe(code).action is action


@pytest.mark.parametrize("code", list(ResponseCode))
def test_flags_follow_the_action(code: ResponseCode) -> None:
    row = describe(code)
    assert row.should_reverse == (row.action is TerminalAction.REVERSE)
    assert row.may_retry == (row.action not in {TerminalAction.COMPLETE, TerminalAction.DECLINE})
    assert not (row.approved and (row.may_retry or row.should_reverse))


def test_lookup_reads_field_39() -> None:
    for code in ResponseCode:
        assert lookup(code.value) is code
    assert lookup("a0") is ResponseCode.MAC_ERROR
    assert lookup(" 00 ") is ResponseCode.APPROVED
    assert lookup("Z9") is None
    assert lookup("") is None


def test_docstring_examples_run() -> None:
    assert doctest.testmod(response_codes).failed == 0
