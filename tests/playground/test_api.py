"""The playground's JSON API over a real server: scratch workspaces (schema diagnostics, rows, assertions, checks,
lineage, import/export), the server's data read-only behind a token, and same-origin only."""

from __future__ import annotations

import yaml

from headwater.engine.validationfile import run_validation_text

from .conftest import EXAMPLE, TOKENS, Api

BAD_SCHEMA = "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewr\n}\n"


def test_the_page_is_served_at_the_root_with_its_assets_and_no_cors(api: Api) -> None:
    status, page, headers = api.call("GET", "/")
    assert status == 200 and "<title>Headwater playground</title>" in page
    assert "default-src 'self'" in headers["content-security-policy"]
    assert not any(h.lower().startswith("access-control") for h in headers)
    assets = [line.split('"')[1] for line in page.split() if line.startswith(('src="/playground/', 'href="/playground/'))]
    assert assets, page
    for asset in assets:
        status, _, headers = api.call("GET", asset)
        assert status == 200, asset
        assert not any(h.lower().startswith("access-control") for h in headers)
    for bad in ("/playground/..%2Fworkspaces.py", "/playground/.hidden", "/playground/nope.js", "/playground/x.py"):
        assert api.call("GET", bad)[0] == 404, bad


def test_a_preflight_and_a_cross_site_form_are_refused(api: Api) -> None:
    status, _, headers = api.call("OPTIONS", "/api/playground/workspaces")
    assert status == 405 and not any(h.lower().startswith("access-control") for h in headers)
    ws = api.workspace()
    status, body, _ = api.call("PUT", ws + "/schema", raw=b"schema=definition+user+{}",
                               content_type="application/x-www-form-urlencoded")
    assert status == 415, body


def test_workspaces_have_unguessable_ids_and_are_isolated(api: Api) -> None:
    a, b = api.workspace(), api.workspace()
    assert a != b and len(a.rsplit("/", 1)[1]) >= 32
    assert api.call("PUT", a + "/schema", {"schema": "definition user {}"})[0] == 200
    assert api.call("GET", a)[1]["schema"] == "definition user {}"
    assert api.call("GET", b)[1]["schema"] == ""
    status, body, _ = api.call("GET", "/api/playground/workspaces/not-a-real-id")
    assert status == 404 and "create a new one" in body["error"]


def test_schema_diagnostics_name_the_line_and_column(api: Api) -> None:
    ws = api.workspace()
    status, body, _ = api.call("PUT", ws + "/schema", {"schema": BAD_SCHEMA})
    assert status == 200
    [problem] = body["diagnostics"]
    assert (problem["severity"], problem["line"], problem["column"]) == ("error", 5, 23), problem
    assert "viewr" in problem["message"]
    status, body, _ = api.call("PUT", ws + "/schema", {"schema": BAD_SCHEMA.replace("viewr", "viewer")})
    assert body["diagnostics"] == []
    status, body, _ = api.call("PUT", ws + "/schema", {"schema": "definition user {\n  relation\n}"})
    assert body["diagnostics"][0]["line"] == 3 or body["diagnostics"][0]["line"] == 2, body


