"""msgraph-sdk (kiota) against guestlist: invitations, users, reset redemption, errors (clients.md §3)."""

import re
import uuid

import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from graphkit import (
    GRAPH_SCOPE,
    RESET_MISMATCH_MESSAGE,
    credential,
    ext_upn,
    graph_client,
    msal_app,
    run,
    track,
    unique_email,
)

REDIRECT = "https://myapps.microsoft.com"
GUEST_PROPS = ["id", "userType", "externalUserState", "creationType", "userPrincipalName", "mail", "otherMails"]
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


# ---------------------------------------------------------------- helpers


def invitation(email, display_name=None, **kw) -> Invitation:
    return Invitation(
        invited_user_email_address=email,
        invite_redirect_url=REDIRECT,
        invited_user_display_name=display_name,
        send_invitation_message=False,
        **kw,
    )


def reset(user_id, email) -> Invitation:
    return Invitation(
        invited_user_email_address=email,
        invite_redirect_url=REDIRECT,
        invited_user=User(id=user_id),
        reset_redemption=True,
        send_invitation_message=False,
    )


async def invite(client, email, display_name=None) -> Invitation:
    inv = await client.invitations.post(invitation(email, display_name))
    assert inv is not None, "201 without Content-Type: application/json makes the SDK return None"
    return inv


def select(*props) -> RequestConfiguration:
    return RequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(props))
    )


async def get_guest(client, key) -> User:
    user = await client.users.by_user_id(key).get(request_configuration=select(*GUEST_PROPS))
    assert user is not None
    return user


async def expect_odata_error(awaitable) -> ODataError:
    try:
        result = await awaitable
    except ODataError as e:
        assert e.error is not None, "error body not parsed"
        assert e.error.inner_error is not None and e.error.inner_error.request_id, "innerError.request-id missing"
        return e
    pytest.fail(f"expected an ODataError, got {result!r}")


def origin(url: str) -> str:
    m = re.match(r"^(https?://[^/]+)", url)
    assert m, url
    return m.group(1)


class MsalCredential:
    """An azure-core style credential over MSAL, as clients.md §3 allows."""

    def __init__(self, app):
        self.app = app

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        r = self.app.acquire_token_for_client(scopes=list(scopes))
        assert "access_token" in r, r
        return AccessToken(r["access_token"], 2_000_000_000)


class StaticTokenCredential:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, 2_000_000_000)


# ---------------------------------------------------------------- invitations


def test_invite_guest_returns_the_invitation(server):
    email = unique_email("alice")

    async def scenario():
        return await invite(graph_client(server), email, "Alice Example")

    inv = run(scenario)
    assert inv.id
    assert inv.invited_user is not None and GUID.match(inv.invited_user.id or ""), inv.invited_user
    assert inv.invite_redeem_url.startswith(origin(server.graph_url) + "/"), inv.invite_redeem_url
    assert inv.status == "PendingAcceptance"
    assert inv.invited_user_email_address == email
    assert inv.reset_redemption is False
    assert inv.invited_user_type == "Guest"
    assert inv.invited_user_display_name == "Alice Example"
    assert inv.invite_redirect_url == REDIRECT
    assert inv.send_invitation_message is False
    if inv.invited_user.user_principal_name is not None:
        assert inv.invited_user.user_principal_name == ext_upn(email, server.tenant_domain)


def test_invite_status_is_201_json(server):
    option = ResponseHandlerOption(NativeResponseHandler())

    async def scenario():
        client = graph_client(server)
        cfg = RequestConfiguration(options=[option])
        return await client.invitations.post(invitation(unique_email("raw")), request_configuration=cfg)

    response = run(scenario)
    assert response.status_code == 201
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    assert response.json()["status"] == "PendingAcceptance"


