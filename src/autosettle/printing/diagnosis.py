"""``autosettle printers check``: the source document's printer troubleshooting, in order.

The document (printer section, "无法连接打印机"): check the printer settings — the right
interface chosen, the printer working, restart it; check the cable — USB firmly plugged,
parallel power and data lines; update the driver. As steps a machine can take:

1. **interface** — is the interface configured one we drive, and does the address suit
   it (a device path on a "network" printer is the wrong interface)? is the driver
   (libusb for USB, pyserial for serial) installed?
2. **reachable** — does the address answer (TCP connection, USB device present, device
   node writable)? A refused connection: printer off or wrong port; no answer: cable,
   network or IP address.
3. **status** — does the printer answer the real-time status query (``DLE EOT``)?
4. **paper** — is there paper (paper end / near end)?
5. **cover** — is the cover closed, and no error (cutter jam, overheating)?
6. **test page** — print one; the status after it must still be ready.

The walk stops at the first failed step (the later ones cannot be judged) and says, in
Chinese and English, what is wrong and what to do. Steps that do not apply to an
interface (status of a file printer) pass with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from autosettle.printing import devices, escpos_out, slips
from autosettle.printing.devices import Fault, Interface, PrinterError


class StepName(StrEnum):
    INTERFACE = "interface"
    REACHABLE = "reachable"
    STATUS = "status"
    PAPER = "paper"
    COVER = "cover"
    TEST_PAGE = "test_page"


STEP_TITLES: Final[Mapping[StepName, tuple[str, str]]] = MappingProxyType({
    StepName.INTERFACE: ("打印接口与驱动", "interface and driver"),
    StepName.REACHABLE: ("连接线路/网络", "cable or network connection"),
    StepName.STATUS: ("打印机应答", "printer answers the status query"),
    StepName.PAPER: ("纸卷", "paper"),
    StepName.COVER: ("纸仓盖与故障", "cover closed, no error"),
    StepName.TEST_PAGE: ("打印测试页", "test page"),
})


class Outcome(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    NOT_RUN = "not_run"


@dataclass(frozen=True, slots=True)
class Advice:
    """What is wrong and what to do, in both languages."""

    problem_zh: str
    problem_en: str
    todo_zh: str
    todo_en: str


ADVICE: Final[Mapping[Fault, Advice]] = MappingProxyType({
    Fault.BAD_ADDRESS: Advice(
        "打印接口或地址配置错误", "the interface or address is configured wrong",
        "在打印机配置中选择正确的接口(网络/USB/串口/并口)并填写对应地址",
        "choose the printer's real interface (network/USB/serial/parallel) and its address"),
    Fault.DRIVER_MISSING: Advice(
        "缺少打印机驱动程序", "the driver for this interface is missing",
        "安装驱动(USB: libusb-1.0;串口: pyserial)后重试",
        "install the driver (USB: libusb-1.0; serial: pyserial), then check again"),
    Fault.UNREACHABLE: Advice(
        "无法连接打印机", "the printer cannot be reached",
        "检查连接线是否插紧、网线/USB线有无松动,确认打印机IP地址或设备正确",
        "check the cable is firmly plugged in (network/USB/parallel) and the IP address "
        "or device is right"),
    Fault.REFUSED: Advice(
        "打印机拒绝连接", "the printer refused the connection",
        "确认打印机已开机、端口号正确(网络打印机通常为9100),可尝试重启打印机",
        "make sure the printer is switched on and the port is right (9100 for most network"
        " printers); try restarting it"),
    Fault.NO_ANSWER: Advice(
        "打印机无应答", "the printer does not answer",
        "重新启动打印机;若仍无应答,请更新打印机固件/驱动",
        "restart the printer; if it still does not answer, update its firmware or driver"),
    Fault.OFFLINE: Advice(
        "打印机处于离线状态", "the printer is offline",
        "按打印机的进纸/联机键或重启打印机", "press the printer's feed/online key or restart it"),
    Fault.PAPER_END: Advice(
        "打印机缺纸", "the printer is out of paper",
        "装入新的热敏纸卷并合上纸仓盖", "load a new thermal paper roll and close the cover"),
    Fault.COVER_OPEN: Advice(
        "打印机纸仓盖未关", "the printer's cover is open",
        "合上打印机纸仓盖", "close the printer's cover"),
    Fault.PRINTER_ERROR: Advice(
        "打印机故障(切刀卡纸或过热)", "the printer reports an error (cutter jam or overheating)",
        "关闭打印机,清除卡纸,待冷却后重新开机", "switch it off, clear the jam, let it cool, "
        "switch it on again"),
    Fault.DISCONNECTED: Advice(
        "打印中连接断开", "the connection dropped",
        "检查线路是否松动,重启打印机后重试", "check the cable, restart the printer, check again"),
})
"""Every fault with its message (a test proves the table is complete)."""

PAPER_NEAR_END = Advice("纸卷即将用完", "the paper roll is nearly finished",
                        "请准备更换纸卷", "have a new roll ready")


@dataclass(frozen=True, slots=True)
class Step:
    """One troubleshooting step and what it found."""

    name: StepName
    outcome: Outcome
    detail: str = ""
    advice: Advice | None = None

    @property
    def title_zh(self) -> str:
        return STEP_TITLES[self.name][0]

    @property
    def title_en(self) -> str:
        return STEP_TITLES[self.name][1]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The walk through the steps: ok when every step passed."""

    printer_name: str
    interface: str
    address: str
    steps: tuple[Step, ...]

    @property
    def ok(self) -> bool:
        return all(step.outcome in (Outcome.OK, Outcome.WARNING) for step in self.steps)

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.outcome is Outcome.FAILED), None)