def test_rows_are_stored_all_or_nothing_with_each_bad_row_named(api: Api) -> None:
    ws = api.workspace()
    schema = "use expiration\n" + BAD_SCHEMA.replace("viewr", "viewer").replace("user\n", "user | user with expiration\n")
    assert api.call("PUT", ws + "/schema", {"schema": schema})[1]["diagnostics"] == []
    good = {"resource": "doc:1", "relation": "viewer", "subject": "user:ann"}
    rows = [good, {"resource": "doc:1", "relation": "editor", "subject": "user:bob"},
            {"text": "doc:2#viewer@user:cat[expiration:2030-01-01T00:00:00Z]"}, {"resource": "doc:1"}, good]
    status, body, _ = api.call("PUT", ws + "/relationships", {"relationships": rows})
    assert status == 422 and body["stored"] is False
    errors = body["errors"]
    assert errors[0] is None and errors[2] is None
    assert "editor" in errors[1] and "relation is missing" in errors[3] and "repeats row 1" in errors[4]
    assert api.call("GET", ws)[1]["relationships"] == []
    status, body, _ = api.call("PUT", ws + "/relationships", {"relationships": [rows[0], rows[2]]})
    assert status == 200 and body == {"stored": True, "errors": [None, None]}
    stored = api.call("GET", ws)[1]["relationships"]
    assert [r["text"] for r in stored] == ["doc:1#viewer@user:ann", "doc:2#viewer@user:cat[expiration:2030-01-01T00:00:00Z]"]
    assert stored[1]["expiration"] == "2030-01-01T00:00:00Z"


def test_assertions_run_with_pass_and_fail_at_their_lines(api: Api) -> None:
    ws = api.example()
    text = ("assertions:\n  assertTrue:\n    - output:o1#view@user:frank\n    - output:o1#view@user:bob\n"
            "  assertFalse:\n    - output:o1#view@user:bob\n")
    status, body, _ = api.call("POST", ws + "/assertions", {"assertions": text})
    assert status == 200 and body["ok"] is False and body["load_error"] is None
    assert [(a["line"], a["passed"]) for a in body["assertions"]] == [(3, True), (4, False), (6, True)]
    status, body, _ = api.call("POST", ws + "/assertions", {"assertions": "schema: nope\n"})
    assert status == 400 and "only `assertions` and `validation`" in body["error"]
    status, body, _ = api.call("POST", ws + "/assertions", {})
    assert body["ok"] is False  # the stored text is still the one above


def test_the_examples_assertions_all_pass(api: Api) -> None:
    ws = api.example()
    status, body, _ = api.call("POST", ws + "/assertions", {})
    assert status == 200 and body["ok"], body
    assert len(body["assertions"]) == 22 and all(a["passed"] for a in body["assertions"])


def test_a_denied_check_is_explained_with_the_lineage_path_of_the_label(api: Api) -> None:
    ws = api.example()
    status, body, _ = api.call("POST", ws + "/check", {"resource": "output:o1", "permission": "view",
                                                        "subject": "user:bob"})
    assert status == 200 and body["permissionship"] == "NO_PERMISSION" and not body["allowed"]
    assert body["summary"][0] == "denied: output:o1#view for user:bob"
    assert body["tree"]["kind"] == "check" and body["tree"]["children"]
    [path] = body["denial_paths"]
    assert path["label"] == "sensitivity:confidential" and path["object"] == "dataset:claims"
    assert [s["relation"] for s in path["steps"]] == ["produced_by", "trained_on", "derived_from"]
    status, body, _ = api.call("POST", ws + "/check", {"resource": "output:o1", "permission": "view",
                                                        "subject": "user:frank"})
    assert body["allowed"] and body["denial_paths"] == []
    status, body, _ = api.call("POST", ws + "/check", {"resource": "output:o1", "permission": "nope",
                                                        "subject": "user:frank"})
    assert status == 400 and "nope" in body["error"]


def test_the_lineage_graph_has_labels_paths_declassifications_and_the_denial(api: Api) -> None:
    ws = api.example()
    status, body, _ = api.call("GET", ws + "/lineage?object=dataset:claims_anon&permission=read&subject=user:bob")
    assert status == 200, body
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["dataset:claims_anon"]["role"] == "self"
    assert nodes["dataset:claims"]["role"] == "ancestor"
    assert {"model:risk", "output:o1", "dataset:merged"} <= {i for i, n in nodes.items() if n["role"] == "descendant"}
    assert {"source": "dataset:claims_anon", "relation": "derived_from", "target": "dataset:claims"} in body["edges"]
    [label] = nodes["dataset:claims_anon"]["labels"]
    assert label["level"] == "confidential" and label["categories"] == []
    assert label["values"][0]["paths"][0]["text"] == "dataset:claims_anon -derived_from-> dataset:claims"
    assert nodes["dataset:claims_anon"]["declassified"] == [{
        "value": "pii", "actor": "user:stew", "reason": "k-anonymized (k=10) before training",
        "classification": "sensitivity"}]
    assert body["check"]["denial_paths"][0]["steps"] == [
        {"source": "dataset:claims_anon", "relation": "derived_from", "target": "dataset:claims"}]
    assert api.call("GET", ws + "/lineage")[0] == 400


