"""``headwater playground``: an in-memory server on this machine with the playground page (docs/playground.md)."""

from __future__ import annotations

import argparse
import webbrowser
from typing import Any, TextIO

from .. import EngineError
from ..config import Config
from .serve import finish
from .table import EXIT_USAGE, Command, arg


def _cmd_playground(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..service.server import serve  # grpc loads only for the server

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be 0 to 65535, got {args.port}", file=err)
        return EXIT_USAGE

    def ready(server: Any) -> None:
        url = f"http://127.0.0.1:{server.http.port}/"
        print(f"Headwater playground: {url}  (gRPC on {server.address}; nothing is written to disk; Ctrl-C stops)",
              file=out, flush=True)
        if args.open:
            webbrowser.open(url)

    try:
        config = Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True,
                           http_address=f"127.0.0.1:{args.port}", log_level=args.log_level)
        code = serve(config, ready=ready)
    except (EngineError, OSError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    return finish(code, out, err)


COMMANDS = (
    Command(
        "playground", help="open the playground: a web page to write a schema, load data, check and see lineage",
        description="Start an in-memory server on this machine (127.0.0.1 only, nothing written to disk) and print "
                    "the URL of the playground page: a schema editor with diagnostics as you type, relationships, "
                    "assertions, checks with their explanation, and the lineage graph of any object, with the path "
                    "of a denial highlighted. Each browser tab edits its own scratch workspace; import and export "
                    "it as a validation file (headwater validate runs it). Serves until Ctrl-C. docs/playground.md",
        args=(arg("--port", type=int, default=8080, metavar="PORT",
                  help="HTTP port on 127.0.0.1 (default 8080; 0 picks a free port)"),
              arg("--open", action="store_true", help="also open the page in the default web browser"),
              arg("--log-level", choices=["debug", "info", "warning", "error"], default="warning",
                  help="default warning")),
        run=_cmd_playground),
)
