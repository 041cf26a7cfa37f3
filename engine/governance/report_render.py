"""The compliance report as CSV (one table a spreadsheet can filter) and as one self-contained HTML page.

CSV: one header, then one row per fact, its kind in the first column (``section``), so a spreadsheet
user filters on one column and sorts on any other:

- ``viewer``: a (value, object, viewer): the object carries the value (``carries``: own, inherited or
  both; ``path``: the lineage paths, `` | ``-separated) and ``subject`` holds ``permission`` on it
  (``status``: allowed or conditional, with ``missing_context``); an object nobody may view has one
  row with an empty subject;
- ``cleared``: a clearance on the value (``subject``, ``expiration``; ``via`` names the userset a
  member holds it through, empty for a direct grant);
- ``declassified``: a declassification in force (``object``, ``actor``, ``reason``, ``token``);
- ``declassification log``: one audit record of a declassification (``operation``, ``record``);
- ``change``: with ``--since``, one relationship change (``kind`` in ``via``, ``operation`` and ``token``).

HTML: one page, inline CSS, no script and no external asset; every value escaped.

Example::

    >>> from headwater.engine.governance.report import Report
    >>> import io
    >>> out = io.StringIO(); render_csv(Report("hw1_x", 1, {}, ("user",), ()), out)
    >>> out.getvalue().splitlines()[0]
    'section,classification,value,kind,object,carries,path,permission,subject,status,missing_context,via,expiration,actor,reason,operation,record,token'
    >>> "<table" in render_html(Report("hw1_x", 1, {}, ("user",), ()))
    False
"""

from __future__ import annotations

import csv
from html import escape
from typing import TextIO

from .report import Declassified, LabeledObject, Report, ValueReport, Viewer

__all__ = ["CSV_COLUMNS", "render_csv", "render_html"]

CSV_COLUMNS = ("section", "classification", "value", "kind", "object", "carries", "path", "permission", "subject",
               "status", "missing_context", "via", "expiration", "actor", "reason", "operation", "record", "token")


def _carries(o: LabeledObject) -> str:
    return "own+inherited" if o.own and o.inherited else "own" if o.own else "inherited"


def _status(v: Viewer) -> str:
    return "conditional" if v.conditional else "allowed"


def _subject(v: Viewer) -> str:
    return v.subject + (f" except {', '.join(v.excluded)}" if v.excluded else "")


def render_csv(report: Report, out: TextIO) -> None:
    """Write ``report`` as one CSV table (columns :data:`CSV_COLUMNS`)."""
    w = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for v in report.values:
        base = {"classification": v.classification, "value": v.value, "kind": v.kind}
        for g in v.cleared:
            w.writerow({**base, "section": "cleared", "subject": g.subject, "status": "caveat " + g.caveat
                        if g.caveat else "", "expiration": g.expiration or ""})
            for m in g.members:
                w.writerow({**base, "section": "cleared", "subject": _subject(m), "status": _status(m),
                            "missing_context": " ".join(m.missing_context), "via": g.subject,
                            "expiration": g.expiration or ""})
        for o in v.objects:
            row = {**base, "section": "viewer", "object": o.object, "carries": _carries(o),
                   "path": " | ".join(o.paths), "permission": o.permission or ""}
            for viewer in o.viewers or (None,):
                w.writerow(row if viewer is None else {**row, "subject": _subject(viewer), "status": _status(viewer),
                                                       "missing_context": " ".join(viewer.missing_context)})
        for section, entries in (("declassified", v.declassified), ("declassification log", v.declassification_log)):
            for d in entries:
                w.writerow({**base, "section": section, "object": d.object, "actor": d.actor or "",
                            "reason": d.reason or "", "operation": d.operation or "",
                            "record": "" if d.record is None else d.record, "token": d.token or ""})
    for c in report.changes:
        w.writerow({"section": "change", "subject": c.relationship, "via": c.kind, "operation": c.operation,
                    "token": c.token})


