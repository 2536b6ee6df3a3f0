"""Console words (zh-CN, en) of the follow-up details and the audit log, merged into gateway/web/i18n.py's."""

WORDS: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    "followup": ("随访信息", "Follow-up details"),
    "followup_hint": (
        "仅用于转诊、居家观察或劝返后的随访，均可不填；只有本卡点的医务人员可见，到期（默认 28 天）自动删除。",
        "Only for the follow-up of a referral, home observation or turn-back, all optional; seen by this post's"
        " medics only, deleted when the retention period ends (28 days unless set otherwise).",
    ),
    "followup_shown": (
        "仅本卡点的医务人员可见；查看会记入审计日志；到期（默认 28 天）自动删除。",
        "Seen by this post's medics only, each look written to the audit log; deleted when the retention period"
        " ends (28 days unless set otherwise).",
    ),
    "followup_name": ("姓名", "Name"),
    "followup_phone": ("电话", "Phone"),
    "followup_plate": ("车牌", "Vehicle plate"),
    "followup_note": ("随访备注", "Follow-up note"),
    "followup_recorded": ("记录", "Recorded"),
}
