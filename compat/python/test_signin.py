"""Member sign-in with MSAL Python's public-client flows (issue 5): the device code flow with the
device login completed over HTTP, silent refresh with the rotated refresh token, and the
authorization code flow with PKCE with the sign-in form posted over HTTP."""

import html
import re
import threading
from urllib.parse import parse_qs, urlparse

import msal
import pytest
import requests

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider

from graphkit import GRAPH_SCOPE, graph_client, jwt_claims, msal_app, run, unique_email

PASSWORD = "Corr3ct-Horse!"
REDIRECT = "http://localhost:8400/callback"


def session_for(server) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = server.ca
    return s


def public_app(server) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        server.conn["cliClientId"],
        authority=f"{server.authority_url}/{server.tenant_id}",
        instance_discovery=False,
        http_client=session_for(server),
    )


@pytest.fixture
def member(server):
    token = msal_app(server).acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
    alias = unique_email("member").split("@")[0].replace(".", "").replace("+", "")
    upn = f"{alias}@{server.tenant_domain}"
    r = session_for(server).post(
        f"{server.graph_url}/v1.0/users",
        headers={"Authorization": f"Bearer {token}"},
        json={"accountEnabled": True, "displayName": alias, "mailNickname": alias, "userPrincipalName": upn,
              "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False}},
    )
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"], "upn": upn}


def hidden_fields(page: str) -> dict:
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in fields}


def complete_device_login(server, user_code: str, upn: str, password: str = PASSWORD) -> str:
    browser = session_for(server)
    page = browser.get(f"{server.authority_url}/devicelogin")
    assert page.status_code == 200
    signin = browser.post(f"{server.authority_url}/devicelogin", data={**hidden_fields(page.text), "user_code": user_code})
    assert signin.status_code == 200 and 'name="password"' in signin.text, signin.text
    done = browser.post(
        f"{server.authority_url}/devicelogin/signin",
        data={**hidden_fields(signin.text), "username": upn, "password": password, "decision": "sign-in"},
    )
    assert done.status_code == 200, done.text
    return done.text


def test_msal_device_flow_then_silent_refresh(server, member):
    app = public_app(server)
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/User.Read.All"])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{server.authority_url}/devicelogin"
    # MSAL polls until the person finishes; finish from another thread as a person would.
    helper = threading.Thread(target=complete_device_login, args=(server, flow["user_code"], member["upn"]))
    helper.start()
    result = app.acquire_token_by_device_flow(flow)
    helper.join()
    assert "access_token" in result, result
    claims = jwt_claims(result["access_token"])
    assert claims["scp"] == "User.Read.All" and claims["oid"] == member["id"] and claims["idtyp"] == "user"
    assert result["id_token_claims"]["preferred_username"] == member["upn"]

    r = session_for(server).get(f"{server.graph_url}/v1.0/users/{member['id']}",
                                headers={"Authorization": f"Bearer {result['access_token']}"})
    assert r.status_code == 200, r.text

    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [member["upn"]]
    refreshed = app.acquire_token_silent(["https://graph.microsoft.com/User.Read.All"], account=accounts[0], force_refresh=True)
    assert refreshed and "access_token" in refreshed, refreshed
    assert refreshed["access_token"] != result["access_token"]
    # The first refresh token was rotated away: using it again revokes the sign-in.
    reused = session_for(server).post(
        f"{server.authority_url}/{server.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": server.conn["cliClientId"], "refresh_token": result["refresh_token"]},
    ).json()
    assert reused.get("error") == "invalid_grant", reused
    assert 700082 in reused.get("error_codes", []), reused
    # ... and the whole family with it: MSAL's silent refresh now fails too.
    again = app.acquire_token_silent_with_error(["https://graph.microsoft.com/User.Read.All"], account=accounts[0], force_refresh=True)
    assert again and again.get("error") == "invalid_grant", again


def test_msal_auth_code_flow_with_pkce(server, member):
    app = public_app(server)
    flow = app.initiate_auth_code_flow(["https://graph.microsoft.com/User.Invite.All"], redirect_uri=REDIRECT, login_hint=member["upn"])
    browser = session_for(server)
    page = browser.get(flow["auth_uri"])
    assert page.status_code == 200, page.text
    assert member["upn"] in page.text
    action = urlparse(flow["auth_uri"]).path
    posted = browser.post(f"{server.authority_url}{action}",
                          data={**hidden_fields(page.text), "username": member["upn"], "password": PASSWORD},
                          allow_redirects=False)
    assert posted.status_code == 302, posted.text
    location = urlparse(posted.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    auth_response = {k: v[0] for k, v in parse_qs(location.query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    assert jwt_claims(result["access_token"])["scp"] == "User.Invite.All"

    r = session_for(server).post(
        f"{server.graph_url}/v1.0/invitations",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        json={"invitedUserEmailAddress": unique_email(), "inviteRedirectUrl": "https://myapps.microsoft.com"},
    )
    assert r.status_code == 201, r.text


def test_wrong_password_shows_the_form_again(server, member):
    app = public_app(server)
    flow = app.initiate_auth_code_flow(["https://graph.microsoft.com/User.Read.All"], redirect_uri=REDIRECT)
    browser = session_for(server)
    page = browser.get(flow["auth_uri"])
    posted = browser.post(f"{server.authority_url}{urlparse(flow['auth_uri']).path}",
                          data={**hidden_fields(page.text), "username": member["upn"], "password": "Wrong-passw0rd"},
                          allow_redirects=False)
    assert posted.status_code == 200
    assert "Your account or password is incorrect." in posted.text


class SignedInToken(AccessTokenProvider):
    """A delegated token MSAL got, handed to msgraph-sdk as an app that signs people in would."""

    def __init__(self, token: str):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context=None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def test_msgraph_sdk_reads_me_with_user_read(server, member):
    """The most common delegated call: sign in with User.Read, then `client.me.get()`."""
    app = public_app(server)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    helper = threading.Thread(target=complete_device_login, args=(server, flow["user_code"], member["upn"]))
    helper.start()
    result = app.acquire_token_by_device_flow(flow)
    helper.join()
    assert "access_token" in result, result
    assert jwt_claims(result["access_token"])["scp"] == "User.Read"

    async def scenario():
        client = graph_client(server, auth=BaseBearerTokenAuthenticationProvider(SignedInToken(result["access_token"])))
        me = await client.me.get()
        try:
            await client.users.get()
            others = None
        except Exception as error:  # kiota raises ODataError with the Graph error body
            others = error
        return me, others

    me, others = run(scenario)
    assert me.id == member["id"] and me.user_principal_name == member["upn"]
    # User.Read reaches the signed-in user only, as in Graph.
    assert others is not None and others.response_status_code == 403, others
    assert others.error.code == "Authorization_RequestDenied"
