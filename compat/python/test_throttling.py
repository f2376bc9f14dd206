"""Opt-in invitation throttling (DECISIONS 17): msgraph-sdk's retry handler honours the 429's
Retry-After and the invitation goes through (issue 3)."""

import subprocess

import httpx
from msgraph.generated.models.invitation import Invitation

from conftest import guestlist_bin
from graphkit import graph_client, run, unique_email


def set_invitation_throttle(server, value: str) -> None:
    cmd = [guestlist_bin(), "tenant", "set", "--data-dir", str(server.data_dir), "--invitation-throttle", value, "--json"]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_sdk_retries_throttled_invitations(fresh_server):
    # 2 requests per 3-second window; six invitations sent back to back span at most two windows
    # before the first refusal, so at least one is refused whatever the machine's speed.
    set_invitation_throttle(fresh_server, "2/3")
    seen = []  # (status, Retry-Attempt header) of every request that reached the server

    async def scenario():
        client = graph_client(fresh_server)
        # Below the SDK's middleware (retry included): what actually went over the wire.
        pipeline = client.request_adapter._http_client._transport.pipeline
        inner = pipeline._transport

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request):
                response = await inner.handle_async_request(request)
                seen.append((response.status_code, request.headers.get("retry-attempt")))
                return response

            async def aclose(self):
                await inner.aclose()

        pipeline._transport = Recording()
        invited = []
        for _ in range(6):
            invitation = Invitation(invited_user_email_address=unique_email("throttled"), invite_redirect_url="https://example.com/")
            invited.append(await client.invitations.post(invitation))
        return invited

    invited = run(scenario)
    assert [i.status for i in invited] == ["PendingAcceptance"] * 6
    assert len({i.invited_user.id for i in invited}) == 6
    assert any(status == 429 for status, _ in seen), seen
    # Every refusal was followed by a retry the handler marked, which then succeeded.
    assert any(status == 201 and attempt for status, attempt in seen), seen
    assert sum(1 for status, _ in seen if status == 201) == 6