def test_invite_default_display_name_is_null_in_response(server):
    # DECISIONS 8: the invitation echoes null; the user gets the local part.
    email = unique_email("nodisplay")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email)
        user = await client.users.by_user_id(inv.invited_user.id).get()
        return inv, user

    inv, user = run(scenario)
    assert inv.invited_user_display_name is None
    assert user.display_name == email.split("@")[0]


def test_invite_via_beta(server):
    email = unique_email("beta")

    async def scenario():
        inv = await invite(graph_client(server, version="beta"), email, "Beta Guest")
        user = await get_guest(graph_client(server, version="v1.0"), inv.invited_user.id)
        beta_user = await get_guest(graph_client(server, version="beta"), inv.invited_user.id)
        return inv, user, beta_user

    inv, user, beta_user = run(scenario)
    assert inv.status == "PendingAcceptance"
    assert inv.invited_user_email_address == email
    assert inv.invite_redeem_url.startswith(origin(server.graph_url) + "/")
    assert user.id == beta_user.id == inv.invited_user.id
    assert user.user_type == "Guest" and user.creation_type == "Invitation"
    assert beta_user.mail == email


def test_reinvite_same_address_returns_same_user(server):
    # DECISIONS 7: same invitedUser.id, fresh redeem URL.
    email = unique_email("again")

    async def scenario():
        client = graph_client(server)
        return await invite(client, email), await invite(client, email)

    first, second = run(scenario)
    assert second.invited_user.id == first.invited_user.id
    assert second.invite_redeem_url != first.invite_redeem_url


def test_invite_with_garbage_email_is_400(server):
    async def scenario():
        return await expect_odata_error(graph_client(server).invitations.post(invitation("not an email")))

    e = run(scenario)
    assert e.response_status_code == 400
    assert e.error.code in ("BadRequest", "Request_BadRequest"), e.error.code
    assert e.error.message


def test_invite_without_redirect_url_is_400(server):
    async def scenario():
        body = Invitation(invited_user_email_address=unique_email("noredirect"))
        return await expect_odata_error(graph_client(server).invitations.post(body))

    e = run(scenario)
    assert e.response_status_code == 400


# ---------------------------------------------------------------- users


def test_get_user_by_id_and_by_upn(server):
    email = unique_email("bob")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email, "Bob")
        by_id = await client.users.by_user_id(inv.invited_user.id).get()
        upn = ext_upn(email, server.tenant_domain)
        # The SDK percent-encodes '#' and '@' in the key: .../bob.x_example.com%23EXT%23%40<domain>
        by_upn = await client.users.by_user_id(upn).get()
        return inv, by_id, by_upn, upn

    inv, by_id, by_upn, upn = run(scenario)
    assert by_id.id == inv.invited_user.id
    assert by_id.user_principal_name == upn
    assert by_id.mail == email
    assert by_id.display_name == "Bob"
    assert by_upn.id == inv.invited_user.id
    assert by_upn.user_principal_name == upn


def test_default_properties_exclude_guest_fields(server):
    async def scenario():
        client = graph_client(server)
        inv = await invite(client, unique_email("defaults"))
        return await client.users.by_user_id(inv.invited_user.id).get()

    user = run(scenario)
    assert user.id and user.user_principal_name
    # contract §2: userType/externalUserState/creationType are returned only with $select.
    assert user.user_type is None
    assert user.external_user_state is None
    assert user.creation_type is None


def test_select_guest_properties(server):
    email = unique_email("carol")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email)
        user = await client.users.by_user_id(inv.invited_user.id).get(
            request_configuration=select("userType", "externalUserState", "creationType", "otherMails")
        )
        return inv, user

    inv, user = run(scenario)
    assert user.user_type == "Guest"
    assert user.external_user_state == "PendingAcceptance"
    assert user.creation_type == "Invitation"
    assert isinstance(user.other_mails, list)
    # $select limits the payload: the unselected UPN is absent.
    assert user.user_principal_name is None


