"""``headwater context set|use|list|remove``: named servers to talk to, like ``zed context``.

A context is a server address with its bearer token and TLS settings. They are kept in
``contexts.toml`` in the configuration folder (``$HEADWATER_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/headwater``, else ``~/.config/headwater``), a file only its owner may read
(mode 0600). The token goes to the system keyring instead when the ``keyring`` package is
installed with a usable backend (not when ``HEADWATER_KEYRING=0`` or ``--no-keyring``).

With a current context (``context use``), a command given neither ``--db`` nor ``--server``
talks to that context's server; ``--profile NAME`` (or ``$HEADWATER_CONTEXT``) picks another
one. (``--context`` is the caveat-context JSON of ``check`` and the lookups, hence ``--profile``.)

Example::

    $ headwater context set prod grpc.example.com:50051 --token hw_live_... --tls
    $ headwater context use prod
    $ headwater check document:readme view user:alice      # asks grpc.example.com:50051
    $ headwater context list
    * prod  grpc.example.com:50051  tls  token hw_l…(32 chars)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from .profiles import KEYRING_SERVICE, Profile, contexts_file, keyring_module, load, mask, save
from .shared import engine_errors, print_json
from .table import EXIT_OK, EXIT_PROBLEMS, Command, Group, arg

# --- the commands ------------------------------------------------------------------------------


@engine_errors
def _cmd_set(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    current, profiles = load()
    token = args.token or None
    ring = None if args.no_keyring else keyring_module()
    if token and ring is not None:
        ring.set_password(KEYRING_SERVICE, args.name, token)
    tls = bool(args.tls or args.tls_ca or args.tls_cert) and not args.insecure
    files = {k: str(Path(v).resolve()) if v else None for k, v in
             (("tls_ca", args.tls_ca), ("tls_cert", args.tls_cert), ("tls_key", args.tls_key))}
    profiles[args.name] = Profile(args.name, args.address, token, tls, **files,
                                  token_in_keyring=bool(token and ring is not None))
    save(current or args.name, profiles)
    where = "the system keyring" if token and ring is not None else str(contexts_file())
    print(f"context {args.name}: {args.address}" + (" (tls)" if tls else "")
          + (f", token in {where}" if token else "") + ("; now current" if not current else ""), file=out)
    return EXIT_OK


@engine_errors
def _cmd_use(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _, profiles = load()
    if args.name not in profiles:
        print(f"error: no context named {args.name!r} (headwater context list shows them)", file=err)
        return EXIT_PROBLEMS
    save(args.name, profiles)
    print(f"current context: {args.name} ({profiles[args.name].address})", file=out)
    return EXIT_OK


@engine_errors
def _cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    current, profiles = load()
    rows = [{"name": p.name, "current": p.name == current, "address": p.address, "tls": p.tls,
             "tls_ca": p.tls_ca, "tls_cert": p.tls_cert, "tls_key": p.tls_key, "token": mask(p.token),
             "token_store": "keyring" if p.token_in_keyring else ("file" if p.token else None)}
            for p in sorted(profiles.values(), key=lambda p: p.name)]
    if args.json:
        print_json({"contexts": rows, "file": str(contexts_file())}, out)
        return EXIT_OK
    if not rows:
        print(f"no contexts (add one: headwater context set NAME ADDR); file {contexts_file()}", file=err)
    for r in rows:
        print(f"{'*' if r['current'] else ' '} {r['name']}  {r['address']}  {'tls' if r['tls'] else 'plaintext'}  "
              f"token {r['token']}", file=out)
    return EXIT_OK


@engine_errors
def _cmd_remove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    current, profiles = load()
    gone = profiles.pop(args.name, None)
    if gone is None:
        print(f"error: no context named {args.name!r}", file=err)
        return EXIT_PROBLEMS
    if gone.token_in_keyring and (ring := keyring_module()) is not None:
        try:
            ring.delete_password(KEYRING_SERVICE, args.name)
        except Exception:  # noqa: BLE001 - already gone from the keyring
            pass
    save(None if current == args.name else current, profiles)
    print(f"removed context {args.name}", file=out)
    return EXIT_OK


_NAME = arg("name", metavar="NAME", help="the context's name")

COMMANDS = (
    Group("context", help="named servers (address, token, TLS) that commands talk to, like zed context",
          description="Save servers under names and pick the current one; a command given neither --db nor "
                      "--server talks to the current context's server (or --profile NAME's, or "
                      "$HEADWATER_CONTEXT's). Stored in $HEADWATER_CONFIG_DIR (else $XDG_CONFIG_HOME/headwater, "
                      "else ~/.config/headwater)/contexts.toml, mode 0600; tokens in the system keyring when the "
                      "keyring package is installed with a usable backend.",
          help_when_bare=True),
    Command("context set", help="save (or replace) a context; the first one becomes current",
            description="Save the server at ADDR as context NAME, with its token and TLS settings.",
            args=(_NAME, arg("address", metavar="ADDR", help="host:port of a `headwater serve`"),
                  arg("--token", help="the bearer token to send"),
                  arg("--tls", action="store_true", help="use TLS with the system's roots"),
                  arg("--tls-ca", metavar="FILE", help="PEM CA bundle that signed the server's certificate "
                                                       "(implies --tls)"),
                  arg("--tls-cert", metavar="FILE", help="PEM client certificate for mutual TLS (implies --tls)"),
                  arg("--tls-key", metavar="FILE", help="PEM private key of --tls-cert"),
                  arg("--insecure", action="store_true", help="plaintext, no TLS (the default without --tls*)"),
                  arg("--no-keyring", action="store_true", help="keep the token in the file even if a system "
                                                                "keyring is available")),
            run=_cmd_set),
    Command("context use", help="make a context the current one", description="Make context NAME the current one.",
            args=(_NAME,), run=_cmd_use),
    Command("context list", help="list the contexts (tokens masked)",
            description="List the saved contexts; `*` marks the current one. Tokens are never printed in full.",
            args=(arg("--json", action="store_true", help="print as JSON"),), run=_cmd_list),
    Command("context remove", help="forget a context", description="Forget context NAME (and its keyring token).",
            args=(_NAME,), run=_cmd_remove),
)
