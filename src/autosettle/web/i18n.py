"""Chinese and English for the console, and the formats every page uses: money as
``¥1,234.56``, times in Asia/Shanghai."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from autosettle.domain.calendar import SHANGHAI

LANGUAGES = ("zh", "en")
SYMBOLS = {"CNY": "¥", "HKD": "HK$", "USD": "US$"}

# English text → Chinese. A text missing here shows in English in both languages.
ZH: dict[str, str] = {
    "Dashboard": "概览", "Merchants": "商户", "Merchant": "商户", "Terminals": "终端",
    "Terminal": "终端", "Transactions": "交易", "Transaction": "交易",
    "Settlements": "结算", "Settlement": "结算批次", "Payouts": "出款", "Payout": "出款",
    "Alerts": "告警", "Maintenance": "维护窗口", "Notices": "商户通知", "Calendar": "日历",
    "Jobs": "任务", "Audit log": "审计日志", "Reports": "报表", "Log in": "登录",
    "Log out": "退出", "Username": "用户名", "Password": "密码",
    "Wrong username or password.": "用户名或密码错误。",
    "Too many failed logins: this user is locked until": "登录失败次数过多，该用户锁定至",
    "Search": "查询", "Export CSV": "导出 CSV", "Next page": "下一页", "Reset": "重置",
    "Last 4": "卡号后四位", "Amount": "金额", "RRN": "参考号", "Auth code": "授权码",
    "Trace": "凭证号", "Batch": "批次号", "From": "起始日期", "To": "截止日期",
    "Type": "类型", "Status": "状态", "Time": "时间", "Card": "卡号",
    "Response": "应答", "Response code": "应答码", "What the cashier should do": "收银员处理",
    "Chain": "交易链", "Original": "原交易", "Follow-ups": "后续交易", "None": "无",
    "Today's volume by hour": "今日每小时交易额", "Today's count by hour": "今日每小时笔数",
    "Approval rate": "成功率", "Top decline reasons": "主要拒绝原因",
    "Payouts (last 7 days)": "出款（近 7 天）", "Open alerts": "未处理告警",
    "Silent terminals": "静默终端", "Captured today": "今日交易额",
    "Recent settlements": "最近结算", "Count": "笔数", "Volume": "交易额",
    "Legal name": "法定名称", "Short name": "简称", "MCC": "MCC", "Cycle": "结算周期",
    "Single limit": "单笔限额", "Settlement accounts": "结算账户", "Bank": "开户行",
    "Account": "账号", "Holder": "户名", "Verified": "已核验", "Balances": "余额",
    "Fee schedule": "费率", "Cycle cost comparison (last 30 days)": "结算周期费用对比（近 30 天）",
    "Current cycle": "当前周期", "Model": "型号", "Serial": "序列号",
    "Last sign-on": "最后签到", "Last message": "最后通讯", "Open batch": "当前批次",
    "Software": "软件版本", "Silent": "静默", "Keys": "密钥", "Recent transactions": "最近交易",
    "Date": "日期", "Items": "明细笔数", "Gross": "交易总额", "Fees": "手续费",
    "Surcharge": "加急费", "Debt recovered": "收回欠款", "Debt added": "新增欠款",
    "Net payout": "应付金额", "Expected arrival": "预计到账", "Attempts": "尝试次数",
    "Failure reason": "失败原因", "File": "文件", "Confirm": "确认到账", "Fail": "标记失败",
    "Retry": "重新出款", "Reason": "原因", "Severity": "级别", "Kind": "类别",
    "Message": "内容", "Resolved": "已处理", "Resolve": "处理", "Show resolved": "显示已处理",
    "Starts": "开始", "Ends": "结束", "Note": "说明", "Announce window": "发布维护窗口",
    "Deferred runs": "顺延的任务", "Arrival changes": "到账日期变化", "Was": "原日期",
    "Now": "新日期", "Day": "日期", "Workday": "工作日", "Closure": "休息日",
    "Set override": "设置", "Job": "任务", "Run key": "运行键", "Started": "开始",
    "Finished": "结束", "Owner": "执行者", "Counts": "计数", "Error": "错误",
    "Actor": "操作人", "Action": "操作", "Resource": "对象", "Origin": "来源",
    "Outcome": "结果", "Detail": "详情", "Not found": "未找到",
    "The page or object does not exist, or it is not yours to see.":
        "页面或对象不存在，或您无权查看。",
    "Forbidden": "禁止", "The form expired or was not sent by this console: reload the page "
    "and try again.": "表单已过期或并非由本控制台提交：请刷新页面后重试。",
    "Only operators may do this.": "仅运营人员可执行此操作。",
    "Something is wrong with the input": "输入有误", "Conflict": "冲突",
    "Service unavailable": "服务不可用", "Internal error": "内部错误",
    "Merchant statement": "商户对账单", "Daily transaction summary": "每日交易汇总",
    "Settlement report": "结算报表", "Fee analysis": "手续费分析",
    "Terminal health": "终端健康", "Download": "下载", "Period": "期间",
    "Items of this batch": "批次明细", "Fee": "手续费", "Due": "应结日期",
    "Kind of item": "明细类型",
    "Payouts of this batch": "批次出款", "Signed in as": "当前用户", "Operator": "运营人员",
    "Merchant user": "商户用户", "Language": "语言", "all": "全部", "Apply": "筛选",
    "Business date": "交易日期", "Refunded": "已退款", "Card brand": "卡组织",
    "Entry mode": "输入方式", "Merchant ID": "商户号", "Terminal ID": "终端号",
    "Declined": "拒绝", "transactions": "笔", "Approved": "成功", "no data yet": "暂无数据",
    "A maintenance window defers jobs to its end; merchants see it as a notice.":
        "维护窗口内的任务顺延至窗口结束；商户会收到通知。",
    "Reports will be downloadable here.": "报表将可在此下载。",
    # printers (web/pages_printing.py)
    "Printers": "打印机", "Printer": "打印机", "Interface": "接口", "Address": "地址",
    "Width": "纸宽(列)", "Encoding": "编码", "Copies": "联数", "Enabled": "启用",
    "yes": "是", "no": "否", "Pending": "待打印", "Stuck": "卡住", "Last printed": "最后打印",
    "Check the printer": "打印机检测", "Print a test page": "打印测试页", "Check": "检测",
    "The printer is ready.": "打印机正常。", "The printer is not ready.": "打印机异常。",
    "Step": "步骤", "Result": "结果", "What is wrong": "问题", "What to do": "处理方法",
    "ok": "通过", "warning": "提醒", "failed": "失败", "not_run": "未执行",
    "Reprint": "重打印", "Reprint the last slip": "重打印最后一张",
    "Reprint by trace": "按凭证号重打印", "Reprint by RRN": "按参考号重打印",
    "Pending jobs": "待打印任务", "Next attempt": "下次尝试", "Created": "创建时间",
    "Cancel": "取消", "duplicate": "重打印", "Last slips": "最近签购单",
    "E-receipt": "电子签购单",
}

# the reconciliation pages (web/pages_recon.py)
ZH.update({
    "Reconciliation": "对账", "Discrepancy queue": "差错队列", "Discrepancy": "差错",
    "Channel": "渠道", "Class": "类别", "State": "状态", "Open": "未处理",
    "Open amount": "未处理金额", "Resolved amount": "已处理金额", "Matched": "已匹配",
    "Cleared": "已清算", "Unresolved ageing": "未处理账龄", "Close date": "关闭对账日",
    "The date cannot be closed": "该日期无法关闭",
    "Nothing reconciled for this date.": "该日期尚无对账结果。",
    "Reconciled days": "已对账日期", "Ours": "我方记录", "Theirs": "对方记录",
    "Age (days)": "账龄（天）", "Resolution": "处理方式", "Ledger entry": "会计分录",
    "Record": "记录", "Line": "对方明细", "Actions": "操作", "Assign owner": "指派处理人",
    "Adjust": "调账", "Request refund": "申请退款", "Request re-settlement": "申请重新结算",
    "Accept": "接受差异", "Reason code": "原因代码", "Debit": "借方", "Credit": "贷方",
    "History": "处理记录", "found by the run": "对账发现",
})


def translator(lang: str) -> Callable[[str], str]:
    """``t(english)``: the text in ``lang``."""
    if lang == "zh":
        return lambda text: ZH.get(text, text)
    return lambda text: text


def money(amount_minor: int | None, cur: str | None = "CNY") -> str:
    """``¥1,234.56`` (other currencies by their symbol or code); empty for None."""
    if amount_minor is None:
        return ""
    code = cur or "CNY"
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    return f"{sign}{SYMBOLS.get(code, code + ' ')}{major:,}.{minor:02d}"


def local_time(value: datetime | None) -> str:
    """An instant as Asia/Shanghai wall-clock time."""
    if value is None:
        return ""
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def percent_bp(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value // 100}.{value % 100:02d}%"


# Status and type values as the records carry them (lower-case enum values), shown through
# the `status` macro and the transaction type cells.
ZH.update({
    # transactions
    "pending": "处理中", "approved": "成功", "declined": "拒绝", "voided": "已撤销",
    "reversed": "已冲正", "completed": "已完成", "cancelled": "已取消", "expired": "已过期",
    "sale": "消费", "void": "撤销", "refund": "退货", "preauth": "预授权",
    "preauth_void": "预授权撤销", "completion": "预授权完成",
    "completion_void": "预授权完成撤销", "balance_inquiry": "余额查询",
    # settlement items, batches and payouts
    "capture": "入账", "rev-capture": "冲正入账", "rev-void": "冲正撤销",
    "rev-refund": "冲正退货", "settled": "已结算", "payout_blocked": "出款受阻",
    "blocked": "受阻", "sent": "已发送", "confirmed": "已到账", "failed": "失败",
    # merchants, terminals, alerts, jobs
    "active": "正常", "under_review": "审核中", "suspended": "已暂停", "closed": "已关闭",
    "retired": "已停用", "silent": "静默", "info": "提示", "warning": "警告",
    "error": "错误", "critical": "严重", "running": "运行中", "done": "完成",
    "deferred": "已顺延", "abandoned": "已放弃", "superseded": "已取代",
    "open": "未处理", "resolved": "已处理", "printed": "已打印",
})

# The risk pages (web/pages_risk.py).
ZH.update({
    "Risk": "风控", "Merchant limits": "商户限额", "Review queue": "待审核交易",
    "Flagged merchants": "可疑商户", "Rules": "风控规则", "Rule": "规则",
    "Limits in force": "当前限额", "Limit": "限额", "Used": "已用", "Limit count": "限笔数",
    "Used count": "已用笔数", "day": "当日", "month": "当月",
    "Pre-registrations": "大额报备", "Pre-registration": "报备", "Valid from": "有效期自",
    "Valid to": "有效期至", "Pre-register": "报备",
    "Risk decisions": "风控决定", "Decision": "决定", "Rules fired": "触发规则",
    "Held": "暂缓结算", "Yes": "是", "Released": "已放行", "Release": "放行",
    "Hold": "暂缓", "Refund": "退款", "Score": "评分", "Reasons": "原因",
    "On review": "审核中", "Show released": "显示已放行", "Version": "版本",
    "Scope": "范围", "Scope value": "范围取值", "Edit": "修改", "Active": "启用",
    "Inactive": "停用", "built-in": "内置", "Save": "保存", "Deactivate": "停用",
    "New rule": "新规则", "Parameters": "参数", "Add": "添加",
    "Risk decision": "风控决定",
    "Every change is a new version of the rule, effective at once and audited.":
        "每次修改生成规则的新版本，立即生效并记入审计日志。",
    "Parameters by kind: see docs/risk.md.": "各类规则的参数见 docs/risk.md。",
})

# The reconciliation pages, second part: the queue's pager, a day's and a discrepancy's
# states and resolutions (shown through the status badge), the history's details.
ZH.update({
    "First page": "第一页", "reconciled": "已对账", "adjusted": "已调账",
    "accepted": "已接受差异", "refund_requested": "已申请退款",
    "resettle_requested": "已申请重新结算", "auto": "自动处理",
    "not on their side": "对方无此记录", "Assigned to": "处理人",
})
