"""``headwater monitor``: the monitoring rules over the audit trail (engine/governance/monitor.py), as JSON lines."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ..context import utc_now
from ..governance.monitor import Rules, follow, monitor_rules, scan
from ..results import Alert
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, is_remote, json_flag, print_json
from .table import EXIT_OK, EXIT_PROBLEMS, Command, arg

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d)")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _moment(text: str) -> datetime:
    """An ISO 8601 time (UTC unless it says), or a duration ago: ``90s``, ``15m``, ``1h``, ``7d``."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return utc_now() - timedelta(seconds=float(ago.group(1)) * _UNITS[ago.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time nor a duration such as 1h or 7d: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _line(alert: Alert) -> str:
    time = alert.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    about = "  ".join(x for x in (alert.subject, alert.value) if x)
    return f"{time}  {alert.rule}  {about}  {alert.summary}  (record {alert.record_id})"


def _alerts(target: Any, args: argparse.Namespace, rules_text: str | None, rules: Rules) -> Any:
    if is_remote(target):  # the server runs the rules where the log is (the `audit` scope)
        return target.monitor(since=args.since, until=args.until, follow=args.follow, rules_toml=rules_text)
    if args.follow:
        return follow(target, rules, since=args.since, poll_seconds=args.poll)
    return scan(target, rules, since=args.since, until=args.until)


@engine_errors
def _cmd_monitor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rules_text = None
    if args.rules:
        with open(args.rules, encoding="utf-8") as f:
            rules_text = f.read()
    rules = monitor_rules(rules_text)  # checked here, before asking anything
    count = 0
    with connect(args) as target:
        try:
            for alert in _alerts(target, args, rules_text, rules):
                count += 1
                if args.json:
                    print_json(alert.as_json(), out)
                else:
                    print(_line(alert), file=out)
                if args.follow:
                    out.flush()
        except KeyboardInterrupt:  # --follow ends with Ctrl-C
            return EXIT_OK
    if not args.json and not args.follow:
        print(f"{count} alert{'s' if count != 1 else ''} since {args.since:%Y-%m-%dT%H:%M:%SZ}", file=sys.stderr)
    return EXIT_PROBLEMS if count else EXIT_OK


COMMANDS = (
    Command(
        "monitor", help="alerts of the monitoring rules over the audit trail",
        description="Run the monitoring rules (first access to a label, denial bursts, volume spikes on sensitive "
                    "labels, declassifications, high clearances; docs/governance.md) over the audit records from "
                    "--since to --until, with the baseline before --since, and print each alert with its evidence "
                    "(JSON lines with --json). The same period asked again gives the same alerts. --follow keeps "
                    "printing new alerts as they happen, until interrupted. Exit 1 when there were alerts (as a "
                    "linter that finds problems), 0 when none. Needs the audit log (and, on a server, the audit "
                    "scope).",
        args=(arg("--since", type=_moment, default="1h", metavar="TIME",
                  help="the start of the monitored period: ISO 8601, or a duration ago such as 30m, 1h, 7d "
                       "(default 1h)"),
              arg("--until", type=_moment, metavar="TIME", help="its end, exclusive (default: now)"),
              arg("--follow", action="store_true", help="then keep printing new alerts as they happen"),
              arg("--rules", metavar="FILE", help="TOML file whose [monitor] table sets the rules (default: the "
                                                  "built-in rules; on a server: the server's)"),
              arg("--poll", type=float, default=1.0, metavar="S", help="with --follow on a database: seconds "
                                                                        "between looks at the log (default 1)"),
              DB_OR_SERVER, json_flag("print each alert as one JSON line"), *SERVER),
        run=_cmd_monitor),
)
