"""Which Headwater this is: the version from the installed package's metadata and, when cheaply known, the commit.

``headwater --version`` prints :func:`describe`; the gRPC server sends :func:`version` in the initial
metadata ``headwater-version`` of health checks and reflection (docs/grpc.md#operation); a metrics
exporter can read both for its build-info series.

The commit is read from the files of the git checkout the code runs from (``.git/HEAD`` and the ref it
names, loose or packed), without running ``git``: nothing when the package is installed from a wheel, or
when ``HEADWATER_COMMIT`` says otherwise (a container build can set it, as git is not inside the image).

Example::

    >>> version() != ""
    True
    >>> describe().startswith("headwater " + version())
    True
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["commit", "describe", "version"]

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@cache
def version() -> str:
    """The installed distribution's version (``headwater`` in the package metadata); ``unknown`` when the
    package is not installed (code run from a copied tree)."""
    try:
        return metadata.version("headwater")
    except metadata.PackageNotFoundError:
        return "unknown"


@cache
def commit() -> str | None:
    """The full commit hash the code runs from (``HEADWATER_COMMIT``, else the git checkout's HEAD), or None."""
    given = os.environ.get("HEADWATER_COMMIT", "").strip()
    if given:
        return given
    return _git_head(Path(__file__).resolve().parent.parent / ".git")


def describe() -> str:
    """``headwater 0.1.0`` and, when known, `` (commit 0123abcd4567)``."""
    found = commit()
    return f"headwater {version()}" + (f" (commit {found[:12]})" if found else "")


def _git_head(git: Path) -> str | None:
    """HEAD's commit read from the files of ``git`` (a directory, or a worktree's ``gitdir:`` file)."""
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (git.parent / text.removeprefix("gitdir:").strip()).resolve()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if _SHA.fullmatch(head):
            return head  # a detached HEAD
        if not head.startswith("ref:"):
            return None
        ref = head.removeprefix("ref:").strip()
        common = git
        commondir = git / "commondir"  # a worktree keeps its refs in the main repository
        if commondir.is_file():
            common = (git / commondir.read_text(encoding="utf-8").strip()).resolve()
        for place in (git, common):
            loose = place / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8").strip()
                return value if _SHA.fullmatch(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                value, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(value):
                    return value
    except (OSError, UnicodeDecodeError):
        return None
    return None
