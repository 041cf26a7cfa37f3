"""The HTML compliance report, looked at in headless Chromium: it loads from a file, shows its tables and the
rows we know, and fetches nothing.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it when missing), never a
browser of its own. Without Chromium this test fails, saying how to install it: CI must really run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Config, Engine
from headwater.engine.governance.report import build_report
from headwater.engine.governance.report_render import render_html
from headwater.engine.store.memory import MemoryStore

from tests.cli.conftest import POLICY, example_relationships

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture()
def page_file(tmp_path: Path) -> Path:
    engine = Engine(MemoryStore(), config=Config.of(audit=True))
    engine.write_schema(POLICY.read_text(encoding="utf-8"))
    token = engine.touch(*example_relationships(), actor="user:stew", reason="anonymized").token
    engine.touch("output:o2#requester@user:bob")
    path = tmp_path / "report.html"
    path.write_text(render_html(build_report(engine, since=token)), encoding="utf-8")
    return path


def test_the_html_report_in_headless_chromium(page_file: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    fetched: list[str] = []

    def refuse_the_network(route, request) -> None:  # type: ignore[no-untyped-def]
        if request.url.startswith("file://"):
            route.continue_()
        else:
            fetched.append(request.url)
            route.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", refuse_the_network)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            response = page.goto(page_file.as_uri())
            assert response is not None and response.ok
            assert page.title().startswith("Headwater compliance report at revision ")
            summary = page.locator("table#summary")
            assert summary.is_visible()
            assert summary.locator("tbody tr").count() == 7  # 4 levels, 3 categories
            assert page.locator("table").count() >= 10
            # pii (the fifth value): output:o2 inherits it through its lineage, alice alone may view it
            row = page.locator("table#v4-objects tbody tr", has_text="output:o2")
            assert row.count() == 1 and row.is_visible()
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            assert cells[0] == "output:o2" and cells[1] == "inherited"
            assert cells[2] == "output:o2 -produced_by-> model:fraud -trained_on-> dataset:claims"
            assert (cells[3], cells[4]) == ("view", "user:alice")
            # the declassification on claims_anon, with actor and reason
            declassified = page.locator("table#v4-declassified tbody tr", has_text="dataset:claims_anon")
            assert declassified.count() == 2 and "user:stew" in declassified.first.inner_text()
            # --since: bob's new request is listed among the changes
            assert page.locator("table#changes", has_text="output:o2#requester@user:bob").is_visible()
            assert page.locator("h2", has_text="sensitivity:restricted").is_visible()
            assert errors == [] and fetched == []
        finally:
            browser.close()

