"""What every console page shares: templates, language, the signed-in user and CSRF tokens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from api.accounts import SessionLifetime, User, end_session, session_owner, start_session
from api.console import evidence_text, rule_words, timeline_text
from api.console.i18n import LANGUAGES, catalogue
from api.console.names import Names
from api.deps import Resources, ResourcesDep
from api.scope import home_page, may_take_calls, may_visit

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
LOGIN = "/console/login"
LANG_COOKIE = "yiwang_lang"
LANG_COOKIE_AGE_S = 365 * 86_400


def language(request: Request) -> str:
    """The page's language: a ``?lang=`` choice, else the cookie a choice set (it outlives sign-in and
    sign-out), else the session's, else 简体中文.

    The cookie comes before the session on purpose: the session travels in its own cookie, which every
    response re-sends, so a poll that was in flight when the user switched language would write the
    old choice back; the language cookie is set only by a page the choice was made on.
    """
    chosen = request.query_params.get("lang")
    lang = chosen or request.cookies.get(LANG_COOKIE) or request.session.get("lang") or "zh"
    lang = lang if lang in LANGUAGES else "zh"
    if chosen in LANGUAGES:
        request.session["lang"] = lang
    return lang


def remember_language(request: Request, response: Response, lang: str) -> None:
    """A language chosen by a link is kept in its own cookie, so the choice made on the login page
    holds after signing in (and on the next visit)."""
    if request.query_params.get("lang") in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE_S, path="/", samesite="lax", httponly=True
        )


@pass_context
def local_time(context: Context, moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A moment in the deployment's time zone (the page's ``tz``); a naive one is UTC, as stored."""
    if moment is None:
        return "—"
    zone: tzinfo = context.get("tz") or UTC
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime(fmt)


templates.env.filters["local"] = local_time
templates.env.globals.update(
    evidence_words=evidence_text.describe,
    evidence_where=evidence_text.where,
    rule_condition=evidence_text.condition_text,
    rule_words=rule_words.rule_in_words,
    event_note=timeline_text.event_note,
    may_visit=may_visit,  # the return-visit link in nav.html
    may_take_calls=may_take_calls,  # the link to open a case by hand
    home_page=home_page,  # field roles: the link back to their phone view
)


def lifetime(resources: Resources) -> SessionLifetime:
    settings = resources.settings
    return SessionLifetime(
        idle=timedelta(seconds=settings.session_idle_s),
        absolute=timedelta(seconds=settings.session_absolute_s),
    )


def session_user(request: Request, resources: Resources) -> User | None:
    """The user of the cookie's session while the server still holds it: signing out, a password change
    and the idle and absolute lifetimes end it for every copy of the cookie."""
    session_id = request.session.get("sid")
    if not isinstance(session_id, str):
        return None
    return session_owner(resources.db, session_id, lifetime(resources))


def sign_in_session(request: Request, resources: Resources, user: User) -> None:
    """A fresh cookie session (and CSRF token) for every sign-in, backed by a new server-side session."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session["sid"] = start_session(resources.db, user, lifetime(resources))
    if lang:
        request.session["lang"] = lang


def sign_out_session(request: Request, resources: Resources) -> None:
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        end_session(resources.db, session_id)
    request.session.clear()


class SignInRequired(Exception):
    """Nobody is signed in to the console session (or the account is gone): the answer is the login page."""


def to_login() -> RedirectResponse:
    """The login page, by a 303 so that a refused form post becomes a GET."""
    return RedirectResponse(LOGIN, status_code=status.HTTP_303_SEE_OTHER)


def sign_in_first(_request: Request, _exc: Exception) -> Response:
    """The app's handler for SignInRequired: a dependency cannot answer with a redirect itself."""
    return to_login()


def console_user(request: Request, resources: ResourcesDep) -> User:
    """The signed-in user of a console page; nobody signed in raises SignInRequired."""
    user = session_user(request, resources)
    if user is None:
        raise SignInRequired
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


def csrf_token(request: Request) -> str:
    token: str | None = request.session.get("csrf")
    if token is None:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf(request: Request, submitted: str) -> None:
    """Console forms carry the session's token: a page on another site cannot post for the user (nor
    sign the user in to the attacker's account)."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not secrets.compare_digest(expected.encode(), submitted.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token; reload the page")


def page(request: Request, resources: Resources, name: str, **context: Any) -> HTMLResponse:
    lang = language(request)
    other = "en" if lang == "zh" else "zh"
    response = templates.TemplateResponse(
        request,
        name,
        {
            **catalogue(lang),
            "lang": lang,
            "other": other,
            # The same page in the other language: its filters, period and place kept.
            "other_lang_url": f"{request.url.path}?{request.url.include_query_params(lang=other).query}",
            "tz": ZoneInfo(resources.settings.display_timezone),
            "names": Names(lang, resources),
            "csrf": csrf_token(request),
            **context,
        },
    )
    remember_language(request, response, lang)
    return response
