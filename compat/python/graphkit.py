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


def credential(server, client_id=None, client_secret=None, tenant=None) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant or server.tenant_id,
        client_id or server.client_id,
        client_secret or server.client_secret,
        authority=server.authority_url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
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
    return GraphServiceClient(request_adapter=adapter)


def run(coro_fn, *args, **kwargs):
    """Run one async scenario on a fresh event loop."""
    return asyncio.run(coro_fn(*args, **kwargs))


def unique_email(prefix="guest", domain="example.com") -> str:
    return f"{prefix}.{secrets.token_hex(4)}@{domain}"


def ext_upn(email: str, tenant_domain: str) -> str:
    """Graph's #EXT# UPN for a guest: '@' becomes '_', then '#EXT#@<initial domain>'."""
    return f"{email.replace('@', '_')}#EXT#@{tenant_domain}"


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))
