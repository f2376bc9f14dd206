"""The real Microsoft clients, configured exactly as shared/spec/clients.md says."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import ssl

import httpx
import msal
import requests
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.graph_request_adapter import options as GRAPH_DEFAULT_OPTIONS
from msgraph_core import GraphClientFactory

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_AUDIENCES = {"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"}
RESET_MISMATCH_MESSAGE = (
    "The email you\u2019re using to invite this user doesn\u2019t match any emails on the user object. "
    "Please add this email to the user object and try again."
)


def msal_app(server, client_id=None, client_secret=None, tenant=None) -> msal.ConfidentialClientApplication:
    # verify= is ignored while REQUESTS_CA_BUNDLE is set, hence our own Session (clients.md §1).
    session = requests.Session()
    session.trust_env = False
    session.verify = server.ca
    return msal.ConfidentialClientApplication(
        client_id or server.client_id,
        client_credential=client_secret or server.client_secret,
        authority=f"{server.authority_url}/{tenant or server.tenant_id}",
        instance_discovery=False,
        http_client=session,
    )


def credential(server, client_id=None, client_secret=None, tenant=None, **kwargs) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant or server.tenant_id,
        client_id or server.client_id,
        client_secret or server.client_secret,
        authority=server.authority_url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
        **kwargs,
    )


def graph_client(server, version="v1.0", cred=None, auth=None) -> GraphServiceClient:
    """The explicit form of clients.md §3: kiota auth provider + Graph middleware over our own httpx client.

    Create one per asyncio.run(): the httpx pool is bound to its event loop.
    """
    if auth is None:
        auth = AzureIdentityAuthenticationProvider(cred or credential(server), scopes=[GRAPH_SCOPE], allowed_hosts=[])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(
            timeout=httpx.Timeout(100, connect=30),
            http2=True,
            verify=ssl.create_default_context(cafile=server.ca),
            trust_env=False,
        ),
        options=GRAPH_DEFAULT_OPTIONS,
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{server.graph_url}/{version}"
    return track(GraphServiceClient(request_adapter=adapter))


_open_http_clients: list = []


def track(client: GraphServiceClient) -> GraphServiceClient:
    """Close the client's connections when the current run() ends."""
    _open_http_clients.append(client.request_adapter._http_client)
    return client


def run(coro_fn, *args, **kwargs):
    """Run one async scenario on a fresh event loop, then close the connections it opened.

    Closing matters: a server stopping on SIGTERM may wait for idle connections
    (see test_lifecycle.test_sigterm_with_idle_http2_connection).
    """

    async def scenario():
        try:
            return await coro_fn(*args, **kwargs)
        finally:
            closed = bool(_open_http_clients)
            while _open_http_clients:
                http = _open_http_clients.pop()
                await http.aclose()
                # msgraph-core's AsyncGraphTransport has no aclose(), so AsyncClient.aclose() leaves
                # the wrapped connection pool (and its HTTP/2 connection) open: close it directly.
                inner = getattr(http._transport, "transport", None)
                if inner is not None:
                    await inner.aclose()
            if closed:
                # An SSL transport finishes closing (close_notify) on later loop iterations;
                # asyncio.run() would otherwise close the loop first and leak the socket.
                await asyncio.sleep(0.05)

    return asyncio.run(scenario())


def unique_email(prefix="guest", domain="example.com") -> str:
    return f"{prefix}.{secrets.token_hex(4)}@{domain}"


def ext_upn(email: str, tenant_domain: str) -> str:
    """Graph's #EXT# UPN for a guest: '@' becomes '_', then '#EXT#@<initial domain>'."""
    return f"{email.replace('@', '_')}#EXT#@{tenant_domain}"


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))
