"""Renders the generated sections of docs/terminal-integration.md.

* the message catalogue, from ``autosettle.terminal_host.messages``;
* a worked example of a signed-on sale: fixed test keys, the fixed test clock, a fixed
  RRN and auth code, and the real processor (``Processor.handle``) answering the real
  client's frames. Everything else (PIN block, MAC, field 62) is computed by the code, so
  the bytes in the document are the bytes the host produces.
"""

from __future__ import annotations

from collections.abc import Iterable

import iso8583

from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.frame import LENGTH_PREFIX_SIZE_BYTES, decode_frame
from autosettle.domain.iso8583.message import decode_message
from autosettle.domain.iso8583.spec import CUP_POS_SPEC
from autosettle.services import terminal_keys
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.key_module import (
    GeneratedTmk,
    IssuedKeys,
    KeyComponent,
    KeyRole,
    SealedKey,
    SoftwareHsm,
)
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import Outgoing, TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import (
    FINANCIAL,
    MAC_IF_PRESENT,
    MAC_REQUIRED,
    MANDATORY,
    RESPONSE_MTI,
    MessageKind,
)
from autosettle.terminal_host.processor import Processor

# Test keys of the example only (odd parity). Never use them anywhere else.
EXAMPLE_TMK_COMPONENTS = tuple(crypto.adjust_odd_parity(bytes.fromhex(c)) for c in (
    "3B5A7C9E1F2D4B6A8C7E5D3F2A1B0C9D", "D4E2F1A3B5C7E9F01234ABCD5678EF01"))
EXAMPLE_PIK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
EXAMPLE_MAK = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")
EXAMPLE_PAN = "6222020200112345679"
EXAMPLE_PIN = "123456"
EXAMPLE_AMOUNT_MINOR = 12_345
EXAMPLE_RRN = "000000000042"
EXAMPLE_AUTH_CODE = 123456

BEGIN_CATALOGUE = "<!-- BEGIN GENERATED: message catalogue -->"
END_CATALOGUE = "<!-- END GENERATED: message catalogue -->"
BEGIN_EXAMPLE = "<!-- BEGIN GENERATED: worked example -->"
END_EXAMPLE = "<!-- END GENERATED: worked example -->"


class ExampleHsm(SoftwareHsm):
    """The software HSM with the example's fixed TMK and working keys."""

    def generate_tmk(self, label: bytes, components: int,
                     transport_key: bytes | None = None) -> GeneratedTmk:
        tmk = crypto.combine_components(list(EXAMPLE_TMK_COMPONENTS))
        return GeneratedTmk(self._seal(tmk, label), tuple(
            KeyComponent(c.hex().upper(), crypto.key_check_value(c).hex().upper())
            for c in EXAMPLE_TMK_COMPONENTS))

    def issue_working_keys(self, tmk: SealedKey, labels: dict[KeyRole, bytes],
                           double_length: bool, with_tdk: bool) -> IssuedKeys:
        field62 = crypto.build_working_keys_field(self._open(tmk), EXAMPLE_PIK, EXAMPLE_MAK,
                                                  None, True)
        return IssuedKeys(self._seal(EXAMPLE_PIK, labels[KeyRole.PIK]),
                          self._seal(EXAMPLE_MAK, labels[KeyRole.MAK]), None, field62)


def _hex(data: bytes) -> str:
    return " ".join(data[i:i + 1].hex().upper() for i in range(len(data)))


def _wrap(data: bytes, width: int = 32) -> str:
    return "\n".join(_hex(data[i:i + width]) for i in range(0, len(data), width))


def _field_table(payload: bytes) -> list[str]:
    decoded, encoded = iso8583.decode(payload, CUP_POS_SPEC)
    rows = ["| field | meaning | value | wire bytes |", "|---|---|---|---|"]
    for key, parts in encoded.items():
        label = {"t": "MTI", "p": "bitmap"}.get(key, key)
        value = decoded[key]
        if key == "p":
            value = ", ".join(k for k in encoded if k not in ("t", "p"))
            value = f"fields {value}"
        wire = (f"`{_hex(parts['len'])}` " if parts["len"] else "") + f"`{_hex(parts['data'])}`"
        rows.append(f"| {label} | {CUP_POS_SPEC[key]['desc']} | `{value}` | {wire} |")
    return rows