def test_export_runs_under_validate_and_imports_back_unchanged(api: Api) -> None:
    ws = api.example()
    status, text, headers = api.call("GET", ws + "/export")
    assert status == 200 and headers["content-type"].startswith("application/yaml")
    report = run_validation_text(text)
    assert report.ok and len(report.assertions) == 22 and report.relationships == 41
    assert "// declassified by user:stew: k-anonymized (k=10) before training" in text
    original = yaml.safe_load(EXAMPLE.read_text())
    assert yaml.safe_load(text)["assertions"] == original["assertions"]
    other = api.workspace()
    assert api.call("PUT", other + "/import", {"yaml": text})[0] == 200
    assert api.call("GET", other + "/export")[1] == text
    status, body, _ = api.call("PUT", other + "/import", {"yaml": "schemaFile: policy.zed\n"})
    assert status == 400 and "inline" in body["error"]


def test_the_example_is_served(api: Api) -> None:
    status, body, _ = api.call("GET", "/api/playground/examples/ai-lineage")
    assert status == 200 and body["yaml"] == EXAMPLE.read_text()
    assert api.call("GET", "/api/playground/examples/..%2Fworkspaces")[0] == 404


def test_the_servers_own_data_needs_a_check_token_and_is_read_only(api: Api, server) -> None:
    server.engine.write_schema(EXAMPLE.read_text().split("schema: |-\n")[1].split("relationships:")[0]
                               .replace("\n  ", "\n").strip())
    server.engine.touch("dataset:raw#label@sensitivity:confidential", "dataset:copy#derived_from@dataset:raw",
                        "dataset:copy#viewer@user:x")
    assert api.call("GET", "/api/playground/server")[0] == 401
    assert api.call("GET", "/api/playground/server", token=TOKENS["schemer"][0])[0] == 403
    status, body, _ = api.call("GET", "/api/playground/server", token=TOKENS["reader"][0])
    assert status == 200 and body["read_only"] and "classification sensitivity" in body["schema"]
    assert len(body["relationships"]) == 3
    status, body, _ = api.call("GET", "/api/playground/server/lineage?object=dataset:copy",
                               token=TOKENS["reader"][0])
    assert status == 200 and [e["target"] for e in body["edges"]] == ["dataset:raw"]
    status, body, _ = api.call("POST", "/api/playground/server/check", {
        "resource": "dataset:copy", "permission": "read", "subject": "user:x"}, token=TOKENS["reader"][0])
    assert status == 200 and body["denial_paths"][0]["object"] == "dataset:raw"
    status, text, _ = api.call("GET", "/api/playground/server/export", token=TOKENS["reader"][0])
    assert status == 200 and "dataset:copy#derived_from@dataset:raw" in text
    # no route writes the server's data: every write goes to a scratch workspace, whatever the token
    for path in ("/api/playground/server/schema", "/api/playground/server/relationships",
                 "/api/playground/server/import"):
        assert api.call("PUT", path, {"schema": ""}, token=TOKENS["admin"][0])[0] in (404, 405)
    ws = api.workspace()
    api.call("PUT", ws + "/import", {"yaml": EXAMPLE.read_text()}, token=TOKENS["admin"][0])
    assert server.engine.read_relationships().relationships.__len__() == 3
