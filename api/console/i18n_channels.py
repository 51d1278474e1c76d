"""The channels page's words, 简体中文 and English; merged into the console's catalogue
(``api/console/i18n.py``)."""

from __future__ import annotations

CHANNELS_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "chn_nav": "上报渠道",
        "chn_title": "群众上报渠道",
        "chn_intro": (
            "12345 热线、公众上报页面、小程序等渠道各有自己的密钥，只能向所选社区上报。"
            "密钥只在创建时显示一次。"
        ),
        "chn_forbidden": "上报渠道由系统管理员和区级平台操作员管理，您的角色不能查看或修改。",
        # The one-time key
        "chn_key_title": "渠道密钥（只显示这一次）",
        "chn_key_for": "渠道",
        "chn_key_help": (
            "请现在复制并妥善保存：离开本页后无法再次查看，丢失只能停用渠道后新建。"
            "把它填入对接系统（如 12345 热线系统）调用 Open311 接口时的 X-Api-Key 请求头"
            "（或其 API 密钥参数）。"
        ),
        "chn_key_page": "此渠道服务公众上报页面：页面自动使用它，无需把密钥交给任何人。",
        # The create form
        "chn_new": "新建渠道",
        "chn_name": "渠道名称",
        "chn_name_hint": "例如：12345 热线、街道小程序；最多 {n} 个字。",
        "chn_town": "街道（镇）的全部社区",
        "chn_no_town": "不按街道（镇）选择",
        "chn_communities": "或勾选社区",
        "chn_communities_hint": "可同时选择街道和社区，最多勾选 {n} 个社区。",
        "chn_serves_page": "服务公众上报页面（群众在网页上报时使用此渠道）",
        "chn_create": "创建并显示密钥",
        # The list
        "chn_list": "渠道",
        "chn_none": "还没有上报渠道。",
        "chn_col_name": "名称",
        "chn_col_reach": "可上报的社区",
        "chn_col_created": "创建",
        "chn_col_status": "状态",
        "chn_col_reports": "已上报",
        "chn_page_badge": "公众上报页面",
        "chn_town_all": "{town}全部社区",
        "chn_gone": "另有 {n} 个已不在目录中的社区",
        "chn_town_gone": "已不在组织中的街道（镇）",
        "chn_by": "创建人",
        "chn_reports_n": "{n} 件",
        "chn_enabled": "启用",
        "chn_disabled": "已停用",
        "chn_list_sep": "、",
        "chn_disable": "停用…",
        "chn_disable_warn": "停用后此渠道的密钥立即失效，不能再上报；已上报的案件保留其来源。停用不能撤销。",
        "chn_disable_confirm": "确认停用",
        # Refusals
        "chn_err_name": "请填写渠道名称（1 到 64 个字）。",
        "chn_err_taken": "已有同名渠道，请换一个名称。",
        "chn_err_nowhere": "请选择一个街道（镇），或至少勾选一个社区。",
        "chn_err_unknown_community": "所选社区不在社区目录中，请刷新页面后重新选择。",
        "chn_err_unknown_town": "所选街道（镇）不在组织中，请刷新页面后重新选择。",
        "chn_err_refused": "无法创建此渠道，请检查填写的内容。",
        "chn_err_unknown": "没有这个渠道，可能已被删除；请刷新页面。",
    },
    "en": {
        "chn_nav": "Reporting channels",
        "chn_title": "Public reporting channels",
        "chn_intro": (
            "The 12345 hotline, the public report page, a mini-program: each channel has its own key and "
            "reports only into the communities chosen for it. A key is shown once, when the channel is made."
        ),
        "chn_forbidden": (
            "Reporting channels are managed by administrators and district operators; your role cannot see "
            "or change them."
        ),
        "chn_key_title": "The channel's key (shown this once)",
        "chn_key_for": "Channel",
        "chn_key_help": (
            "Copy it now and keep it safe: it cannot be shown again once you leave this page; a lost key "
            "means disabling the channel and making a new one. Put it in the connected system's (e.g. the "
            "12345 hotline's) X-Api-Key header (or its API key parameter) when it calls the Open311 "
            "interface."
        ),
        "chn_key_page": (
            "This channel serves the public report page: the page uses it by itself, nobody needs the key."
        ),
        "chn_new": "New channel",
        "chn_name": "Channel name",
        "chn_name_hint": "For example: 12345 hotline, the town's mini-program; at most {n} characters.",
        "chn_town": "All the communities of a town",
        "chn_no_town": "Not by town",
        "chn_communities": "Or tick communities",
        "chn_communities_hint": "A town and communities may be chosen together; at most {n} communities.",
        "chn_serves_page": "Serves the public report page (residents reporting on the web use this channel)",
        "chn_create": "Create and show the key",
        "chn_list": "Channels",
        "chn_none": "No reporting channels yet.",
        "chn_col_name": "Name",
        "chn_col_reach": "Reports into",
        "chn_col_created": "Created",
        "chn_col_status": "Status",
        "chn_col_reports": "Reports filed",
        "chn_page_badge": "Public report page",
        "chn_town_all": "Every community of {town}",
        "chn_gone": "and {n} communities no longer in the catalogue",
        "chn_town_gone": "a town no longer in the organisation",
        "chn_by": "by",
        "chn_reports_n": "{n}",
        "chn_enabled": "Enabled",
        "chn_disabled": "Disabled",
        "chn_list_sep": ", ",
        "chn_disable": "Disable…",
        "chn_disable_warn": (
            "Once disabled, the channel's key stops working at once and nothing more can be reported "
            "through it; the cases it filed keep their origin. This cannot be undone."
        ),
        "chn_disable_confirm": "Disable it",
        "chn_err_name": "Give the channel a name (1 to 64 characters).",
        "chn_err_taken": "There is already a channel with that name: choose another.",
        "chn_err_nowhere": "Choose a town, or tick at least one community.",
        "chn_err_unknown_community": (
            "A chosen community is not in the catalogue: reload the page and choose again."
        ),
        "chn_err_unknown_town": (
            "The chosen town is not in the organisation: reload the page and choose again."
        ),
        "chn_err_refused": "The channel could not be made: check what was filled in.",
        "chn_err_unknown": "There is no such channel (it may be gone): reload the page.",
    },
}
