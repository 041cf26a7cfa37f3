"""``headwater token create``: a new bearer token and the entry that lets a server accept it.

The token is random (``hw_`` and 43 URL-safe characters, 256 bits) and printed once, on the
first line of stdout; the entry for the server's ``--token-file`` keeps only its SHA-256, the
digest the server compares presented tokens with (``TokenEntry.from_secret``), so the file
never holds the secret.

Example::

    $ headwater token create policy-ci --scopes check,write,schema
    hw_2bXk...

    # add to the server's token file (it keeps only the SHA-256; the token above is shown once)
    [[tokens]]
    name = "policy-ci"
    scopes = ["check", "write", "schema"]
    sha256 = "7f3a..."
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import TextIO

from .shared import engine_errors, json_flag, print_json
from .table import EXIT_OK, Command, Group, arg

TOKEN_PREFIX = "hw_"


def token_entry(name: str, scopes: list[str], digest: str) -> str:
    """The ``[[tokens]]`` TOML entry of a token file for a token with this SHA-256 hex ``digest``."""
    return (f"[[tokens]]\nname = {json.dumps(name)}\nscopes = {json.dumps(scopes)}\n"
            f"sha256 = {json.dumps(digest)}\n")


@engine_errors
def _cmd_token_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..service.auth import SCOPES, TokenEntry  # the server's own hashing: the entry is what it verifies

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = sorted(set(scopes) - SCOPES)
    if not scopes or unknown:
        raise ValueError(f"--scopes must list some of {', '.join(sorted(SCOPES))}"
                         + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    if not args.name.strip():
        raise ValueError("the token needs a name")
    scopes = list(dict.fromkeys(scopes))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = TokenEntry.from_secret(args.name, token, frozenset(scopes)).digest.hex()
    entry = token_entry(args.name, scopes, digest)
    if args.json:
        print_json({"name": args.name, "scopes": scopes, "token": token, "sha256": digest, "entry": entry}, out)
        return EXIT_OK
    print(token, file=out)
    print("", file=out)
    print("# add to the server's token file (it keeps only the SHA-256; the token above is shown once)", file=out)
    out.write(entry)
    print(f"token {args.name!r} created: keep it now, it cannot be shown again", file=err)
    return EXIT_OK


COMMANDS = (
    Group("token", help="create bearer tokens for `headwater serve --token-file`",
          description="Create bearer tokens: the token, printed once, and the token-file entry (name, scopes and "
                      "the token's SHA-256) for the server.", help_when_bare=True),
    Command("token create", help="a new random token and its token-file entry",
            description="Print a new random token (once, on the first line), then the [[tokens]] entry to add to the "
                        "server's --token-file: the name, the scopes and the token's SHA-256, never the token "
                        "itself. Local: nothing is sent to a server (restart or reload it to accept the token).",
            args=(arg("name", metavar="NAME", help="the token's name (what the server's logs and audit show)"),
                  arg("--scopes", required=True, metavar="LIST",
                      help="comma-separated scopes: check, write, schema, audit"),
                  json_flag("print name, scopes, token, sha256 and the entry as JSON")),
            run=_cmd_token_create),
)
