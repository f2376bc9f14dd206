"""The server process itself: connection.json, TLS, clean shutdown."""

import os
import ssl
import socket
import subprocess
import time

import httpx
import pytest
from urllib.parse import urlsplit

from conftest import stop_server
from graphkit import credential, GRAPH_SCOPE


def test_connection_json(server):
    conn = server.conn
    for key in ("tenantId", "tenantDomain", "graphUrl", "authorityUrl", "clientId", "clientSecret", "caCertificate"):
        assert conn.get(key), f"{key} missing from connection.json: {conn}"
    g = urlsplit(conn["graphUrl"])
    assert g.scheme == "https" and g.hostname == "127.0.0.1" and g.port and g.port != 8443
    assert g.path in ("", "/")
    assert os.path.isabs(conn["caCertificate"]) and os.path.exists(conn["caCertificate"])


def _alpn(server, offered):
    u = urlsplit(server.graph_url)
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.set_alpn_protocols(offered)
    with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=u.hostname) as tls:
            return tls.selected_alpn_protocol()


def test_tls_negotiates_h2(server):
    # httpx (msgraph-sdk) offers h2 and http/1.1; the server says it speaks HTTP/2, which over TLS
    # needs ALPN.
    assert _alpn(server, ["h2", "http/1.1"]) == "h2"


def test_tls_http11_only_client(server):
    # requests (MSAL) and undici offer http/1.1 or nothing; no ALPN answer also means HTTP/1.1.
    assert _alpn(server, ["http/1.1"]) in ("http/1.1", None)


def test_sigterm_exits_cleanly(fresh_server):
    rc = stop_server(fresh_server)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{fresh_server.log()}"


def test_sigterm_with_idle_http2_connection(fresh_server):
    # msgraph-sdk keeps its httpx HTTP/2 connection open between requests (and, unless the caller
    # closes the client, after the last one). Shutdown waits for requests in flight, not for idle
    # connections: the server closes them and exits cleanly.
    token = credential(fresh_server).get_token(GRAPH_SCOPE).token
    client = httpx.Client(http2=True, verify=ssl.create_default_context(cafile=fresh_server.ca), trust_env=False)
    try:
        r = client.get(f"{fresh_server.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        rc = stop_server(fresh_server)
        assert rc == 0
        # The idle connection is gone with the server: reusing it fails instead of hanging.
        with pytest.raises(httpx.TransportError):
            client.get(f"{fresh_server.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    finally:
        client.close()


def test_storage_engine_in_use(server):
    sqlite_file = server.data_dir / "guestlist.db"
    if server.engine == "sqlite":
        assert sqlite_file.exists()
    else:
        assert not sqlite_file.exists(), "a --database-url server must not write SQLite"
        out = subprocess.run(
            ["psql", server.database_url, "-qAt", "-c",
             "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip()) > 0, "no tables in the server's PostgreSQL database"


def test_app_add_while_serving(server):
    app = server.add_app("compat-read-only", "User.Read.All")
    assert app["tenantId"] == server.tenant_id
    assert app["clientId"] != server.client_id