@dataclass(frozen=True, slots=True)
class PrinterTarget:
    """The printer to check: what its profile says."""

    name: str
    interface: str
    address: str
    width_cols: int
    encoding: str


def _fail(step: StepName, error: PrinterError) -> Step:
    return Step(step, Outcome.FAILED, error.detail, ADVICE[error.fault])


def diagnose(target: PrinterTarget, now: datetime, print_test_page: bool = True,
             timeout_s: float = devices.IO_TIMEOUT_S) -> Diagnosis:
    """Walk the steps for ``target`` (see the module docstring)."""
    steps: list[Step] = []

    def finish() -> Diagnosis:
        done = {s.name for s in steps}
        rest = tuple(Step(n, Outcome.NOT_RUN) for n in StepName if n not in done)
        return Diagnosis(target.name, target.interface, target.address, tuple(steps) + rest)

    try:
        address = devices.parse_address(target.interface, target.address)
    except ValueError as exc:
        steps.append(Step(StepName.INTERFACE, Outcome.FAILED, str(exc),
                          ADVICE[Fault.BAD_ADDRESS]))
        return finish()
    problem = devices.driver_problem(address)
    if problem:
        steps.append(Step(StepName.INTERFACE, Outcome.FAILED, problem,
                          ADVICE[Fault.DRIVER_MISSING]))
        return finish()
    steps.append(Step(StepName.INTERFACE, Outcome.OK, f"{target.interface} {target.address}"))
    try:
        devices.reachable(address, timeout_s)
    except PrinterError as exc:
        steps.append(_fail(StepName.REACHABLE, exc))
        return finish()
    steps.append(Step(StepName.REACHABLE, Outcome.OK))
    try:
        connection = devices.connect(address, timeout_s)
    except PrinterError as exc:
        steps.append(_fail(StepName.REACHABLE, exc))
        return finish()
    try:
        _walk_status(steps, connection, target, now, print_test_page)
    finally:
        connection.close()
    return finish()


def _walk_status(steps: list[Step], connection: devices.Connection, target: PrinterTarget,
                 now: datetime, print_test_page: bool) -> None:
    has_status = connection.address.interface not in (Interface.FILE, Interface.PARALLEL)
    try:
        status = connection.status()
    except PrinterError as exc:
        steps.append(_fail(StepName.STATUS, exc))
        return
    steps.append(Step(StepName.STATUS, Outcome.OK,
                      "online" if has_status else "no status on this interface"))
    if status.paper_end:
        steps.append(Step(StepName.PAPER, Outcome.FAILED, "paper end sensor",
                          ADVICE[Fault.PAPER_END]))
        return
    steps.append(Step(StepName.PAPER, Outcome.WARNING, "paper near end", PAPER_NEAR_END)
                 if status.paper_near_end else Step(StepName.PAPER, Outcome.OK))
    fault = status.fault()
    if fault is not None:
        steps.append(Step(StepName.COVER, Outcome.FAILED, fault.value, ADVICE[fault]))
        return
    steps.append(Step(StepName.COVER, Outcome.OK))
    if not print_test_page:
        return
    page = slips.check_page(slips.CheckPageData(target.name, target.interface, target.address,
                                              now.isoformat()),
                           target.width_cols, escpos_out.is_chinese(target.encoding))
    try:
        connection.send(escpos_out.to_escpos(page, target.encoding))
        after = connection.status()
    except PrinterError as exc:
        steps.append(_fail(StepName.TEST_PAGE, exc))
        return
    fault = after.fault()
    if fault is not None:
        steps.append(Step(StepName.TEST_PAGE, Outcome.FAILED, fault.value, ADVICE[fault]))
        return
    steps.append(Step(StepName.TEST_PAGE, Outcome.OK, "printed"))
