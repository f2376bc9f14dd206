"""Token acquisition with MSAL Python and azure-identity (clients.md §1, §2)."""

import json
import time
from urllib.parse import parse_qs

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport

from graphkit import GRAPH_AUDIENCES, GRAPH_SCOPE, credential, jwt_claims, msal_app


def assert_graph_token(server, token: str, client_id: str):
    claims = jwt_claims(token)
    assert claims["aud"] in GRAPH_AUDIENCES
    assert server.client_id == client_id or claims.get("appid", claims.get("azp")) == client_id
    assert claims.get("appid", claims.get("azp")) == client_id
    assert claims["tid"] == server.tenant_id
    assert claims["exp"] > time.time() + 60
    return claims


def test_msal_client_credentials(server):
    app = msal_app(server)
    r = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "error" not in r, r
    assert r["token_type"].lower() == "bearer"
    assert isinstance(r["expires_in"], int) and r["expires_in"] > 60
    assert r["token_source"] == "identity_provider"
    claims = assert_graph_token(server, r["access_token"], server.client_id)
    roles = set(claims.get("roles", []))
    assert {"User.Invite.All", "User.ReadWrite.All"} <= roles, claims

    # MSAL caches per app object and scope: the second call sends nothing.
    again = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert again["access_token"] == r["access_token"]
    assert again["token_source"] == "cache"


def test_msal_authority_by_tenant_domain(server):
    r = msal_app(server, tenant=server.tenant_domain).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "error" not in r, r
    assert jwt_claims(r["access_token"])["tid"] == server.tenant_id


def test_msal_wrong_secret(server):
    r = msal_app(server, client_secret="not-the-secret").acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" not in r
    assert r["error"] == "invalid_client", r
    assert 7000215 in r["error_codes"], r
    assert "AADSTS7000215" in r["error_description"]


def test_msal_unknown_client_id(server):
    r = msal_app(server, client_id="11111111-2222-3333-4444-555555555555").acquire_token_for_client(
        scopes=[GRAPH_SCOPE]
    )
    assert "access_token" not in r
    # Entra answers AADSTS700016 unauthorized_client for an app it doesn't know.
    assert r["error"] in ("unauthorized_client", "invalid_client"), r
    assert r.get("error_codes"), r


def test_azure_identity_token(server):
    token = credential(server).get_token(GRAPH_SCOPE)
    assert token.expires_on > time.time() + 60
    assert_graph_token(server, token.token, server.client_id)


def test_azure_identity_cae_claims_form_field(server):
    # enable_cae=True is what kiota passes; azure-identity then POSTs claims={"access_token":{"xms_cc":...}}.
    sent = []
    session = requests.Session()
    session.trust_env = False
    session.hooks["response"].append(lambda r, *a, **k: sent.append((r.request.url, r.request.body, r.status_code)))
    cred = credential(server, transport=RequestsTransport(session=session, session_owner=False, connection_verify=server.ca))
    token = cred.get_token(GRAPH_SCOPE, claims=None, enable_cae=True)
    assert_graph_token(server, token.token, server.client_id)
    token_posts = [(body, status) for url, body, status in sent if url.endswith("/oauth2/v2.0/token")]
    assert len(token_posts) == 1, sent
    body, status = token_posts[0]
    form = parse_qs(body if isinstance(body, str) else body.decode())
    assert status == 200
    assert json.loads(form["claims"][0]) == {"access_token": {"xms_cc": {"values": ["CP1"]}}}


def test_azure_identity_wrong_secret_raises(server):
    with pytest.raises(ClientAuthenticationError) as e:
        credential(server, client_secret="nope").get_token(GRAPH_SCOPE)
    assert "AADSTS7000215" in str(e.value) or "invalid_client" in str(e.value)


def test_limited_app_token_carries_only_its_role(server, invite_only_app):
    r = msal_app(
        server, client_id=invite_only_app["clientId"], client_secret=invite_only_app["clientSecret"]
    ).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "error" not in r, r
    claims = assert_graph_token(server, r["access_token"], invite_only_app["clientId"])
    assert set(claims.get("roles", [])) == {"User.Invite.All"}, claims
