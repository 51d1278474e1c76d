"""The operator console: a session login and the queue of open cases, in 简体中文 (default) or English."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import OPEN_STATES, Case
from api.accounts import authenticate, find_user
from api.deps import ResourcesDep
from api.routes.cases import case_out
from api.scope import case_filter

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "一网 · 网格工单",
        "login": "登录",
        "username": "用户名",
        "password": "密码",
        "bad_login": "用户名或密码错误",
        "open_cases": "待办工单",
        "id": "编号",
        "category": "类别",
        "grid": "网格",
        "state": "状态",
        "opened": "受理时间",
        "deadline": "办结时限",
        "case": "工单",
        "none": "暂无待办工单",
        "logout": "退出",
        "other_lang": "English",
    },
    "en": {
        "title": "Yiwang · Grid cases",
        "login": "Sign in",
        "username": "Username",
        "password": "Password",
        "bad_login": "Wrong username or password",
        "open_cases": "Open cases",
        "id": "No.",
        "category": "Category",
        "grid": "Grid",
        "state": "State",
        "opened": "Opened",
        "deadline": "Deadline",
        "case": "Case",
        "none": "No open cases",
        "logout": "Sign out",
        "other_lang": "中文",
    },
}


STATE_NAMES: dict[str, dict[str, str]] = {
    "zh": {
        "NEW": "待受理",
        "VERIFYING": "核实",
        "FILED": "立案",
        "ASSIGNED": "交办",
        "HANDLING": "处置",
        "CALLED_UP": "镇呼区应",
        "FEEDBACK": "反馈",
        "CHECKING": "核查",
        "CLOSED": "结案",
        "RETURN_VISIT": "回访",
        "VOID": "作废",
        "MERGED": "已合并",
        "REOPENED": "重新办理",
        "SUSPENDED": "挂起",
    },
    "en": {
        "NEW": "New",
        "VERIFYING": "Verifying",
        "FILED": "Filed",
        "ASSIGNED": "Assigned",
        "HANDLING": "Handling",
        "CALLED_UP": "Called up to district",
        "FEEDBACK": "Feedback",
        "CHECKING": "Checking",
        "CLOSED": "Closed",
        "RETURN_VISIT": "Return visit",
        "VOID": "Void",
        "MERGED": "Merged",
        "REOPENED": "Reopened",
        "SUSPENDED": "Suspended",
    },
}


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.session.get("lang") or "zh"
    lang = lang if lang in TEXT else "zh"
    request.session["lang"] = lang
    return lang


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    return templates.TemplateResponse(
        request, name, {"t": TEXT[lang], "lang": lang, "other": "en" if lang == "zh" else "zh", **context}
    )


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/console/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", error=False)


@router.post("/console/login", response_model=None)
def login(
    request: Request,
    resources: ResourcesDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    keys = (f"user:{username}", f"client:{request.client.host if request.client else ''}")
    wait = resources.throttle.retry_after(*keys)
    if wait > 0:
        response = _page(request, "login.html", error=True)
        response.status_code = status.HTTP_429_TOO_MANY_REQUESTS
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = authenticate(resources.engine, username, password)
    if user is None:
        resources.throttle.failed(*keys)
        response = _page(request, "login.html", error=True)
        response.status_code = status.HTTP_401_UNAUTHORIZED
        return response
    resources.throttle.succeeded(keys[0])
    request.state.actor = user.username
    request.session["user"] = user.username
    return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/logout")
def logout(request: Request) -> RedirectResponse:
    request.session.pop("user", None)
    return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/console", response_class=HTMLResponse, response_model=None)
def console(request: Request, resources: ResourcesDep) -> Response:
    user = find_user(resources.engine, request.session.get("user") or "")
    if user is None:
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    with Session(resources.engine) as session:
        rows = session.scalars(
            select(Case)
            .where(Case.state.in_([s.value for s in OPEN_STATES]), case_filter(user, resources.policy))
            .order_by(Case.opened_at.desc(), Case.id.desc())
            .limit(200)
        )
        cases = [case_out(c, resources) for c in rows]
    names = {
        c.code: (c.name_zh if _lang(request) == "zh" else c.name_en) for c in resources.categories.values()
    }
    grids = {g.id: g.name for community in resources.catalog.communities.values() for g in community.grids}
    return _page(
        request,
        "console.html",
        cases=cases,
        category_names=names,
        grid_names=grids,
        user=request.session["user"],
        state_names=STATE_NAMES[_lang(request)],
        tz=ZoneInfo(resources.settings.display_timezone),
    )
