"""The HTTP listener (``--http-address``): one route table, bearer tokens per route, gRPC's TLS, a clean stop."""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from headwater.engine.config import Config, load_config
from headwater.engine.errors import ConfigError
from headwater.engine.service.auth import load_token_file
from headwater.engine.service.http import HttpListener, Route, RouteContext, build_app, routes
from headwater.engine.service.http.app import PlainTextResponse
from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS
from .test_tls import certs  # noqa: F401 - the fixture making a CA and server certificates


def get(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_route_declares_the_scope_it_needs(token_file: Path) -> None:
    tokens = load_token_file(token_file)
    table = [Route("/open", lambda request: PlainTextResponse("open")),
             Route("/reader", lambda request: PlainTextResponse("checked"), scope="check")]
    listener = HttpListener(build_app(table, tokens=lambda: tokens), "127.0.0.1:0").start()
    try:
        base = f"http://{listener.address}"
        assert get(f"{base}/open") == (200, "open")
        assert get(f"{base}/reader")[0] == 401
        assert get(f"{base}/reader", "not-a-token")[0] == 401
        assert get(f"{base}/reader", TOKENS["schemer"][0])[0] == 403  # a known token without the scope
        assert get(f"{base}/reader", TOKENS["reader"][0]) == (200, "checked")
        assert get(f"{base}/nowhere")[0] == 404
    finally:
        listener.stop()
    # without authentication (--insecure-no-auth) a scoped route is open
    listener = HttpListener(build_app(table, tokens=lambda: None), "127.0.0.1:0").start()
    try:
        assert get(f"http://{listener.address}/reader") == (200, "checked")
    finally:
        listener.stop()


def test_connections_send_small_responses_at_once() -> None:
    """TCP_NODELAY on the listening socket (accepted connections inherit it): without it, each request after the
    first on a keep-alive connection waited for the client's delayed ACK (~40 ms; docs/lineage-capture.md)."""
    listener = HttpListener(build_app([], tokens=lambda: None), "127.0.0.1:0").start()
    try:
        assert listener._socket is not None
        assert listener._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.stop()


def test_the_route_table_is_one_list() -> None:
    assert routes(RouteContext()) == []  # metrics off: nothing to serve yet
    assert [r.path for r in routes(RouteContext(metrics=object()))] == ["/metrics"]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_listener_starts_with_the_server_and_stops_with_it(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0")
    assert server.http is not None
    port = server.http.port
    assert port > 0 and server.serving["http_address"] == f"127.0.0.1:{port}"
    assert _listening(port)
    assert any(t.name == "headwater-http" for t in threading.enumerate())
    server.stop(grace=0)
    assert not _listening(port)
    assert not any(t.name == "headwater-http" for t in threading.enumerate())
    with socket.socket() as again:  # the port is free to bind
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def test_a_busy_http_port_fails_the_start_and_releases_grpc(make_server: Callable[..., HeadwaterServer],
                                                            token_file: Path, tmp_path: Path) -> None:
    first = make_server(http_address="127.0.0.1:0")
    assert first.http is not None
    config = Config.of(address="127.0.0.1:0", db=str(tmp_path / "x.db"), token_file=str(token_file),
                       http_address=f"127.0.0.1:{first.http.port}")
    second = HeadwaterServer(config)
    with pytest.raises(ConfigError, match="http_address"):
        second.start()
    assert second.port and not _listening(second.port)


def test_without_an_address_there_is_no_listener(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server()
    assert server.http is None and server.metrics is None and "http_port" not in server.serving


def test_the_settings_come_from_flags_environment_and_files(tmp_path: Path) -> None:
    flags = load_config({"http_address": "0.0.0.0:9090", "metrics": False}, {}, serving=False).server
    assert (flags.http_address, flags.metrics) == ("0.0.0.0:9090", False)
    env = load_config({}, {"HEADWATER_HTTP_ADDRESS": "127.0.0.1:0", "HEADWATER_METRICS_TOKEN_FILE": "m.token"},
                      serving=False).server
    assert (env.http_address, env.metrics, env.metrics_token_file) == ("127.0.0.1:0", True, "m.token")
    (tmp_path / "hw.toml").write_text('[server]\nhttp_address = "127.0.0.1:9091"\nmetrics_token_file = "m.token"\n')
    toml = load_config({}, {}, str(tmp_path / "hw.toml"), serving=False).server
    assert toml.http_address == "127.0.0.1:9091" and toml.metrics_token_file == str(tmp_path / "m.token")
    with pytest.raises(ConfigError, match="http_address"):
        Config.of(http_address="9090")


def test_the_listener_serves_the_grpc_tls_files(make_server: Callable[..., HeadwaterServer],
                                                certs: Path) -> None:  # noqa: F811 - the fixture
    server = make_server(http_address="127.0.0.1:0", tls_cert=str(certs / "server.pem"),
                         tls_key=str(certs / "server.key"))
    assert server.http is not None and server.http.tls
    trusted = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    status, body = get(f"https://127.0.0.1:{server.http.port}/metrics", context=trusted)
    assert status == 200 and "headwater_build_info" in body
    with pytest.raises(urllib.error.URLError):  # the certificate is not trusted without the CA
        get(f"https://127.0.0.1:{server.http.port}/metrics", context=ssl.create_default_context())
    with pytest.raises((ConnectionError, urllib.error.URLError)):  # plain HTTP is not served
        get(f"http://127.0.0.1:{server.http.port}/metrics")


def test_the_serve_flags() -> None:
    from headwater.engine.cli import build_cli_parser

    args = build_cli_parser().parse_args(["serve", "--http-address", "127.0.0.1:0", "--no-metrics",
                                          "--metrics-token-file", "m.token"])
    assert (args.http_address, args.metrics, args.metrics_token_file) == ("127.0.0.1:0", False, "m.token")


def test_mutual_tls_asks_for_a_client_certificate(make_server: Callable[..., HeadwaterServer],
                                                  certs: Path) -> None:  # noqa: F811 - the fixture
    server = make_server(http_address="127.0.0.1:0", tls_cert=str(certs / "server.pem"),
                         tls_key=str(certs / "server.key"), tls_client_ca=str(certs / "ca.pem"))
    assert server.http is not None
    url = f"https://127.0.0.1:{server.http.port}/metrics"
    anonymous = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with pytest.raises((ConnectionError, ssl.SSLError, urllib.error.URLError)):
        get(url, context=anonymous)
    signed = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    signed.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    assert get(url, context=signed)[0] == 200


def test_the_playground_can_be_left_out(make_server: Callable[..., HeadwaterServer], tmp_path: Path) -> None:
    served = make_server(http_address="127.0.0.1:0")
    assert served.http is not None and served.serving["playground"] is True
    assert get(f"http://127.0.0.1:{served.http.port}/")[0] == 200
    quiet = make_server(http_address="127.0.0.1:0", playground=False)
    assert quiet.http is not None and quiet.serving["playground"] is False
    base = f"http://127.0.0.1:{quiet.http.port}"
    assert get(base + "/")[0] == 404
    assert get(base + "/api/playground/examples/ai-lineage")[0] == 404
    request = urllib.request.Request(base + "/api/playground/workspaces", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code in (404, 405)
    assert get(base + "/metrics")[0] == 200  # the listener's other routes stay
    assert load_config({"playground": False}, {}, serving=False).server.playground is False
    assert load_config({}, {"HEADWATER_PLAYGROUND": "false"}, serving=False).server.playground is False
    (tmp_path / "hw.toml").write_text("[server]\nplayground = false\n")
    assert load_config({}, {}, str(tmp_path / "hw.toml"), serving=False).server.playground is False
    assert load_config({}, {}, serving=False).server.playground is True


def test_the_playground_flag() -> None:
    from headwater.engine.cli import build_cli_parser

    parse = build_cli_parser().parse_args
    assert parse(["serve", "--no-playground"]).playground is False
    assert parse(["serve", "--playground"]).playground is True
    assert parse(["serve"]).playground is None  # the setting's default (on) then applies
