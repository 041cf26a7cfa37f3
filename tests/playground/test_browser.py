"""The playground page in headless Chromium (Debian's /usr/bin/chromium through Playwright; Playwright's own browsers
are never downloaded): load the AI-lineage example, see a schema error at its line and fix it, add relationships
(a bad one marked), run the assertions, explain a denied check with its lineage path highlighted, export the
workspace and validate it with the CLI, read a lineage graph of 60 objects, and view the server's own data read-only
with a token. Every request that is not to the
server on 127.0.0.1 is blocked and counted: the page needs no network. Screenshots go to docs/images/playground-*.png
(docs/playground.md shows playground-denial.png).

Without Chromium this module fails (CI installs it: .ci/run); it never skips."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from playwright.sync_api import Page, Route, expect, sync_playwright

from headwater.engine.service.server import HeadwaterServer

from .conftest import EXAMPLE, REPO, TOKENS

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "docs" / "images"
HEADWATER = Path(sys.executable).with_name("headwater")
SCHEMA = yaml.safe_load(EXAMPLE.read_text())["schema"]
ASSERTIONS = EXAMPLE.read_text().split("\nassertions:", 1)[1]
ERIN = "    - output:o1#view@user:erin\n"


@pytest.fixture(scope="module")
def browser_page(server: HeadwaterServer) -> Iterator[tuple[Page, list[str]]]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)")
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        context.set_default_timeout(10_000)
        context.route("**/*", local_only)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{server.http.port}/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield page, blocked
        assert errors == []
        browser.close()


def _replace_editor_text(page: Page, editor: str, text: str) -> None:
    page.click(f"{editor} .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def test_from_the_example_to_a_denial_explained_on_the_lineage_graph(browser_page: tuple[Page, list[str]],
                                                                      tmp_path: Path) -> None:
    page, blocked = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.click("#load-example")
    expect(page.locator("#row-count")).to_have_text("41 relationships")
    expect(page.locator("#schema-state")).to_have_text("✔ compiles")

    # a schema error, shown at its line as you type (the list and the editor's own mark), then fixed
    broken = SCHEMA.replace("permission view = requester & cleared", "permission view = requestor & cleared")
    line = SCHEMA.splitlines().index("    permission view = requester & cleared") + 1
    _replace_editor_text(page, "#schema-editor", broken)
    problem = page.locator(f'#diagnostics li[data-line="{line}"]')
    expect(problem).to_contain_text(f"{line}:23 error:")
    expect(problem).to_contain_text("requestor")
    expect(page.locator("#schema-editor .cm-lintRange-error")).to_have_count(1)
    page.screenshot(path=SHOTS / "playground-schema-error.png")
    _replace_editor_text(page, "#schema-editor", SCHEMA)
    expect(page.locator("#schema-state")).to_have_text("✔ compiles")
    expect(page.locator("#diagnostics li")).to_have_count(0)

    # relationships: a bad row is marked with its error and nothing is stored; fixed, the table is saved
    page.click('[data-tab="relationships"]')
    page.click("#add-row")
    row = page.locator('#rows tr[data-row="41"]')
    row.locator('[data-column="resource"]').fill("output:o1")
    row.locator('[data-column="relation"]').fill("requestr")
    row.locator('[data-column="subject"]').fill("user:erin")
    expect(page.locator('#rows tr[data-error-row="41"]')).to_contain_text("requestr")
    expect(page.locator("#rows-state")).to_have_text("✘ not saved")
    page.locator('#rows tr[data-row="41"] [data-column="relation"]').fill("requester")
    expect(page.locator("#rows-state")).to_have_text("✔ saved")
    expect(page.locator("#rows tr.row-error")).to_have_count(0)
    page.screenshot(path=SHOTS / "playground-relationships.png")

    # assertions: erin (restricted, and o1's pii was declassified) may now view o1; asserted false, it fails
    page.click('[data-tab="assertions"]')
    failing = ASSERTIONS.replace("  assertFalse:\n", "  assertFalse:\n" + ERIN)
    _replace_editor_text(page, "#assertions-editor", "assertions:" + failing)
    page.click("#run-assertions")
    expect(page.locator("#assertions-summary")).to_have_text("✘ 1 failed")
    expect(page.locator("#assertion-results li.fail")).to_contain_text("output:o1#view@user:erin")
    expect(page.locator("#assertions-editor .cm-lintRange-error")).to_have_count(1)
    _replace_editor_text(page, "#assertions-editor",
                         "assertions:" + ASSERTIONS.replace("  assertTrue:\n", "  assertTrue:\n" + ERIN))
    page.click("#run-assertions")
    expect(page.locator("#assertions-summary")).to_have_text("✔ all 23 passed")
    page.screenshot(path=SHOTS / "playground-assertions.png")

    # a denied check: the decision, why, the explanation tree, and the path to the label that denies
    page.fill("#check-resource", "output:o1")
    page.fill("#check-permission", "view")
    page.fill("#check-subject", "user:bob")
    page.click("#check")
    expect(page.locator("#decision")).to_have_text("DENIED")
    expect(page.locator("#summary")).to_contain_text("missing `cleared` on sensitivity:confidential")
    page.click("#tree > summary")
    expect(page.locator("#tree li").first).to_be_visible()
    page.click("#tree > summary")  # closed again, so that the screenshot shows the graph
    path = ("output:o1 -produced_by-> model:risk -trained_on-> dataset:claims_anon -derived_from-> dataset:claims")
    expect(page.locator("#denial-path")).to_contain_text(path)
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-highlight", re.compile("dataset:claims_anon\\|derived_from\\|dataset:claims"))
    highlighted = graph.get_attribute("data-highlight").split()
    assert {"dataset:claims", "model:risk", "output:o1", "model:risk|trained_on|dataset:claims_anon"} <= set(highlighted)
    page.locator("#graph canvas").first.click(position={"x": 5, "y": 5})  # the graph has the focus, no selection
    expect(page.locator("#node-details")).to_contain_text("output:o1")
    page.screenshot(path=SHOTS / "playground-denial.png")

    # the declassification on the lineage of claims_anon: who and why
    page.fill("#lineage-object", "dataset:claims_anon")
    page.click("#show-lineage")
    expect(page.locator("#node-details")).to_contain_text(
        "sensitivity:pii declassified by user:stew: k-anonymized (k=10) before training")

    # export the workspace: headwater validate runs it
    with page.expect_download() as download:
        page.click("#export")
    target = tmp_path / "workspace.yaml"
    download.value.save_as(target)
    assert "output:o1#requester@user:erin" in target.read_text()
    done = subprocess.run([str(HEADWATER), "validate", str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "23 of 23 assertions passed, 42 relationships" in done.stdout
    assert blocked == []


def _wide_lineage(count: int) -> str:
    """A validation file whose lineage has ``count`` datasets: raw sources, cleaned copies, features, models."""
    rows = ["dataset:src_0#label@sensitivity:confidential", "dataset:src_1#label@sensitivity:pii",
            "dataset:src_2#label@sensitivity:internal", "dataset:clean_1#scrubbed@sensitivity:pii"]
    for i in range(4):
        rows.append(f"dataset:clean_{i}#derived_from@dataset:src_{i}")
    for i in range(count - 9):
        rows.append(f"dataset:feature_{i}#derived_from@dataset:clean_{i % 4}")
        if i % 3 == 0:
            rows.append(f"dataset:feature_{i}#derived_from@dataset:clean_{(i + 1) % 4}")
    rows += [f"model:m0#trained_on@dataset:feature_{j}" for j in range(count - 9)]
    schema = "\n".join("  " + line if line else "" for line in SCHEMA.splitlines())
    return ("schema: |-\n" + schema + "\nrelationships: |-\n" + "".join(f"  {r}\n" for r in rows))


def test_a_lineage_graph_of_60_objects_is_laid_out(browser_page: tuple[Page, list[str]], tmp_path: Path) -> None:
    page, blocked = browser_page
    source = tmp_path / "wide.yaml"
    source.write_text(_wide_lineage(60))
    page.set_input_files("#import-file", str(source))
    expect(page.locator("#status")).to_have_text("workspace imported")
    page.fill("#lineage-object", "model:m0")
    page.click("#show-lineage")
    expect(page.locator("#graph")).to_have_attribute("data-nodes", "60")  # 51 features, 4 copies, 4 sources
    page.click("#larger")
    page.screenshot(path=SHOTS / "playground-lineage-large.png")
    page.click("#larger")
    assert blocked == []


def test_the_servers_data_is_shown_read_only_with_a_token(browser_page: tuple[Page, list[str]],
                                                         server: HeadwaterServer) -> None:
    page, blocked = browser_page
    server.engine.write_schema(SCHEMA)
    server.engine.touch("dataset:raw#label@sensitivity:confidential", "dataset:copy#derived_from@dataset:raw",
                        "dataset:copy#viewer@user:ann")
    page.once("dialog", lambda dialog: dialog.accept(TOKENS["reader"][0]))
    page.click("#server-view")
    expect(page.locator("#mode")).to_have_text("server data (read-only)")
    expect(page.locator("#row-count")).to_have_text("3 relationships")
    expect(page.locator("#load-example")).to_be_disabled()
    page.fill("#check-resource", "dataset:copy")
    page.fill("#check-permission", "read")
    page.fill("#check-subject", "user:ann")
    page.click("#check")
    expect(page.locator("#denial-path")).to_contain_text("dataset:copy -derived_from-> dataset:raw")
    page.click('[data-tab="schema"]')
    page.click("#schema-editor .cm-content")
    page.keyboard.insert_text("definition oops {}")  # read-only: nothing changes
    expect(page.locator("#schema-editor .cm-content")).not_to_contain_text("oops")
    page.click("#server-view")  # back to the scratch workspace; the token is forgotten
    expect(page.locator("#mode")).to_have_text("scratch workspace")
    assert len(server.engine.read_relationships().relationships) == 3
    assert blocked == []
