"""Words of the console in zh-CN (the county's default) and English, and times in a site's zone, zone named."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable

from gateway.web import privacy_words

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

_WORDS: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    "title": ("体温筛查控制台", "Screening console"),
    "alerts": ("告警", "Alerts"),
    "nodes": ("设备", "Nodes"),
    "sheet": ("日报表", "Day sheet"),
    "by_shift": ("分班次统计", "By shift"),
    "maintenance": ("计划维护（不告警）", "Planned maintenance (no alerts)"),
    "maintenance_over": ("计划维护结束仍离线", "still offline after planned maintenance"),
    "shift": ("班次", "Shift"),
    "hourly": ("逐小时筛查与发热", "Scans and fevers by hour"),
    "hourly_legend": ("蓝：筛查人次；红：红外体温偏高", "blue: scans; red: elevated on infrared"),
    "users": ("用户", "Users"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "too_many": ("尝试次数过多，请稍后再试", "Too many attempts: try again later"),
    "open_alerts": ("未关闭的告警", "Open alerts"),
    "closed_alerts": ("已关闭的告警（24 小时内）", "Closed alerts (last 24 h)"),
    "no_alerts": ("没有告警", "No alerts"),
    "site": ("卡点", "Site"),
    "node": ("设备", "Node"),
    "kind": ("类型", "Kind"),
    "state": ("状态", "State"),
    "opened": ("发生时间", "Opened"),
    "open_for": ("持续", "Open for"),
    "reading": ("读数", "Reading"),
    "holder": ("处理人", "Held by"),
    "minutes": ("分钟", "min"),
    "fever": ("发热", "Fever"),
    "node_offline": ("设备离线", "Node offline"),
    "sensor_fault": ("传感器故障", "Sensor fault"),
    "identity_clash": ("设备身份冲突", "Identity clash"),
    "clock_skew": ("设备时钟偏差", "Clock skew"),
    "post_offline": ("卡点全部设备离线", "Post offline (every node)"),
    "population_drift": ("设备读数整体偏离", "Population drift (node reads apart from its site)"),
    "reference_overdue": ("参考校准已过期", "Reference check overdue"),
    "reference_drift": ("参考校准漂移", "Reference correction drifted"),
    "forged_command": ("设备拒绝了伪造的指令", "Forged command refused by the node"),
    "every_node": ("全部设备", "every node"),
    "detail": ("详情", "Detail"),
    "active_unack": ("未处理", "Active, unacknowledged"),
    "active_ack": ("处理中", "Active, acknowledged"),
    "cleared_unack": ("已关闭", "Cleared"),
    "cleared_ack": ("已关闭", "Cleared"),
    "escalated": ("已上报", "Escalated"),
    "history": ("处理记录", "History"),
    "when": ("时间", "When"),
    "who": ("操作人", "Who"),
    "what": ("内容", "What"),
    "from": ("来源", "From"),
    "acknowledge": ("接手处理", "Acknowledge"),
    "recheck": ("记录复测", "Record re-check"),
    "method": ("测量方式", "Method"),
    "oral": ("口温", "Oral"),
    "axillary": ("腋温", "Axillary"),
    "tympanic": ("耳温", "Tympanic"),
    "rectal": ("肛温", "Rectal"),
    "reading_c": ("体温计读数 (°C)", "Thermometer reading (°C)"),
    "resolve": ("结案", "Resolve"),
    "outcome": ("处置结果", "Outcome"),
    "cleared": ("放行", "Cleared to travel"),
    "handled": ("已处理", "Handled"),
    "referred": ("转诊发热门诊", "Referred to a fever clinic"),
    "monitored": ("居家医学观察", "Home medical observation"),
    "turned_back": ("劝返", "Turned back"),
    "escalate": ("上报", "Escalate"),
    "note": ("备注", "Note"),
    "conflict": ("他人已先处理此告警，请查看最新状态", "Someone else acted on this alert first: see its state now"),
    "refused": ("操作被拒绝", "Refused"),
    "indeterminate": ("无法判断", "Indeterminate"),
    "invalid": ("无效读数", "Invalid"),
    "taken": ("此告警已由他人接手", "Another medic already acknowledged this alert"),
    "taken_by": ("接手人", "Acknowledged by"),
    "elevated": ("红外筛查体温偏高", "Infrared screening: elevated"),
    "retest_confirmed": ("红外复测仍偏高", "Infrared retest: still elevated"),
    "retest_normal": ("红外复测正常（不关闭告警）", "Infrared retest: normal (does not close)"),
    "retest_indeterminate": ("红外复测无法判断", "Infrared retest: indeterminate"),
    "retest_invalid": ("红外复测无效", "Infrared retest: invalid"),
    "acknowledged": ("已接手", "Acknowledged"),
    "back_online": ("设备恢复在线", "Node back online"),
    "node_back": ("卡点已有设备恢复在线", "A node of the post back online"),
    "back_inside": ("设备读数回到卡点整体水平", "Level back within its site's"),
    "valid_scans": ("传感器恢复正常", "Sensor reads again"),
    "state_col": ("状态", "State"),
    "online": ("在线", "Online"),
    "offline": ("离线", "Offline"),
    "unknown": ("未知", "Unknown"),
    "last_seen": ("最后联系", "Last seen"),
    "outbox": ("待发 / 丢弃", "Outbox / drops"),
    "config_error": ("配置错误", "Config error"),
    "refused_commands": ("拒绝的指令", "Refused commands"),
    "taken_over": ("会话被接管", "Sessions taken over"),
    "taken_over_hint": (
        "本次开机以来，服务器在网络正常时断开该设备会话的次数：多半是另一台设备用了同一个名称",
        "Sessions the broker ended under the node since its boot while its link was up: most often another unit"
        " with the same name",
    ),
    "firmware": ("固件", "Firmware"),
    "last_scan": ("最后一次扫描（序号 / 总数）", "Last scan (seq / stored)"),
    "health": ("设备状况", "Health"),
    "heap": ("空闲内存", "free heap"),
    "signal": ("信号", "signal"),
    "supply": ("电源", "supply"),
    "sensor_errors": ("传感器错误", "sensor errors"),
    "day": ("日期", "Day"),
    "show": ("查看", "Show"),
    "screened": ("筛查人数", "Screened"),
    "retests": ("红外复测", "Retests"),
    "rechecked": ("体温计复测", "Clinical re-checks"),
    "field_loop": ("现场复核：红外与体温计", "Field loop: infrared against the clinical thermometer"),
    "field_loop_note": (
        "红外估计减体温计读数（°C）；发热以体温计 ≥ 37.3 °C 计；误报率与阳性预测值按复核过的红外高温计。",
        "Infrared estimate minus the clinical reading (°C); fever = clinical >= 37.3 °C; false alarms and PPV are"
        " over elevated scans that were re-checked.",
    ),
    "field_none": ("当日无体温计复测记录。", "No clinical re-checks recorded on this day."),
    "field_where": ("卡点 / 设备", "Site / node"),
    "field_n": ("复测数", "Re-checks"),
    "field_bias_c": ("偏差 °C", "Bias °C"),
    "field_sd_c": ("标准差 °C", "SD °C"),
    "field_elevated": ("高温复测", "Elevated re-checked"),
    "field_false_alarm_share": ("误报率", "False alarms"),
    "field_ppv": ("阳性预测值", "PPV"),
    "confirmed": ("复测确认", "Confirmed"),
    "nodes_up": ("在线设备", "Nodes online"),
    "csv": ("下载 CSV", "Download CSV"),
    "timezone": ("时区", "Time zone"),
    "role": ("角色", "Role"),
    "sites": ("卡点", "Sites"),
    "county": ("县", "County"),
    "disabled": ("已停用", "Disabled"),
    "language": ("语言", "Language"),
    "live": ("实时", "Live"),
    "all": ("全部", "All"),
    "forbidden": ("无权访问", "Not allowed"),
    "not_found": ("没有找到", "Not found"),
    "back": ("返回", "Back"),
    **privacy_words.WORDS,
}


def pick(user_locale: str, accept_language: str) -> str:
    """The user's setting, else the first language of the browser we have, else zh-CN."""
    if user_locale in LOCALES:
        return user_locale
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh-CN"
    return DEFAULT_LOCALE


def translator(locale: str) -> Callable[[str], str]:
    i = LOCALES.index(locale) if locale in LOCALES else 0
    return lambda key: _WORDS[key][i] if key in _WORDS else key


class Zones:
    """Each site's time zone (the sites table), else the default ([report] timezone)."""

    def __init__(self, default: str, sites: Iterable[tuple[str, str]] = ()) -> None:
        self.default = default
        self._zones = {site: zone for site, zone in sites}

    def name(self, site: str | None) -> str:
        return self._zones.get(site or "", self.default)

    def local(self, ms: int, site: str | None) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(self.name(site)))

    def show(self, ms: int | None, site: str | None) -> str:
        """`2026-12-01 14:03:22 CST (Asia/Shanghai)`; "" for no time."""
        if ms is None:
            return ""
        return f"{self.local(ms, site):%Y-%m-%d %H:%M:%S %Z} ({self.name(site)})"

    def today(self, site: str | None, now_ms: int) -> str:
        return self.local(now_ms, site).date().isoformat()