# --------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#1b1f24;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #d0d7de;padding-bottom:.2em}
h3{margin:1.2em 0 .4em}table{border-collapse:collapse;margin:.4em 0 1em;width:100%}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.meta{color:#57606a}.level{background:#fff8c5}.category{background:#ddf4ff}.tag{padding:1px 6px;border-radius:8px}
.cond{color:#9a6700}.none{color:#57606a;font-style:italic}ul{margin:0;padding-left:1.2em}
"""


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _list(items: list[str], empty: str = "none") -> str:
    if not items:
        return f'<span class="none">{escape(empty)}</span>'
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _viewer_html(v: Viewer) -> str:
    text = _code(v.subject)
    if v.excluded:
        text += " except " + ", ".join(_code(s) for s in v.excluded)
    if v.conditional:
        text += f' <span class="cond">(conditional: needs {escape(", ".join(v.missing_context) or "context")})</span>'
    return text


def _table(caption_id: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{escape(caption_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _declassified_rows(entries: tuple[Declassified, ...]) -> list[tuple[str, ...]]:
    return [(_code(d.object), escape(d.operation or "in force"), escape(d.actor or "?"),
             escape(d.reason or ""), escape("" if d.revision is None else str(d.revision)), _code(d.token or ""))
            for d in entries]


def _value_html(v: ValueReport, n: int) -> str:
    anchor = f"v{n}"
    parts = [f'<h2 id="{anchor}"><span class="tag {escape(v.kind)}">{escape(v.kind)}</span> '
             f"{escape(v.classification)}:{escape(v.value)}</h2>"]
    cleared = [(_code(g.subject), escape(g.caveat or ""), escape(g.expiration or "never"),
                _list([_viewer_html(m) for m in g.members], "direct grant" if not g.members and "#" not in g.subject
                      else "no members"))
               for g in v.cleared]
    parts.append(f"<h3>Who is cleared ({len(v.cleared)} grant{'' if len(v.cleared) == 1 else 's'})</h3>")
    parts.append(_table(f"{anchor}-cleared", ("grant", "caveat", "expires", "members now"), cleared)
                 if cleared else '<p class="none">nobody holds a clearance on this value</p>')
    objects = [(_code(o.object), escape(_carries(o)), _list([_code(p) for p in o.paths], "own label"),
                escape(o.permission or "(none)"), _list([_viewer_html(x) for x in o.viewers], "nobody"))
               for o in v.objects]
    parts.append(f"<h3>Objects carrying it ({len(v.objects)})</h3>")
    parts.append(_table(f"{anchor}-objects", ("object", "carries", "lineage path", "permission", "who may view now"),
                        objects) if objects else '<p class="none">no object carries this value</p>')
    entries = v.declassified + v.declassification_log
    if entries:
        parts.append(f"<h3>Declassifications ({len(entries)})</h3>")
        parts.append(_table(f"{anchor}-declassified", ("object", "operation", "actor", "reason", "revision", "token"),
                            _declassified_rows(entries)))
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """``report`` as one self-contained HTML page: a summary table, then one section per value."""
    title = f"Headwater compliance report at revision {report.revision}"
    summary = [(f'<a href="#v{n}">{escape(v.classification)}:{escape(v.value)}</a>', escape(v.kind),
                str(len(v.cleared)), str(sum(o.own for o in v.objects)), str(sum(o.inherited for o in v.objects)),
                str(len({x.subject for o in v.objects for x in o.viewers})), str(len(v.declassified)))
               for n, v in enumerate(report.values)]
    permissions = ", ".join(f"{escape(t)}: {escape(p)}" for t, p in sorted(report.permissions.items()) if p)
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="meta">token {_code(report.token)}; viewing permissions: {permissions or "none"}; '
            f"viewers listed among {escape(', '.join(report.subject_types) or 'no subject type')}; "
            f"{report.objects} objects listed</p>"]
    body += [f'<p class="meta">note: {escape(note)}</p>' for note in report.notes]
    if report.values:
        body.append(_table("summary", ("value", "kind", "clearance grants", "labeled objects", "inherited by",
                                       "distinct viewers", "declassified on"), summary))
    body += [_value_html(v, n) for n, v in enumerate(report.values)]
    if report.since is not None:
        body.append(f"<h2 id=\"since\">Changes since {_code(report.since)}</h2>")
        body.append(_table("changes", ("revision", "kind", "operation", "relationship"),
                           [(str(c.revision), escape(c.kind), escape(c.operation), _code(c.relationship))
                            for c in report.changes]) if report.changes else '<p class="none">no change</p>')
        rows = [(escape(f"{d.classification}:{d.value}"), _list([_code(o) for o in d.objects_added]),
                 _list([_code(o) for o in d.objects_removed]),
                 _list([f"{_code(o)}: {', '.join(map(escape, s))}" for o, s in d.viewers_added.items()]),
                 _list([f"{_code(o)}: {', '.join(map(escape, s))}" for o, s in d.viewers_removed.items()]),
                 _list([_code(s) for s in d.cleared_added]), _list([_code(s) for s in d.cleared_removed]))
                for d in report.diff]
        body.append(_table("diff", ("value", "objects added", "objects removed", "viewers gained", "viewers lost",
                                    "cleared added", "cleared removed"), rows) if rows
                    else '<p class="none">the report is the same</p>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