def _frame_parts(wire: bytes) -> list[str]:
    frame = decode_frame(wire)
    return ["```text",
            f"length   {_hex(wire[:LENGTH_PREFIX_SIZE_BYTES])}",
            f"TPDU     {_hex(frame.tpdu.to_bytes())}",
            f"header   {_hex(frame.header.to_bytes())}",
            "payload",
            _wrap(frame.payload),
            "```"]


def _xor_blocks(data: bytes) -> bytes:
    padded = data + bytes(-len(data) % 8)
    result = bytes(8)
    for start in range(0, len(padded), 8):
        result = bytes(a ^ b for a, b in zip(result, padded[start:start + 8], strict=True))
    return result


def render_catalogue() -> str:
    lines = [BEGIN_CATALOGUE, "",
             "| message | request MTI | answer MTI | 3 | 25 | 60.1 | mandatory fields | MAC |",
             "|---|---|---|---|---|---|---|---|"]

    def fields(kind: MessageKind) -> str:
        return ", ".join(sorted(MANDATORY[kind], key=int))

    def mac(kind: MessageKind) -> str:
        return "required" if kind in MAC_REQUIRED else (
            "required¹" if kind in MAC_IF_PRESENT else "none")

    for spec in FINANCIAL:
        card = " + card (2 or 35)" if spec.needs_card else ""
        lines.append(f"| {spec.kind.value} | {spec.mti} | {RESPONSE_MTI[spec.mti]} | "
                     f"{spec.processing_code} | {spec.condition_code} | "
                     f"{spec.type_code.value} | {fields(spec.kind)}{card} | "
                     f"{mac(spec.kind)} |")
    others: Iterable[tuple[MessageKind, str, str]] = (
        (MessageKind.REVERSAL, "0400 / 0420", "60.1 of the reversed message, 60.3 `000`"),
        (MessageKind.SIGN_ON, "0800", "60.3 `001` / `003` / `004`"),
        (MessageKind.SIGN_OFF, "0820", "60.3 `002`"),
        (MessageKind.ECHO, "0820", "60.3 `301`"),
        (MessageKind.SETTLEMENT, "0500", "60.3 `201`"),
        (MessageKind.BATCH_UPLOAD, "0320", "60.3 `201`"),
        (MessageKind.BATCH_UPLOAD_END, "0320", "60.3 `202` or `207`"),
    )
    for kind, mti, sixty in others:
        answer = " / ".join(RESPONSE_MTI[m.strip()] for m in mti.split("/"))
        lines.append(f"| {kind.value} | {mti} | {answer} | | | {sixty} | {fields(kind)} | "
                     f"{mac(kind)} |")
    lines += ["", END_CATALOGUE]
    return "\n".join(lines)


