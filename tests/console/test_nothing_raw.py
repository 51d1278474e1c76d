"""Every console page, in 简体中文 and in English, on realistic data: no catalogue key, Python repr or
internal identifier in the text a person reads.

The pages are found, not listed: every GET route under /console answering HTML, with a seeded value for
each path parameter (a new parameter without one fails the test, so a new page cannot slip past). The
checks run on the text content (attributes — data-*, hrefs, form values — may carry ids). Text an
operator must read verbatim (a URL path in the audit trail, an MQTT topic, a payload) sits in an
element marked ``translate="no"``, allowed only on the pages that need it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.i18n import TEXT
from tests.api.conftest import console_login, towns  # noqa: F401 - the seeded two towns, per store
from tests.api.two_towns import Seeded
from tests.console.nothing_raw_seed import COMMUNITY, Extra, seed_more

VOID_ELEMENTS = {"br", "hr", "img", "input", "link", "meta", "source", "wbr", "col", "area", "base"}
# Where machine text is the point: the audit trail's paths, dead letters' topics and payloads, the
# registry editor's ids.
VERBATIM_PAGES = ("/console/audit", "/console/dead-letters", "/console/registry", "/console/fleet")
RAW = {
    "a Python dict": re.compile(r"\{'|\{\""),
    "a Python list": re.compile(r"\['|\[\""),
    "a grid id": re.compile(r"(?<![\w-])g-[a-z]\w*"),
    "a snake_case code": re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w-])"),
    "None/True/False": re.compile(r"\b(?:None|True|False)\b(?![ -][a-z])"),  # not "False alarm"
    "a UUID": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
    "an ISO timestamp": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),
    "an object repr": re.compile(r"object at 0x|<[a-z_.]+\.[A-Z]\w*[ (>]"),
    "a dotted kind": re.compile(r"\b(?:camera|device)\.[a-z_]+\b"),
}
# Ids the data uses that a page must name instead: rules, categories, stages, system actors.
CODES = re.compile(
    r"(?<![\w-])(?:flooding-water-level|gas-lel-high|gas-anomaly|fire-lane-motion|fire-lane|gateway-offline"
    r"|flooding|fire_smoke|gas_leak|system:\w+|zhuganxiang|xinhe)(?![\w-])"
)
# In the Chinese pages, English prose (two words in a row) is a note or label nobody translated.
ENGLISH_PROSE = re.compile(r"\b[A-Za-z]{2,}\s+[a-z]{2,}\b")
ZH_ALLOWED_PROSE = {"English"}
STAGE_CODES = re.compile(r"(?<![\w-])(?:accept|sign|handle|respond|resolve_call|done)(?![\w-])")


class VisibleText(HTMLParser):
    """The text a person reads: without scripts, styles, SVG's machine parts or ``translate="no"``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.chunks: list[str] = []
        self.verbatim = 0

    def _hidden(self) -> bool:
        return any(hidden for _, hidden in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_ELEMENTS:
            return
        verbatim = dict(attrs).get("translate") == "no"
        self.verbatim += verbatim
        self.stack.append((tag, tag in ("script", "style") or verbatim))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.chunks.append(data.strip())


def visible(html: str) -> tuple[list[str], int]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks, parser.verbatim


def problems(chunks: list[str], lang: str, typed: tuple[str, ...] = ()) -> list[str]:
    """What is raw in the chunks; ``typed`` are texts people wrote (account names, a report's title),
    shown as they are."""
    found = []
    for chunk in chunks:
        for text in typed:
            chunk = re.sub(rf"(?<![\w.-]){re.escape(text)}(?![\w.-])", "", chunk)
        for what, pattern in RAW.items():
            if match := pattern.search(chunk):
                found.append(f"{what} {match.group(0)!r} in {chunk!r}")
        if match := CODES.search(chunk):
            found.append(f"an internal id {match.group(0)!r} in {chunk!r}")
        if lang == "zh":
            if (match := ENGLISH_PROSE.search(chunk)) and chunk not in ZH_ALLOWED_PROSE:
                found.append(f"English {match.group(0)!r} in the Chinese page: {chunk!r}")
            if match := STAGE_CODES.search(chunk):
                found.append(f"a stage code {match.group(0)!r} in {chunk!r}")
        keys = [k for k in TEXT[lang] if "_" in k and k in chunk.split()]
        found += [f"a catalogue key {k!r} in {chunk!r}" for k in keys]
    return found


def console_routes(app: Any) -> Iterator[str]:
    """Every GET path under /console, found in the app's routers."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            inner = getattr(route, "original_router", None) or getattr(route, "router", None)
            if inner is not None and hasattr(inner, "routes") and not hasattr(route, "methods"):
                yield from walk(inner.routes)
            else:
                yield route

    for route in walk(list(app.routes)):
        path = getattr(route, "path", "")
        if path.startswith("/console") and "GET" in (getattr(route, "methods", None) or set()):
            yield path


@pytest.fixture(scope="module")
def extra(towns: Seeded) -> Extra:  # noqa: F811 - the fixture imported above
    return seed_more(towns.settings)


@pytest.fixture(scope="module")
def operator(towns: Seeded, extra: Extra) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(towns.settings)) as client:
        response = console_login(client, "admin", "pw-admin")
        assert response.status_code in (200, 303), response.text[:300]
        yield client


def path_values(towns: Seeded, extra: Extra) -> dict[str, str]:  # noqa: F811
    return {
        "case_id": str(extra.gas_case),
        "community": COMMUNITY,
        "device": "gas-0101",
        "username": "admin",
        "user": "admin",
        "town": "yuehe",
        "grid": "g-north",
        "token": "an-expired-invitation",  # the refusal page, in words too
    }


SKIP_SUFFIXES = (".geojson", ".svg", ".csv", ".xlsx", ".json")


def pages(app: Any, towns: Seeded, extra: Extra) -> list[str]:  # noqa: F811
    values = path_values(towns, extra)
    found = []
    for path in sorted(set(console_routes(app))):
        if path.endswith(SKIP_SUFFIXES) or path == "/console/stream":
            continue
        params = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        missing = [p for p in params if p not in values]
        assert not missing, f"{path}: add a seeded value for {missing} to path_values so the page is checked"
        found.append(re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], path))
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_console_page_shows_words_not_codes(
    operator: TestClient,
    towns: Seeded,  # noqa: F811
    extra: Extra,
    lang: str,
) -> None:
    urls = pages(operator.app, towns, extra)
    # The pages the issue names are among them (and the evidence pages of each kind).
    for expected in ("/console", "/console/alerts", "/console/fleet", "/console/map", "/console/kpis"):
        assert expected in urls, urls
    urls += [f"/console/cases/{extra.camera_case}", f"/console/cases/{extra.gateway_case}"]
    urls += [f"/console/cases/{c}" for c in towns.cases[COMMUNITY]]
    urls += [f"/console/devices/{COMMUNITY}/cam-01", f"/console/registry/{COMMUNITY}/devices/wl-01/edit"]
    # People's words stay as they are: account names, and the titles the seed's residents typed.
    typed = (
        *towns.tokens,
        *(f"{c} {what}" for c in (COMMUNITY, "xinhe") for what in ("消防通道占用", "积水")),
    )
    failures: dict[str, list[str]] = {}
    checked = 0
    for url in urls:
        response = operator.get(url, params={"lang": lang}, follow_redirects=False)
        if response.status_code in (301, 302, 303, 307) or "text/html" not in response.headers.get(
            "content-type", ""
        ):
            continue
        assert response.status_code < 500, f"{url}: {response.status_code}"
        assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in response.text, url
        chunks, verbatim = visible(response.text)
        if verbatim and not url.startswith(VERBATIM_PAGES):
            failures.setdefault(url, []).append(
                'translate="no" used outside the pages that show machine text'
            )
        if found := problems(chunks, lang, typed):
            failures[url] = found
        checked += 1
    assert checked >= 12, f"only {checked} pages answered with HTML"
    assert not failures, "\n".join(f"{url}:\n  " + "\n  ".join(found[:12]) for url, found in failures.items())


def test_login_page_in_both_languages(towns: Seeded) -> None:  # noqa: F811
    with TestClient(create_app(towns.settings)) as client:
        for lang in ("zh", "en"):
            chunks, _ = visible(client.get("/console/login", params={"lang": lang}).text)
            assert chunks and not problems(chunks, lang), problems(chunks, lang)
            assert TEXT[lang]["login"] in chunks


def test_evidence_reads_as_words_in_both_languages(operator: TestClient, extra: Extra) -> None:
    """The gas case's evidence with the field's name, unit and the rule's threshold; the camera's as a
    place and what happened, with neither its UUID nor the rule's id."""
    zh = " ".join(visible(operator.get(f"/console/cases/{extra.gas_case}", params={"lang": "zh"}).text)[0])
    en = " ".join(visible(operator.get(f"/console/cases/{extra.gas_case}", params={"lang": "en"}).text)[0])
    assert "可燃气体浓度 32 %LEL ≥ 20 %LEL" in zh, zh
    assert "Combustible gas 32 %LEL ≥ 20 %LEL" in en, en
    assert "时限" in zh and "督办" in zh  # the deadline warning and the supervision order, in Chinese
    camera = operator.get(f"/console/cases/{extra.camera_case}", params={"lang": "zh"}).text
    text = " ".join(visible(camera)[0])
    assert "摄像头画面 · 消防通道" in text and "画面中有物体停留" in text, text
    assert extra.camera_event not in camera  # not even in an attribute


def test_silences_read_as_sentences(operator: TestClient) -> None:
    zh = " ".join(visible(operator.get("/console/alerts", params={"lang": "zh"}).text)[0])
    assert "静默了竹竿巷社区的规则「可燃气体浓度异常」" in zh, zh
    assert "原因：燃气公司检修管线" in zh, zh
    en = " ".join(visible(operator.get("/console/alerts", params={"lang": "en"}).text)[0])
    assert "silenced rule “Unusual gas level” in 竹竿巷社区 until" in en, en
    assert "静默了设备「水位 · 地下车库入口」" in zh, zh  # a device by its type and place
    assert TEXT["en"]["silence_hours"] in en and TEXT["en"]["hours"] not in en


def test_a_silence_form_refused_says_why_in_the_users_language(
    operator: TestClient,
    towns: Seeded,  # noqa: F811
) -> None:
    form = operator.get("/console/alerts", params={"lang": "zh"}).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    refused = operator.post("/console/silences", data={"csrf": csrf.group(1), "hours": "2"})
    text = " ".join(visible(refused.text)[0])
    assert TEXT["zh"]["sil_incomplete"] in text, text
    assert not problems(visible(refused.text)[0], "zh", tuple(towns.tokens))


@pytest.mark.parametrize(
    "chunk",
    [
        "{'level_cm': 72}",
        "g-south",
        "flooding",
        "accept",
        "3f2b8c1e-9d7a-4e55-8a0b-2c6f1e9d4a77",
        "2026-12-05T04:34:01Z",
        "None",
        "stopped_planned",
        "flooding-water-level fired on wl-01",
    ],
)
def test_the_checks_catch_what_the_issue_saw(chunk: str) -> None:
    """The checks themselves: each of the raw things operators saw is caught."""
    assert problems([chunk], "zh")
