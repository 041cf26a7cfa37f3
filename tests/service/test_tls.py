"""TLS from certificate files, and mutual TLS, with certificates made by `openssl` in the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from headwater.engine.client import Client, ClientTls, RemoteError

from .conftest import TOKENS

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl is not installed (needed to make test certificates)")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=headwater test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "server.ext"), ("client", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", ext, "-out", f"{name}.pem", cwd=d)
    # A second CA, whose client certificate the server must refuse.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
             "-keyout", "other.key", "-out", "other.pem", cwd=d)
    return d


def test_tls(make_server, certs: Path) -> None:
    server = make_server(tls_cert=str(certs / "server.pem"), tls_key=str(certs / "server.key"))
    secret = TOKENS["admin"][0]
    with Client(server.address, token=secret, tls=ClientTls(ca=str(certs / "ca.pem")), timeout=5) as c:
        assert c.health() == "SERVING"
        with pytest.raises(Exception) as e:
            c.check("document:x", "view", "user:ann")
        assert getattr(e.value, "code") == "NOT_FOUND"  # reached the engine: no schema yet
    with Client(server.address, token=secret, timeout=2) as plain, pytest.raises(RemoteError) as e:
        plain.health()
    assert e.value.code == "UNAVAILABLE"
    untrusted = ClientTls(ca=(certs / "other.pem").read_bytes())
    with Client(server.address, token=secret, tls=untrusted, timeout=2) as c, pytest.raises(RemoteError) as e:
        c.health()
    assert e.value.code == "UNAVAILABLE"


def test_mutual_tls(make_server, certs: Path) -> None:
    server = make_server(tls_cert=str(certs / "server.pem"), tls_key=str(certs / "server.key"),
                         tls_client_ca=str(certs / "ca.pem"))
    secret = TOKENS["admin"][0]
    good = ClientTls(ca=str(certs / "ca.pem"), cert=str(certs / "client.pem"), key=str(certs / "client.key"))
    with Client(server.address, token=secret, tls=good, timeout=5) as c:
        assert c.health() == "SERVING"
    no_cert = ClientTls(ca=str(certs / "ca.pem"))
    with Client(server.address, token=secret, tls=no_cert, timeout=2) as c, pytest.raises(RemoteError) as e:
        c.health()
    assert e.value.code == "UNAVAILABLE"
    wrong = ClientTls(ca=str(certs / "ca.pem"), cert=str(certs / "other.pem"), key=str(certs / "other.key"))
    with Client(server.address, token=secret, tls=wrong, timeout=2) as c, pytest.raises(RemoteError) as e:
        c.health()
    assert e.value.code == "UNAVAILABLE"


def test_tls_settings_go_together(tmp_path: Path) -> None:
    from headwater.engine.config import Config
    from headwater.engine.errors import ConfigError

    with pytest.raises(ConfigError, match="give both or neither"):
        Config.of(db=":memory:", insecure_no_auth=True, tls_cert="x.pem")
    with pytest.raises(ConfigError, match="mutual TLS"):
        Config.of(db=":memory:", insecure_no_auth=True, tls_client_ca="ca.pem")