def render_example(ctx: ServiceContext, sim: IssuerSimulator) -> str:
    """Provision, sign on and sell through the real processor; render every byte."""
    sim.add_card(EXAMPLE_PAN, balance_minor=1_000_000, pin=EXAMPLE_PIN)
    hsm = ExampleHsm(ctx.sealer)
    made = terminal_keys.provision_terminal(ctx, SYSTEM, "898310054110001", "HL000001",
                                            hsm=hsm)
    tmk = made.tmk()
    processor = Processor(ctx, hsm)
    pos = TerminalClient(TerminalProfile("898310054110001", "HL000001", tmk))

    def exchange(outgoing: Outgoing) -> tuple[bytes, bytes]:
        request = pos.encode(outgoing)
        frame = decode_frame(request)
        answer = processor.handle(frame, decode_message(frame.payload))
        assert answer is not None
        pos.accept(outgoing, answer)
        return request, answer

    sign_on_request, sign_on_answer = exchange(pos.prepare_sign_on())
    assert pos.keys is not None and pos.keys.mak == EXAMPLE_MAK
    sale = pos.prepare(MessageKind.SALE, pan=EXAMPLE_PAN, amount_minor=EXAMPLE_AMOUNT_MINOR,
                       pin=EXAMPLE_PIN)
    sale_request, sale_answer = exchange(sale)
    request_msg = decode_message(decode_frame(sale_request).payload)
    answer_msg = decode_message(decode_frame(sale_answer).payload)
    assert answer_msg.fields["39"] == "00"
    field62 = bytes.fromhex(decode_message(decode_frame(sign_on_answer).payload).fields["62"])
    clear_pin = crypto.pin_block_iso0(EXAMPLE_PIN, EXAMPLE_PAN)
    xored = _xor_blocks(request_msg.mac_data)
    ascii_hex = xored.hex().upper().encode()
    first = crypto.des_ecb_encrypt(EXAMPLE_MAK, ascii_hex[:8])
    second = crypto.des_ecb_encrypt(
        EXAMPLE_MAK, bytes(a ^ b for a, b in zip(first, ascii_hex[8:], strict=True)))
    kcv = crypto.key_check_value

    out = [BEGIN_EXAMPLE, "",
           "Generated by `tests/terminal_host/test_docs.py` from the code: the test keys "
           "below, the test clock (2026-09-18 10:00 Beijing time), the issuer simulator, "
           f"RRN `{EXAMPLE_RRN}` and auth code `{EXAMPLE_AUTH_CODE}` fixed for the example. "
           "**Test keys only.**", "",
           "**Keys.**", "",
           "| key | value (clear) | check value |", "|---|---|---|",
           *(f"| TMK component {n} | `{c.value_hex}` | `{c.kcv}` |"
             for n, c in enumerate(made.components, 1)),
           f"| TMK (components XOR, odd parity) | `{tmk.hex().upper()}` | `{made.tmk_kcv}` |",
           f"| PIK (sign-on) | `{EXAMPLE_PIK.hex().upper()}` | "
           f"`{kcv(EXAMPLE_PIK).hex().upper()}` |",
           f"| MAK (sign-on) | `{EXAMPLE_MAK.hex().upper()}` | "
           f"`{kcv(EXAMPLE_MAK).hex().upper()}` |", "",
           "**1. Sign-on request (0800, 60.3 `003`: double-length keys).**", "",
           *_frame_parts(sign_on_request), "",
           *_field_table(decode_frame(sign_on_request).payload), "",
           "**2. Sign-on answer (0810).** The TPDU comes back with source and destination "
           "swapped. Field 62 is the PIK under the TMK, its check value, the MAK under the "
           "TMK, its check value:", "",
           *_frame_parts(sign_on_answer), "",
           "```text",
           f"PIK under TMK  {_hex(field62[0:16])}",
           f"PIK check      {_hex(field62[16:20])}",
           f"MAK under TMK  {_hex(field62[20:36])}",
           f"MAK check      {_hex(field62[36:40])}",
           "```", "",
           *_field_table(decode_frame(sign_on_answer).payload), "",
           f"**3. Sale request (0200)** of {EXAMPLE_AMOUNT_MINOR} fen with PIN "
           f"`{EXAMPLE_PIN}`.", "",
           "PIN block (field 52, ISO 9564 format 0):", "",
           "```text",
           f"PIN field   0{len(EXAMPLE_PIN)}{EXAMPLE_PIN}".ljust(28, "F"),
           f"PAN field   0000{EXAMPLE_PAN[-13:-1]}",
           f"clear block {clear_pin.hex().upper()}",
           f"under PIK   {request_msg.fields['52']}",
           "```", "",
           "MAC (field 64, CUP ECB) over the payload from the MTI to field 63:", "",
           "```text",
           _wrap(request_msg.mac_data),
           f"XOR of the 8-byte blocks      {xored.hex().upper()}",
           f"as 16 hex characters          {xored.hex().upper().encode().hex().upper()}",
           f"first 8 under the MAK         {first.hex().upper()}",
           f"XOR last 8, under the MAK     {second.hex().upper()}",
           f"MAC (first 8 hex characters)  {bytes.fromhex(request_msg.fields['64']).decode()}"
           f" = {request_msg.fields['64']}",
           "```", "",
           *_frame_parts(sale_request), "",
           *_field_table(decode_frame(sale_request).payload), "",
           "**4. Sale answer (0210).**", "",
           *_frame_parts(sale_answer), "",
           *_field_table(decode_frame(sale_answer).payload), "",
           "The answer's field 64 is the MAC of its own MTI-to-field-63 bytes under the same "
           f"MAK: `{answer_msg.fields['64']}`; recomputed from those bytes: "
           f"`{crypto.mac_cup_ecb(EXAMPLE_MAK, answer_msg.mac_data).hex().upper()}`.",
           "", END_EXAMPLE]
    return "\n".join(out)


def replace_section(text: str, begin: str, end: str, section: str) -> str:
    """``text`` with the lines from ``begin`` to ``end`` (inclusive) replaced."""
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + section + text[stop:]
