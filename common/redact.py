"""Secrets out of text that is logged, stored or shown: URL credentials and secret parameters → ``***``.

Store URLs (``influxdb://user:pass@host/db?token=...``) and webhook URLs (WeCom ``?key=``, DingTalk
``?access_token=...&sign=...``) reach exception messages — httpx names the request URL in its errors —
and from there log lines, an outbox row's ``last_error`` and ``/healthz``. Redacting the text where it
is made keeps every such path clean without each caller knowing which parameters are secret.
"""

from __future__ import annotations

import re

MASK = "***"

# Query parameters that carry a credential: InfluxDB (token, u/p), WeCom (key), DingTalk
# (access_token, sign), generic webhooks and OAuth-style APIs.
SECRET_PARAMETERS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "client_secret",
        "key",
        "p",
        "password",
        "passwd",
        "pwd",
        "secret",
        "sig",
        "sign",
        "signature",
        "token",
    }
)

# The authority's userinfo, up to its last "@" (a password may contain an unescaped one).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"<>@]*(?:@[^/?#\s'\"<>@]*)*@")
# A secret parameter inside a query string: only after "?", "&" or ";", so prose is left alone.
_PARAMETER = re.compile(
    r"(?P<name>(?<=[?&;])(?:" + "|".join(sorted(SECRET_PARAMETERS)) + r"))=(?P<value>[^&;#\s'\"<>]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` (a URL, or a message that may quote URLs) with credentials replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _PARAMETER.sub(lambda m: f"{m['name']}={MASK}", text)
