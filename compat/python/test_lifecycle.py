"""The server process itself: connection.json, TLS, clean shutdown."""

import json
import os
import signal
import ssl
import socket
from urllib.parse import urlsplit

from conftest import stop_server


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
