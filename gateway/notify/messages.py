"""What a person reads: an alert event as a title and a body, in zh-CN or English, long or short. Pure.

Each message says where (the post's name and id, the node), when (the site's local time with its zone named,
and how long the alert has been open), what was read (the infrared core estimate, the skin reading: a screening
estimate, not a diagnosis), what to do, and a link to the alert on the console. It carries no personal data:
the alert holds none (no traveller's name, face or document), and a person is named only when they took or
closed the alert. The long form is for chat and email; the short one (one line: what, where, when, the
reading and the one thing to do in about 60 characters, then the link) for an SMS gateway. Every message ends
with its stable id (ref), the same on a resend.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from gateway import alerts
from gateway.store.base import AlertEvent, AlertRow
from gateway.web.i18n import Zones

NOTIFIER = "notifier"  # the actor of an escalation the notifier makes
_ZH, _EN = 0, 1
_KIND = {
    alerts.FEVER: ("发热", "Fever"),
    alerts.NODE_OFFLINE: ("设备离线", "Node offline"),
    alerts.SENSOR_FAULT: ("传感器故障", "Sensor fault"),
    alerts.IDENTITY_CLASH: ("设备名称冲突", "Two units under one name"),
    alerts.CLOCK_SKEW: ("设备时钟错误", "Node clock wrong"),
    alerts.POST_OFFLINE: ("卡点全部设备离线", "Post offline"),
    alerts.POPULATION_DRIFT: ("设备读数整体偏离", "Node reads apart from its site"),
    alerts.REFERENCE_OVERDUE: ("设备参考校准已过期", "Reference check overdue"),
    alerts.REFERENCE_DRIFT: ("设备校准漂移", "Reference correction drifted"),
    alerts.FORGED_COMMAND: ("设备拒绝了伪造的指令", "Node refused a forged command"),
}
_DO = {
    alerts.FEVER: ("请用体温计（口温/腋温）复测，并在控制台记录",
                   "Re-check with a clinical thermometer and record it on the console"),
    alerts.NODE_OFFLINE: ("请致电卡点：检查设备电源和网络", "Phone the post: check the node's power and network"),
    alerts.SENSOR_FAULT: ("请清洁传感器窗口，或更换设备", "Clean the sensor window, or swap the unit"),
    alerts.IDENTITY_CLASH: ("两台设备使用同一名称：请为每台设备单独命名", "Give each unit a name of its own"),
    alerts.CLOCK_SKEW: ("请检查设备的网络时间（NTP）；其记录按网关时间归档", "Check the node's network time (NTP); its"
                        " scans are filed under the gateway's time"),
    alerts.POST_OFFLINE: ("请立即致电卡点：卡点网络或电源中断，筛查记录暂存在设备上，发热告警无法送达；"
                          "请卡点电话报告每位体温偏高的旅客",
                          "Phone the post now: its network or power is down; its scans wait on the nodes and no fever"
                          " alert reaches you: ask them to phone in each elevated traveller"),
    alerts.POPULATION_DRIFT: ("该设备读数整体偏离同卡点其他设备：请用参考源（黑体或参考体温计）检查，或更换设备；"
                              "不影响单次筛查结论，发热仍以体温计复测为准", "Its readings sit apart from the site's"
                              " other nodes: check it against a reference source (blackbody) or swap it; a fever"
                              " is still decided by a clinical thermometer"),
    alerts.REFERENCE_OVERDUE: ("本班次尚未做参考校准：请用参考源（黑体或参考体温计）在约35°C和39°C各测一次，并记录"
                               "（checkpoint-gateway reference record）", "No reference check this shift: scan the"
                               " reference source near 35 C and 39 C and record it (checkpoint-gateway reference"
                               " record)"),
    alerts.REFERENCE_DRIFT: ("该设备两次参考校准相差超过0.3°C：请复核参考源后重新校准；仍漂移则更换设备",
                             "Its correction moved more than 0.3 C between two checks: check the reference source,"
                             " check the unit again, swap it if it still moves"),
    alerts.FORGED_COMMAND: ("有人向该设备发送了伪造或重放的指令（回执、结论或配置），设备已拒绝，未执行："
                            "请通知网关管理员检查 MQTT 服务器账号与卡点网络；处理后在控制台关闭此告警并写明处理情况",
                            "Someone sent it a forged or replayed command (receipt, verdict or config); the node"
                            " refused it and did nothing: tell the gateway's administrator to check the broker's"
                            " accounts and the post's network, then close this alert on the console with a note"),
}  # fmt: skip
_DO_SHORT = {
    alerts.FEVER: ("请用体温计复测", "re-check with a thermometer"),
    alerts.NODE_OFFLINE: ("请致电卡点", "phone the post"),
    alerts.SENSOR_FAULT: ("请清洁或更换传感器", "clean or swap the sensor"),
    alerts.IDENTITY_CLASH: ("请为设备单独命名", "rename one unit"),
    alerts.CLOCK_SKEW: ("请检查 NTP", "check its NTP"),
    alerts.POST_OFFLINE: ("请立即致电卡点", "phone the post now"),
    alerts.POPULATION_DRIFT: ("请校准或更换设备", "check or swap the unit"),
    alerts.REFERENCE_OVERDUE: ("请做参考校准", "check it against the reference"),
    alerts.REFERENCE_DRIFT: ("请复核或更换设备", "check again or swap the unit"),
    alerts.FORGED_COMMAND: ("请通知网关管理员", "tell the gateway's administrator"),
}
_STATE = {
    alerts.RAISED: ("", ""),
    alerts.ESCALATED: ("已上报", "ESCALATED"),
    alerts.ACKNOWLEDGED: ("已接手", "Acknowledged"),
    alerts.RESOLVED: ("已关闭", "Resolved"),
}
_OUTCOME = {
    "cleared": ("放行", "cleared to travel"),
    "referred": ("转诊发热门诊", "referred to a fever clinic"),
    "monitored": ("居家医学观察", "home medical observation"),
    "turned_back": ("劝返", "turned back"),
}
_BACK = {  # why a node or post alert resolved itself, where a person wants to read it
    "node_back": ("卡点已有设备恢复在线", "a node of the post is back online"),
    "back_inside": ("设备读数已回到卡点整体水平", "its level is back within its site's"),
}
_WORDS = {
    "at": ("卡点", "at"),
    "node": ("设备", "node"),
    "all_nodes": ("全部设备", "every node"),
    "dark": ("卡点 {post} 全部 {n} 台设备自 {since} 起离线", "all {n} nodes of post {post} offline since {since}"),
    "dark_short": ("全部 {n} 台设备离线", "all {n} nodes offline"),
    "when": ("时间", "When"),
    "open": ("已持续 {m} 分钟", "open {m} min"),
    "reading": ("读数", "Reading"),
    "ir": ("红外 {core}", "IR {core}"),
    "estimate": ("红外估算体温 {core}（体表 {skin}），为筛查估算，非诊断",
                 "infrared core estimate {core} (skin {skin}); a screening estimate, not a diagnosis"),
    "do": ("处理", "Do"),
    "console": ("控制台", "Console"),
    "reminder": ("第 {k} 次提醒：未接手", "Reminder {k}: not acknowledged"),
    "escalated": ("{m} 分钟无人接手，已上报", "not acknowledged within {m} min: escalated"),
    "by": ("处理人 {who}", "by {who}"),
    "outcome": ("结果：{what}", "outcome: {what}"),
    "detail": ("详情", "Detail"),
    "ref": ("编号", "Ref"),
    "summary": ("此接收方曾无法送达：自 {since} 起积压 {n} 条通知，以下按时间先后补发",
                "{n} notifications were held since {since} while this receiver could not be reached; they follow,"
                " oldest first"),
    "test": ("体温筛查网关测试通知：此接收方可以收到告警",
             "Test from the screening gateway: this receiver gets alerts"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Context:
    """Where the message goes and what it may say: the receiver's locale and form, the console's public URL
    ("": no link), the sites' names and zones, and the time it is rendered."""

    locale: str
    form: str
    console_url: str
    site_names: dict[str, str]
    zones: Zones
    now: int


