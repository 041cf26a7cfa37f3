"""``headwater check``, ``check-bulk``, ``expand``, ``lookup-resources`` and ``lookup-subjects``: questions about
permissions.

Example::

    $ headwater check dataset:claims read user:alice --db claims.db
    HAS_PERMISSION  at hw1_...
    $ printf 'dataset:claims read user:alice\ndataset:claims read user:bob\n' | headwater check-bulk --db claims.db
    dataset:claims read user:alice  HAS_PERMISSION
    dataset:claims read user:bob  NO_PERMISSION
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from .. import BulkCheckItem
from ..expand import format_tree
from ..membership import found_subjects
from .shared import (CONTEXT, DB_OR_SERVER, SERVER, connect, context_arg, engine_errors, json_flag, plural,
                     print_json, read_input)
from .table import EXIT_OK, EXIT_PROBLEMS, Command, arg


@engine_errors
def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = context_arg(args.context)
    with connect(args) as engine:
        result = engine.check(args.resource, args.permission, args.subject, context=context, explain=args.explain)
    if args.json:
        data = {"permissionship": result.permissionship.name, "missing_context": list(result.missing_context),
                "token": result.token}
        if result.explanation is not None:
            data["explanation"] = {"summary": list(result.explanation.summary),
                                   "tree": result.explanation.tree.render()}
        print_json(data, out)
    else:
        extra = f" (missing context: {', '.join(result.missing_context)})" if result.missing_context else ""
        print(f"{result.permissionship.name}{extra}  at {result.token}", file=out)
        if result.explanation is not None:
            print(result.explanation.render(), file=out)
    return EXIT_OK if result.allowed else EXIT_PROBLEMS


@engine_errors
def _cmd_expand(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = context_arg(args.context)
    with connect(args) as engine:
        tree, token = engine.expand(args.resource, args.permission, context=context)
    subjects = [(f.validation_string(), "/".join(f"<{r}>" for r in sorted(f.relations)))
                for f in found_subjects(tree)]
    if args.json:
        print_json({"tree": tree.as_dict(), "token": token,
                    "subjects": [{"subject": s, "relations": r} for s, r in subjects]}, out)
        return EXIT_OK
    print(format_tree(tree), file=out)
    print(f"{plural(len(subjects), 'subject')} at {token}:", file=out)
    for s, r in subjects:
        print(f"  [{s}] is {r}", file=out)
    return EXIT_OK


def _bulk_items(text: str, default_context: dict[str, Any] | None) -> list[BulkCheckItem]:
    """The items of a check-bulk file: `RESOURCE PERMISSION SUBJECT [CONTEXT_JSON]` a line (blank lines and //
    comments skipped)."""
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.strip().split(None, 3)
        if not words or words[0].startswith("//"):
            continue
        if len(words) < 3:
            raise ValueError(f"line {n}: expected RESOURCE PERMISSION SUBJECT [CONTEXT_JSON], got {line.strip()!r}")
        context = context_arg(words[3]) if len(words) == 4 else default_context
        items.append(BulkCheckItem(words[0], words[1], words[2], context))
    return items


@engine_errors
def _cmd_check_bulk(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    items = _bulk_items(read_input(args.file), context_arg(args.context))
    with connect(args) as engine:
        answers = engine.check_bulk(items)
    status = EXIT_OK
    for a in answers:
        what = {"resource": str(a.item.resource), "permission": a.item.permission, "subject": str(a.item.subject)}
        r = a.result
        if r is None or not r.allowed:
            status = EXIT_PROBLEMS
        if args.json:
            print_json({**what, "permissionship": r.permissionship.name if r else None,
                        "missing_context": list(r.missing_context) if r else [], "token": r.token if r else None,
                        "error": str(a.error) if a.error is not None else None}, out)
        elif r is None:
            print(f"{' '.join(what.values())}  error: {a.error}", file=out)
        else:
            print(f"{' '.join(what.values())}  {r.permissionship.name}{_missing(r.missing_context)}", file=out)
    print(f"{plural(len(answers), 'check')}", file=err)
    return status


def _missing(context: Sequence[str]) -> str:
    """The missing caveat parameters of a conditional lookup result, as printed after it."""
    return f"  (missing context: {', '.join(context)})" if context else ""


@engine_errors
def _cmd_lookup_resources(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as engine:
        page = engine.lookup_resources(args.resource_type, args.permission, args.subject,
                                       context=context_arg(args.context), limit=args.page_size, cursor=args.cursor)
    for r in page.results:
        if args.json:
            print_json({"resource": f"{args.resource_type}:{r.resource_id}", "permissionship": r.permissionship.name,
                        "missing_context": list(r.missing_context)}, out)
        else:
            print(f"{args.resource_type}:{r.resource_id}  {r.permissionship.name}{_missing(r.missing_context)}",
                  file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


@engine_errors
def _cmd_lookup_subjects(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    subject_type, _, relation = args.subject_type.partition("#")
    with connect(args) as engine:
        page = engine.lookup_subjects(args.resource, args.permission, subject_type, relation or None,
                                      context=context_arg(args.context), limit=args.page_size, cursor=args.cursor)
    for r in page.results:
        excluded = f" - {{{', '.join(str(x) for x in r.excluded)}}}" if r.excluded else ""
        if args.json:
            print_json({"subject": str(r.subject), "excluded": [str(x) for x in r.excluded],
                        "permissionship": r.permissionship.name, "missing_context": list(r.missing_context)}, out)
        else:
            print(f"{r.subject}{excluded}  {r.permissionship.name}{_missing(r.missing_context)}", file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


RESOURCE = arg("resource", metavar="RESOURCE", help="e.g. document:readme")
PERMISSION = arg("permission", metavar="PERMISSION", help="e.g. view")
# The options both lookups take after their three positional arguments.
LOOKUP_OPTIONS = (DB_OR_SERVER, CONTEXT,
                  arg("--page-size", type=int, help="return one page of this size"),
                  arg("--cursor", help="continue from a previous page"),
                  json_flag("print JSON lines"), *SERVER)

COMMANDS = (
    Command(
        "check", help="check one permission",
        description="Answer one check: does SUBJECT have PERMISSION on RESOURCE? Prints HAS_PERMISSION, "
                    "NO_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat parameters) and the "
                    "revision token. Exit 0 for HAS_PERMISSION, 1 otherwise (2 on errors).",
        args=(RESOURCE, PERMISSION,
              arg("subject", metavar="SUBJECT", help="e.g. user:alice or group:eng#member"),
              DB_OR_SERVER,
              CONTEXT, json_flag("print the result as JSON"),
              arg("--explain", action="store_true",
                  help="say why: the relationships that granted it, or why it was denied (a missing clearance "
                       "and the lineage path that brought the label, ...), then the full tree"), *SERVER),
        run=_cmd_check),
    Command(
        "check-bulk", help="check many permissions at one revision",
        description="Check every item of FILE at one revision (SpiceDB's CheckBulkPermissions): one item a line, "
                    "`RESOURCE PERMISSION SUBJECT [CONTEXT_JSON]` (blank lines and // comments skipped). Prints each "
                    "item with HAS_PERMISSION, NO_PERMISSION, CONDITIONAL_PERMISSION or its own error. Exit 0 when "
                    "every item has the permission, 1 otherwise (2 when the command cannot run).",
        args=(arg("file", nargs="?", default="-", metavar="FILE", help="the items; '-' (default) reads stdin"),
              DB_OR_SERVER, arg("--context", metavar="JSON", help="caveat context for items without their own"),
              json_flag("print JSON lines: resource, permission, subject, permissionship, missing_context, "
                        "token, error"), *SERVER),
        run=_cmd_check_bulk),
    Command(
        "expand", help="print the subject tree of a permission",
        description="Expand RESOURCE#PERMISSION fully (SpiceDB's ExpandPermissionTree): print the tree (union, "
                    "intersection and exclusion nodes down to the direct subjects of each relation; `[...]` marks a "
                    "subject granted only under a caveat), then its terminal subjects, each with the "
                    "resource#relation through which it is reached, in validation-file form.",
        args=(RESOURCE, PERMISSION, DB_OR_SERVER, CONTEXT, json_flag("print the tree and the subjects as JSON"),
              *SERVER),
        run=_cmd_expand),
    Command(
        "lookup-resources", help="every resource of a type on which a subject has a permission",
        description="Print every RESOURCE_TYPE object on which SUBJECT has PERMISSION, sorted by id, each "
                    "HAS_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat parameters). Complete "
                    "unless --page-size is given, then a cursor to continue is printed on stderr.",
        args=(arg("resource_type", metavar="RESOURCE_TYPE"), arg("permission", metavar="PERMISSION"),
              arg("subject", metavar="SUBJECT"), *LOOKUP_OPTIONS),
        run=_cmd_lookup_resources),
    Command(
        "lookup-subjects", help="every subject of a type with a permission on a resource",
        description="Print every subject of SUBJECT_TYPE (or SUBJECT_TYPE#relation) with PERMISSION on RESOURCE; "
                    "a wildcard answer is printed as `type:*` with the subjects it does not cover.",
        args=(arg("resource", metavar="RESOURCE"), arg("permission", metavar="PERMISSION"),
              arg("subject_type", metavar="SUBJECT_TYPE"), *LOOKUP_OPTIONS),
        run=_cmd_lookup_subjects),
)
