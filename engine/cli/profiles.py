"""Saved contexts (``headwater context``): where they are stored and how they are read and written.

``contexts.toml`` in the configuration folder (``$HEADWATER_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/headwater``, else ``~/.config/headwater``), mode 0600; a token may live in the
system keyring instead (``token_in_keyring = true``) when the ``keyring`` package is installed
with a usable backend and ``HEADWATER_KEYRING`` is not ``0``.

Example::

    >>> mask("hw_0123456789abcdef")
    'hw_0…(19 chars)'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import read_toml

KEYRING_SERVICE = "headwater"


@dataclass(frozen=True, slots=True)
class Profile:
    """One saved context: where the server is and how to reach it."""

    name: str
    address: str
    token: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    token_in_keyring: bool = False


def config_dir() -> Path:
    """``$HEADWATER_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/headwater``, else ``~/.config/headwater``."""
    if os.environ.get("HEADWATER_CONFIG_DIR"):
        return Path(os.environ["HEADWATER_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "headwater"


def contexts_file() -> Path:
    return config_dir() / "contexts.toml"


def load() -> tuple[str | None, dict[str, Profile]]:
    path = contexts_file()
    if not path.exists():
        return None, {}
    data = read_toml(path, "contexts file")
    profiles = {}
    for name, entry in (data.get("contexts") or {}).items():
        token = entry.get("token")
        if entry.get("token_in_keyring"):
            token = _keyring_get(name)
        profiles[name] = Profile(name, str(entry["address"]), token, bool(entry.get("tls", False)),
                                 entry.get("tls_ca"), entry.get("tls_cert"), entry.get("tls_key"),
                                 bool(entry.get("token_in_keyring", False)))
    current = data.get("current")
    return (current if current in profiles else None), profiles


def save(current: str | None, profiles: dict[str, Profile]) -> None:
    """Rewrite the file, created with mode 0600 (and its folder 0700) before anything is written to it."""
    path = contexts_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [f"current = {json.dumps(current)}", ""] if current else []
    for p in sorted(profiles.values(), key=lambda p: p.name):
        lines.append(f"[contexts.{json.dumps(p.name)}]")
        lines.append(f"address = {json.dumps(p.address)}")
        if p.token and not p.token_in_keyring:
            lines.append(f"token = {json.dumps(p.token)}")
        if p.token_in_keyring:
            lines.append("token_in_keyring = true")
        lines.append(f"tls = {'true' if p.tls else 'false'}")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            if getattr(p, key):
                lines.append(f"{key} = {json.dumps(getattr(p, key))}")
        lines.append("")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT: tighten it
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def keyring_module() -> Any:
    """The ``keyring`` module when installed with a usable backend (and not turned off), else None."""
    if os.environ.get("HEADWATER_KEYRING", "1") == "0":
        return None
    try:
        import keyring  # optional: not a dependency
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - not installed, or no backend: the file keeps the token
        return None
    return keyring if getattr(backend, "priority", 0) > 0 else None


def _keyring_get(name: str) -> str | None:
    ring = keyring_module()
    return ring.get_password(KEYRING_SERVICE, name) if ring else None


def selected(name: str | None = None) -> Profile | None:
    """The context ``name`` (an error if there is none such), else ``$HEADWATER_CONTEXT``'s, else the current one."""
    current, profiles = load()
    wanted = name or os.environ.get("HEADWATER_CONTEXT")
    if wanted:
        if wanted not in profiles:
            raise ValueError(f"no context named {wanted!r} (headwater context list shows them)")
        return profiles[wanted]
    return profiles.get(current) if current else None


def mask(token: str | None) -> str:
    """A token as `context list` shows it: its first 4 characters and its length, never the whole."""
    if not token:
        return "none"
    return f"{token[:4]}…({len(token)} chars)" if len(token) >= 12 else f"…({len(token)} chars)"