def _i(locale: str) -> int:
    return _EN if locale == "en" else _ZH


def link(console_url: str, alert_id: str) -> str:
    """The alert's page on the console, or "" without a public URL."""
    return f"{console_url.rstrip('/')}/alerts/{quote(alert_id, safe=':')}" if console_url else ""


def _c(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} °C"


def _headline(alert: AlertRow, event: AlertEvent, reminder: int, i: int) -> str:
    kind = _KIND.get(alert.kind, (alert.kind, alert.kind))[i]
    if reminder:
        return f"{kind} · {_WORDS['reminder'][i].format(k=reminder)}"
    state = _STATE.get(event.state, ("", ""))[i]
    return f"{kind} · {state}" if state else kind


def _dark(alert: AlertRow, post: str, ctx: Context, short: bool) -> str:
    """A post_offline alert's news: how many nodes of which post are offline since when (local, zone named)."""
    i, n = _i(ctx.locale), len(alerts.dark_nodes(alert))
    if short:
        return _WORDS["dark_short"][i].format(n=n)
    since = f"{ctx.zones.local(alert.opened_at, alert.site):%H:%M} ({ctx.zones.name(alert.site)})"
    return _WORDS["dark"][i].format(n=n, post=post, since=since)


def _what(alert: AlertRow, event: AlertEvent, i: int, short: bool = False) -> str:
    """The reading of a fever, or the event's own news (who took it, the outcome)."""
    parts = []
    if alert.kind == alerts.FEVER:
        reading = _WORDS["ir" if short else "estimate"][i]
        parts.append(reading.format(core=_c(alert.t_core_c), skin=_c(alert.t_site_c)))
    if event.state == alerts.ESCALATED and event.actor == NOTIFIER:
        parts.append(_WORDS["escalated"][i].format(m=(event.at - alert.opened_at) // 60_000))
    elif event.state in (alerts.ACKNOWLEDGED, alerts.ESCALATED):
        parts.append(_WORDS["by"][i].format(who=event.actor.removeprefix("medic:")))
    if event.state == alerts.RESOLVED and event.reason in _OUTCOME:
        parts.append(_WORDS["outcome"][i].format(what=_OUTCOME[event.reason][i]))
    elif event.state == alerts.RESOLVED and event.reason in _BACK:
        parts.append(_BACK[event.reason][i])
    return "; ".join(parts)


def _news(alert: AlertRow, event: AlertEvent, post: str, ctx: Context, short: bool) -> str:
    """What happened: a dark post's count and time, a fever's reading, the event's own news."""
    dark = ""
    if alert.kind == alerts.POST_OFFLINE and event.state != alerts.RESOLVED:
        dark = _dark(alert, post, ctx, short)
    return "; ".join(p for p in (dark, _what(alert, event, _i(ctx.locale), short)) if p)


def _short(alert: AlertRow, event: AlertEvent, reminder: int, ref: str, post: str, ctx: Context) -> str:
    """One line for an SMS gateway: headline, post, node, opening time, news, the one thing to do, link, ref."""
    i = _i(ctx.locale)
    do = "" if event.state == alerts.RESOLVED else _DO_SHORT.get(alert.kind, ("", ""))[i]
    news = "; ".join(p for p in (_news(alert, event, post, ctx, short=True), do) if p)
    which = "" if alert.node == alerts.WHOLE_POST else alert.node  # a dark post's news says "all N nodes"
    opened = ctx.zones.local(alert.opened_at, alert.site)
    parts = (f"[{_headline(alert, event, reminder, i)}]", post, which, f"{opened:%H:%M %Z}", news,
             link(ctx.console_url, alert.alert_id), f"#{ref}")  # fmt: skip
    return " ".join(p for p in parts if p)


def render(alert: AlertRow, event: AlertEvent, reminder: int, ref: str, ctx: Context) -> tuple[str, str]:
    """(title, body) of one notification. `event` is the event it tells (for a reminder: the alert's latest)."""
    i = _i(ctx.locale)
    post = ctx.site_names.get(alert.site) or alert.site
    where = f"{post} ({alert.site})" if post != alert.site else post
    unit = _WORDS["all_nodes"][i] if alert.node == alerts.WHOLE_POST else f"{_WORDS['node'][i]} {alert.node}"
    title = f"[{_headline(alert, event, reminder, i)}] {post} · {unit}"
    if ctx.form == "short":
        return title, _short(alert, event, reminder, ref, post, ctx)
    minutes = max(0, (ctx.now - alert.opened_at) // 60_000)
    what = _news(alert, event, post, ctx, short=False)
    do = "" if event.state == alerts.RESOLVED else _DO.get(alert.kind, ("", ""))[i]
    url = link(ctx.console_url, alert.alert_id)
    lines = [
        f"{_headline(alert, event, reminder, i)}: {where}, {unit}",
        f"{_WORDS['when'][i]}: {ctx.zones.show(alert.opened_at, alert.site)}, {_WORDS['open'][i].format(m=minutes)}"
        if event.state != alerts.RESOLVED
        else f"{_WORDS['when'][i]}: {ctx.zones.show(event.at, alert.site)}",
    ]
    if what:
        lines.append(f"{_WORDS['reading'][i]}: {what}" if alert.kind == alerts.FEVER else what)
    if alert.detail:
        lines.append(f"{_WORDS['detail'][i]}: {alert.detail}")
    if do:
        lines.append(f"{_WORDS['do'][i]}: {do}")
    if url:
        lines.append(f"{_WORDS['console'][i]}: {url}")
    lines.append(f"{_WORDS['ref'][i]}: {ref}")
    return title, "\n".join(lines)


def summary(n: int, since: int, site: str | None, ctx: Context) -> tuple[str, str]:
    """The line before a backlog: how many, since when."""
    i = _i(ctx.locale)
    text = _WORDS["summary"][i].format(n=n, since=ctx.zones.show(since, site))
    return text[:60], text


def test_message(ctx: Context) -> tuple[str, str]:
    i = _i(ctx.locale)
    text = _WORDS["test"][i]
    return text, f"{text} ({ctx.zones.show(ctx.now, None)})"
