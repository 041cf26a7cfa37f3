"""``headwater playground``: starts an in-memory server, prints the page's URL, serves it until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

HEADWATER = Path(sys.executable).with_name("headwater")


def test_playground_prints_the_url_serves_the_page_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen([str(HEADWATER), "playground", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, (line, process.stderr.read() if process.poll() is not None else "")
        with urllib.request.urlopen(found.group(0), timeout=10) as response:
            assert "<title>Headwater playground</title>" in response.read().decode()
        request = urllib.request.Request(found.group(0) + "api/playground/workspaces", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_bad_port_is_a_usage_error() -> None:
    done = subprocess.run([str(HEADWATER), "playground", "--port", "70000"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--port" in done.stderr