def test_unknown_user_is_404(server):
    missing = str(uuid.uuid4())

    async def scenario():
        return await expect_odata_error(graph_client(server).users.by_user_id(missing).get())

    e = run(scenario)
    assert e.response_status_code == 404
    assert e.error.code == "Request_ResourceNotFound"
    assert missing in e.error.message


def test_patch_other_mails_and_read_back(server):
    email = unique_email("dave")
    extra = [unique_email("dave.alt", "example.org"), unique_email("dave.home", "example.net")]
    option = ResponseHandlerOption(NativeResponseHandler())

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email)
        uid = inv.invited_user.id
        patched = await client.users.by_user_id(uid).patch(User(other_mails=extra))
        after = await get_guest(client, uid)
        raw = await client.users.by_user_id(uid).patch(
            User(other_mails=list(reversed(extra))), request_configuration=RequestConfiguration(options=[option])
        )
        again = await get_guest(client, uid)
        return patched, after, raw, again

    patched, after, raw, again = run(scenario)
    assert patched is None or isinstance(patched, User)
    assert after.other_mails == extra
    assert after.mail == email
    assert raw.status_code in (200, 204)
    assert again.other_mails == list(reversed(extra))


def test_filter_by_other_mails_any(server):
    marker = unique_email("needle", "example.org")

    async def scenario():
        client = graph_client(server)
        target = await invite(client, unique_email("erin"))
        other = await invite(client, unique_email("frank"))
        await client.users.by_user_id(target.invited_user.id).patch(User(other_mails=[marker]))
        await client.users.by_user_id(other.invited_user.id).patch(
            User(other_mails=[unique_email("hay", "example.org")])
        )
        q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"otherMails/any(x:x eq '{marker}')", select=["id", "otherMails"]
        )
        found = await client.users.get(request_configuration=RequestConfiguration(query_parameters=q))
        q_none = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"otherMails/any(x:x eq '{unique_email('nobody')}')", select=["id"]
        )
        none = await client.users.get(request_configuration=RequestConfiguration(query_parameters=q_none))
        return target, found, none

    target, found, none = run(scenario)
    assert [u.id for u in found.value] == [target.invited_user.id]
    assert found.value[0].other_mails == [marker]
    assert none.value == []


def test_filter_guests_by_user_type(server):
    async def scenario():
        client = graph_client(server)
        inv = await invite(client, unique_email("listed"))
        q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="userType eq 'Guest'", select=["id", "userType"], top=999
        )
        page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=q))
        return inv, page

    inv, page = run(scenario)
    assert inv.invited_user.id in {u.id for u in page.value}
    assert {u.user_type for u in page.value} == {"Guest"}


# ---------------------------------------------------------------- reset redemption


def test_reset_redemption_to_other_mail(server):
    old = unique_email("grace")
    new = unique_email("grace.new", "example.org")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, old)
        uid = inv.invited_user.id
        await client.users.by_user_id(uid).patch(User(other_mails=[new]))
        res = await client.invitations.post(reset(uid, new))
        user = await get_guest(client, uid)
        return inv, res, user

    inv, res, user = run(scenario)
    assert res is not None
    assert res.invited_user.id == inv.invited_user.id
    assert res.status == "PendingAcceptance"
    assert res.reset_redemption is True
    assert res.invited_user_email_address == new
    assert res.invite_redeem_url.startswith(origin(server.graph_url) + "/")
    assert res.invite_redeem_url != inv.invite_redeem_url
    assert user.id == inv.invited_user.id
    assert user.external_user_state == "PendingAcceptance"
    assert user.mail == new
    # DECISIONS 1, default: the UPN becomes the #EXT# form of the new address.
    assert user.user_principal_name == ext_upn(new, server.tenant_domain)
    assert user.user_type == "Guest" and user.creation_type == "Invitation"


