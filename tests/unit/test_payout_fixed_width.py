"""The fixed-width payout record counts bytes in GB 18030, as bank files do."""

from __future__ import annotations

from datetime import UTC, date, datetime

from autosettle.domain.settlement_records import PayoutRecord
from autosettle.services.payouts import FIXED_WIDTH_RECORD_BYTES, _fit, _fixed_detail

NOW = datetime(2026, 9, 20, tzinfo=UTC)


def payout() -> PayoutRecord:
    return PayoutRecord("a" * 32, "898310054110001", "898310054110001-20260920-T1-01", "acc",
                        107_129, "CNY", "sent", 0, date(2026, 9, 20), "f.csv", None, NOW, NOW)


def test_record_is_200_bytes_with_chinese_names() -> None:
    bank = "中国工商银行股份有限公司上海市分行营业部第一支行"
    holder = "华联超市有限公司 Hualian Supermarket Co., Ltd. 上海分公司"
    record = _fixed_detail(payout(), bank, "6212260200001234567", holder)
    assert len(record) == FIXED_WIDTH_RECORD_BYTES + 1
    assert record.endswith(b"\n")
    text = record.decode("gb18030")
    assert text[81 - 1:96] == "0000000000107129"
    assert record[147:200].decode("gb18030").startswith("华联超市有限公司")


def test_fit_never_splits_a_character() -> None:
    assert _fit("华联", 3) == "华".encode("gb18030") + b" "
    assert _fit("abc", 5) == b"abc  "
