"""Slip layouts, pure: widths, masking, every type and code named, copies, duplicates."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.transactions import TxnType
from autosettle.printing import layout, slips
from autosettle.printing.layout import display_width, wrap
from autosettle.printing.slips import CopyKind, ReceiptData, SettlementData, TypeTotal

SALE = ReceiptData(
    merchant_name="华联超市 Hualian Supermarket", merchant_id="898310054110001",
    terminal_id="HL000001", txn_type="sale", amount_minor=123456, currency="CNY",
    at_utc="2026-09-18T02:00:00+00:00", batch_no="000001", trace="000123",
    rrn="123456789012", reference="t0123456789abcdef", approved=True,
    pan_masked="622202*********0014", card_brand="unionpay", card_kind="debit",
    issuer="Industrial and Commercial Bank of China", auth_code="A1B2C3")
SETTLEMENT = SettlementData(
    merchant_name="华联超市", merchant_id="898310054110001", terminal_id="HL000001",
    batch_no="000007", at_utc="2026-09-18T15:00:00+00:00", currency="CNY",
    totals=(TypeTotal("sale", 3, 3600), TypeTotal("refund", 1, 500),
            TypeTotal("completion", 2, 1_000_000)),
    domestic_balanced=True, foreign_balanced=True)
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
texts = st.text(st.sampled_from("ab 1.中文消费撤销,-_/()" + "Ｗ"), max_size=80)


def text_of(slip: layout.Slip) -> str:
    return layout.as_text(slip)


def test_a_chinese_character_takes_two_columns() -> None:
    assert display_width("消费 SALE") == 9
    assert display_width("ＲＭＢ") == 6  # full-width Latin too
    assert layout.pad_between("金额", "RMB 1.00", 20) == "金额" + " " * 8 + "RMB 1.00"


@given(texts, st.sampled_from([10, 32, 48]))
def test_wrapped_lines_never_exceed_the_width(text: str, cols: int) -> None:
    lines = wrap(text, cols)
    assert all(display_width(line) <= cols for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost


@given(st.sampled_from(list(TxnType)), st.booleans(), st.sampled_from(list(CopyKind)),
       st.booleans(), st.integers(0, 10**12), st.text(max_size=60),
       st.sampled_from(list(ResponseCode)), st.sampled_from([32, 48]), st.booleans())
def test_no_line_of_any_slip_is_wider_than_the_paper(
        txn_type: TxnType, approved: bool, copy: CopyKind, duplicate: bool, amount: int,
        name: str, code: ResponseCode, cols: int, chinese: bool) -> None:
    data = replace(SALE, txn_type=txn_type.value, approved=approved, amount_minor=amount,
                   merchant_name=name or "x", response_code=code.value,
                   original_trace="000122")
    slip = slips.render(data, cols, copy, duplicate, chinese)
    assert slips.widest_line(slip) <= cols
    assert slips.widest_line(slips.settlement_slip(SETTLEMENT, cols, duplicate, chinese)) <= cols


@given(st.text(st.sampled_from("0123456789* -"), max_size=25))
def test_mask_pan_never_shows_more_than_first_6_and_last_4_digits(value: str) -> None:
    shown = slips.mask_pan(value)
    assert sum(ch.isdigit() for ch in shown) <= 10
    assert len(shown) == len(value)


def test_a_full_card_number_given_to_a_slip_is_masked() -> None:
    pan = "6222020000004242421"
    slip = slips.receipt_slip(replace(SALE, pan_masked=pan), 32)
    assert pan not in text_of(slip)
    assert "622202*********2421" in text_of(slip)


def test_every_transaction_type_has_its_slip_name() -> None:
    assert set(slips.TYPE_LABELS) == set(TxnType)
    names = {t: slips.type_label(t.value) for t in TxnType}
    assert names[TxnType.SALE] == "消费 SALE"
    assert names[TxnType.VOID] == "撤销 VOID"
    assert names[TxnType.REFUND] == "退货 REFUND"
    assert names[TxnType.PREAUTH] == "预授权 AUTH"
    assert names[TxnType.COMPLETION] == "预授权完成 AUTH COMPLETE"


def test_every_response_code_has_a_reason_and_something_to_do() -> None:
    for code in ResponseCode:
        reason_zh, reason_en, todo_zh, todo_en = slips.advice(code.value)
        assert reason_zh and reason_en
        if code is not ResponseCode.APPROVED:
            assert todo_zh and todo_en, code


def test_the_sales_slip_shows_what_a_cup_slip_shows() -> None:
    text = text_of(slips.receipt_slip(SALE, 48, CopyKind.MERCHANT))
    for expected in ("银联POS签购单", "POS SALES SLIP", "商户存根 MERCHANT COPY",
                     "898310054110001", "HL000001", "622202*********0014", "借记卡 DEBIT",
                     "消费 SALE", "000001", "000123", "A1B2C3", "123456789012",
                     "2026-09-18 10:00:00",  # 02:00 UTC in Asia/Shanghai
                     "RMB 1234.56", "持卡人签名 CARDHOLDER SIGNATURE",
                     "Industrial and Commercial Bank of China", "[QR t0123456789abcdef]"):
        assert expected in text, expected
    assert "重打印" not in text


def test_copies_duplicates_and_pin() -> None:
    holder = text_of(slips.receipt_slip(replace(SALE, pin_verified=True), 32,
                                        CopyKind.CARDHOLDER, duplicate=True))
    assert "持卡人存根 CARDHOLDER COPY" in holder
    assert "重打印 DUPLICATE" in holder
    assert "密码验证,免签名" in holder and "SIGNATURE:" not in holder
    bank = text_of(slips.receipt_slip(SALE, 32, CopyKind.BANK))
    assert "银行存根 BANK COPY" in bank


def test_a_refund_shows_a_negative_amount_and_the_original_trace() -> None:
    refund = replace(SALE, txn_type="refund", amount_minor=500, original_trace="000100",
                     original_rrn="999999999999")
    text = text_of(slips.receipt_slip(refund, 48))
    assert "退货 REFUND" in text and "RMB -5.00" in text
    assert "原凭证号 ORIG. VOUCHER:" in text and "000100" in text
    assert "000100" not in text_of(slips.receipt_slip(replace(refund, txn_type="sale"), 48))


def test_a_decline_says_the_code_the_reason_and_what_to_do() -> None:
    declined = replace(SALE, approved=False, response_code="51", auth_code=None)
    text = text_of(slips.render(declined, 32))
    for expected in ("交易失败", "51", "可用余额不足", "Insufficient funds",
                     "请持卡人换卡或联系发卡行", "本交易未扣款"):
        assert expected in text, expected


def test_the_settlement_slip_counts_per_type_and_says_whether_it_balanced() -> None:
    text = text_of(slips.settlement_slip(SETTLEMENT, 32))
    assert "结算总计单" in text and "000007" in text
    assert re.search(r"消费 SALE +3 +RMB 36\.00", text)
    assert re.search(r"退货 REFUND +1 +RMB -5\.00", text)
    assert "预授权完成 AUTH COMPLETE" in text and "RMB 10000.00" in text
    assert "对账平 BALANCED" in text and "不平" not in text
    unbalanced = text_of(slips.settlement_slip(replace(SETTLEMENT, foreign_balanced=False), 48))
    assert "对账不平 NOT BALANCED" in unbalanced


def test_english_only_for_a_printer_without_chinese() -> None:
    for slip in (slips.receipt_slip(SALE, 32, chinese=False),
                 slips.settlement_slip(SETTLEMENT, 48, chinese=False),
                 slips.render(replace(SALE, approved=False, response_code="55"), 32,
                              chinese=False)):
        text = text_of(slip).replace("华联超市", "")  # the merchant's own name stays
        assert not CJK.search(text), text


def test_slip_data_round_trips_through_json() -> None:
    test_page = slips.CheckPageData("p1", "network", "10.0.0.5", SALE.at_utc, ("x",))
    for data in (SALE, SETTLEMENT, test_page):
        assert slips.slip_data_from_json(data.to_json()) == data


def test_a_width_other_than_58_or_80_mm_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        slips.receipt_slip(SALE, 40)