def test_reset_redemption_to_current_mail(server):
    # DECISIONS 4: the user's mail qualifies as well as otherMails.
    email = unique_email("heidi")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email)
        res = await client.invitations.post(reset(inv.invited_user.id, email))
        return inv, res

    inv, res = run(scenario)
    assert res.invited_user.id == inv.invited_user.id
    assert res.status == "PendingAcceptance"


def test_reset_with_unlisted_email_is_400(server):
    email = unique_email("ivan")
    stranger = unique_email("stranger", "example.org")

    async def scenario():
        client = graph_client(server)
        inv = await invite(client, email)
        e = await expect_odata_error(client.invitations.post(reset(inv.invited_user.id, stranger)))
        user = await get_guest(client, inv.invited_user.id)
        return e, user

    e, user = run(scenario)
    assert e.response_status_code == 400
    assert e.error.code == "BadRequest"
    assert e.error.message == RESET_MISMATCH_MESSAGE
    assert user.mail == email  # nothing changed


def test_reset_unknown_user_is_404(server):
    missing = str(uuid.uuid4())

    async def scenario():
        return await expect_odata_error(
            graph_client(server).invitations.post(reset(missing, unique_email("ghost")))
        )

    e = run(scenario)
    assert e.response_status_code == 404
    assert e.error.code == "Request_ResourceNotFound"


def test_reset_without_invited_user_is_400(server):
    async def scenario():
        body = invitation(unique_email("judy"), reset_redemption=True)
        return await expect_odata_error(graph_client(server).invitations.post(body))

    e = run(scenario)
    assert e.response_status_code == 400
    assert e.error.code == "BadRequest"


def test_reset_needs_more_than_user_invite_all(server, invite_only_app):
    email = unique_email("mallory")
    limited = credential(server, invite_only_app["clientId"], invite_only_app["clientSecret"])

    async def scenario():
        limited_client = graph_client(server, cred=limited)
        # User.Invite.All is enough to invite...
        inv = await invite(limited_client, email)
        # ...but not to reset (contract §1.5, DECISIONS 6).
        e = await expect_odata_error(limited_client.invitations.post(reset(inv.invited_user.id, email)))
        return e

    e = run(scenario)
    assert e.response_status_code == 403
    assert e.error.code == "Forbidden"
    assert e.error.message == "Generic authorization exception."


# ---------------------------------------------------------------- authentication


def test_no_token_is_401(server):
    async def scenario():
        client = graph_client(server, auth=AnonymousAuthenticationProvider())
        return await expect_odata_error(client.users.get())

    e = run(scenario)
    assert e.response_status_code == 401
    assert e.error.code == "InvalidAuthenticationToken"


def test_malformed_token_is_401(server):
    async def scenario():
        client = graph_client(server, cred=StaticTokenCredential("not-a-jwt"))
        return await expect_odata_error(client.invitations.post(invitation(unique_email("x"))))

    e = run(scenario)
    assert e.response_status_code == 401
    assert e.error.code == "InvalidAuthenticationToken"


def test_msal_token_drives_the_sdk(server):
    cred = MsalCredential(msal_app(server))

    async def scenario():
        client = graph_client(server, cred=cred)
        inv = await invite(client, unique_email("msal"))
        return inv, await client.users.by_user_id(inv.invited_user.id).get()

    inv, user = run(scenario)
    assert user.id == inv.invited_user.id


def test_minimal_client_with_ssl_cert_file(server, monkeypatch):
    # clients.md §3: the default httpx client trusts SSL_CERT_FILE; base_url set after construction.
    monkeypatch.setenv("SSL_CERT_FILE", server.ca)

    async def scenario():
        client = track(GraphServiceClient(credentials=credential(server), scopes=[GRAPH_SCOPE]))
        client.request_adapter.base_url = f"{server.graph_url}/v1.0"
        inv = await invite(client, unique_email("minimal"))
        return inv, await client.users.by_user_id(inv.invited_user.id).get()

    inv, user = run(scenario)
    assert user.id == inv.invited_user.id
