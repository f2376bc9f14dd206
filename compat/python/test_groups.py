"""msgraph-sdk (kiota) against guestlist: groups, members by $ref, memberOf, and the seed's promise
that a reset redemption keeps every group membership (contract §3.4)."""

from msgraph.generated.models.group import Group
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.user import User

from graphkit import graph_client, run, unique_email

REDIRECT = "https://myapps.microsoft.com"


def security_group(name: str) -> Group:
    return Group(display_name=name, mail_nickname=name.lower().replace(" ", "-"), mail_enabled=False, security_enabled=True)


async def add_member(client, group_id: str, member_id: str):
    ref = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{member_id}")
    await client.groups.by_group_id(group_id).members.ref.post(ref)


def group_names(collection) -> set:
    assert all(item.odata_type == "#microsoft.graph.group" for item in collection.value), collection.value
    return {item.display_name for item in collection.value}


def test_reset_redemption_keeps_every_group_membership(server):
    email = unique_email("member")
    new_email = unique_email("moved", "newco.example")

    async def scenario():
        client = graph_client(server)
        invited = await client.invitations.post(
            Invitation(invited_user_email_address=email, invite_redirect_url=REDIRECT, send_invitation_message=False)
        )
        user_id = invited.invited_user.id
        project = await client.groups.post(security_group("Project"))
        partners = await client.groups.post(
            Group(display_name="Partners", mail_nickname="partners", mail_enabled=True, security_enabled=False, group_types=["Unified"])
        )
        assert partners.mail == f"partners@{server.tenant_domain}"
        await add_member(client, project.id, user_id)
        await add_member(client, partners.id, project.id)

        before = await client.users.by_user_id(user_id).member_of.get()
        before_transitive = await client.users.by_user_id(user_id).transitive_member_of.get()

        await client.users.by_user_id(user_id).patch(User(other_mails=[new_email]))
        reset = await client.invitations.post(
            Invitation(
                invited_user_email_address=new_email,
                invite_redirect_url=REDIRECT,
                invited_user=User(id=user_id),
                reset_redemption=True,
                send_invitation_message=False,
            )
        )
        after = await client.users.by_user_id(user_id).member_of.get()
        after_transitive = await client.users.by_user_id(user_id).transitive_member_of.get()
        members = await client.groups.by_group_id(project.id).members.get()
        return user_id, reset, before, before_transitive, after, after_transitive, members

    user_id, reset, before, before_transitive, after, after_transitive, members = run(scenario)
    assert reset.invited_user.id == user_id
    assert group_names(before) == {"Project"}
    assert group_names(before_transitive) == {"Project", "Partners"}
    assert group_names(after) == group_names(before)
    assert group_names(after_transitive) == group_names(before_transitive)
    assert [m.id for m in members.value] == [user_id]
    assert members.value[0].odata_type == "#microsoft.graph.user"
    assert members.value[0].mail == new_email


def test_adding_a_member_twice_is_graphs_400(server):
    async def scenario():
        client = graph_client(server)
        group = await client.groups.post(security_group("Twice"))
        invited = await client.invitations.post(
            Invitation(invited_user_email_address=unique_email("twice"), invite_redirect_url=REDIRECT)
        )
        await add_member(client, group.id, invited.invited_user.id)
        try:
            await add_member(client, group.id, invited.invited_user.id)
        except ODataError as error:
            return error
        return None

    error = run(scenario)
    assert error is not None and error.response_status_code == 400
    assert error.error.code == "Request_BadRequest"
    assert "already exist for the following modified properties: 'members'" in error.error.message
