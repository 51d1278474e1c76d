"""Return visits and in-app notifications: words in 简体中文 and English, merged into the console's catalogue
(``api/console/i18n.py``)."""

from __future__ import annotations

VISIT_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        # The bell
        "bell_label": "通知",
        "bell_none": "没有未读通知",
        "bell_unread": "{n} 条未读通知",
        "bell_mark_read": "全部标为已读",
        "notif_assign": "案件 #{case}（{category}，{grid}）已交办给你：{title}",
        "notif_sla_warning": (
            "案件 #{case}（{category}，{grid}）的「{stage}」时限已用 80%，期限 {deadline}：{title}"
        ),
        "notif_supervise": "案件 #{case}（{category}，{grid}）超时，已向{unit}发出督办：{title}",
        "notif_supervise_manual": "案件 #{case}（{category}，{grid}）已向{unit}发出督办：{title}",
        # The visit list and form
        "vis_nav": "回访",
        "vis_title": "待回访案件",
        "vis_intro": "已结案、尚未回访的案件，结案最早的排在最前。回访结果计入满意率。",
        "vis_none": "没有待回访的案件。",
        "vis_case": "案件",
        "vis_category": "类别",
        "vis_place": "地点",
        "vis_case_title": "标题",
        "vis_closed": "结案时间",
        "vis_attempts": "未接通次数",
        "vis_phone_known": "留有电话",
        "vis_open": "回访",
        "vis_total": "共 {n} 件",
        "vis_more": "更多",
        "vis_form_title": "回访案件 #{case}",
        "vis_phone": "报告人电话",
        "vis_phone_none": "报告人没有留电话：请按网格走访回访。",
        "vis_phone_note": "号码仅供本次回访使用，查看已记录在案。",
        "vis_description": "情况描述",
        "vis_outcome": "回访结果",
        "vis_note": "回访记录",
        "vis_note_hint": "最多 1000 字",
        "vis_photos": "照片（可选，最多 3 张）",
        "vis_submit": "提交回访结果",
        "vis_back": "返回回访列表",
        "vis_history": "回访记录",
        "vis_attempt_line": "{at} {actor}：{outcome}",
        "vis_unreachable_rule": (
            "联系不上时案件留在列表中，稍后再试；第 {n} 次联系不上后回访以「联系不上」结束。"
        ),
        "vis_done_final": "回访已记录：{outcome}。",
        "vis_done_reopened": "回访已记录：不满意，案件已重新办理。",
        "vis_done_retry": "已记录第 {n} 次联系不上，案件仍在待回访列表中，请稍后再试。",
        "vis_not_awaiting": "这个案件现在不在待回访状态（可能已有人回访）。",
        "vis_forbidden": "回访由镇街和区平台的值班员进行：你的账号不做回访。",
        "vis_bad_outcome": "请选择一个回访结果。",
        "vis_bad_note": "回访记录不能超过 1000 字。",
        "vis_bad_photo": "照片没有保存：{why}",
        "vis_missing": "没有这个案件，或它不在你的辖区内。",
        "visit_basically_satisfied": "基本满意",
    },
    "en": {
        "bell_label": "Notifications",
        "bell_none": "No unread notifications",
        "bell_unread": "{n} unread",
        "bell_mark_read": "Mark all as read",
        "notif_assign": "Case #{case} ({category}, {grid}) was assigned to you: {title}",
        "notif_sla_warning": (
            "Case #{case} ({category}, {grid}): 80 % of the time for “{stage}” is used, "
            "due {deadline}: {title}"
        ),
        "notif_supervise": (
            "Case #{case} ({category}, {grid}) is overdue: a supervision order went to {unit}: {title}"
        ),
        "notif_supervise_manual": (
            "Case #{case} ({category}, {grid}): a supervision order went to {unit}: {title}"
        ),
        "vis_nav": "Return visits",
        "vis_title": "Cases awaiting a return visit",
        "vis_intro": (
            "Closed cases not visited yet, the longest closed first. Outcomes count in the satisfaction rate."
        ),
        "vis_none": "No case awaits a return visit.",
        "vis_case": "Case",
        "vis_category": "Category",
        "vis_place": "Place",
        "vis_case_title": "Title",
        "vis_closed": "Closed",
        "vis_attempts": "Unanswered calls",
        "vis_phone_known": "Phone left",
        "vis_open": "Visit",
        "vis_total": "{n} in all",
        "vis_more": "More",
        "vis_form_title": "Return visit for case #{case}",
        "vis_phone": "Reporter's phone",
        "vis_phone_none": "The reporter left no phone number: visit them through the grid.",
        "vis_phone_note": "For this visit only; that you saw it has been recorded.",
        "vis_description": "Description",
        "vis_outcome": "Outcome",
        "vis_note": "Notes of the visit",
        "vis_note_hint": "At most 1,000 characters",
        "vis_photos": "Photos (optional, at most 3)",
        "vis_submit": "Record the outcome",
        "vis_back": "Back to the visit list",
        "vis_history": "Calls so far",
        "vis_attempt_line": "{at} {actor}: {outcome}",
        "vis_unreachable_rule": (
            "When nobody answers, the case stays on the list to try again later; after {n} unanswered calls "
            "the visit ends as unreachable."
        ),
        "vis_done_final": "Visit recorded: {outcome}.",
        "vis_done_reopened": "Visit recorded: unsatisfied. The case has been reopened.",
        "vis_done_retry": "Unanswered call {n} recorded; the case stays on the list: try again later.",
        "vis_not_awaiting": "This case no longer awaits a return visit (someone may have visited it).",
        "vis_forbidden": (
            "Return visits are made by the town and district platform operators; your account makes none."
        ),
        "vis_bad_outcome": "Choose an outcome of the visit.",
        "vis_bad_note": "The notes may be at most 1,000 characters.",
        "vis_bad_photo": "The photo was not saved: {why}",
        "vis_missing": "No such case, or it is outside your jurisdiction.",
        "visit_basically_satisfied": "Basically satisfied",
    },
}
