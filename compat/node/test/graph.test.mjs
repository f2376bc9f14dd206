// @microsoft/microsoft-graph-client 3.0.7 against guestlist (clients.md §4).
// Run through `npm test` (run-tests.mjs), which starts the server and sets NODE_EXTRA_CA_CERTS.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Client, GraphError } from "@microsoft/microsoft-graph-client";

const connFile = process.env.GUESTLIST_CONNECTION_FILE;
if (!connFile) throw new Error("GUESTLIST_CONNECTION_FILE is not set: run these tests with `npm test`");
const conn = JSON.parse(readFileSync(connFile, "utf8"));
const graphUrl = conn.graphUrl.replace(/\/$/, "");
const origin = new URL(graphUrl).origin;
const REDIRECT = "https://myapps.microsoft.com";
const RESET_MISMATCH =
  "The email you\u2019re using to invite this user doesn\u2019t match any emails on the user object. " +
  "Please add this email to the user object and try again.";

const uniqueEmail = (prefix, domain = "example.com") => `${prefix}.${randomBytes(4).toString("hex")}@${domain}`;
const extUpn = (email) => `${email.replace("@", "_")}#EXT#@${conn.tenantDomain}`;

let accessToken;

async function fetchToken() {
  // Plain OAuth2 client credentials, discovering the token endpoint as MSAL does.
  const authority = `${conn.authorityUrl.replace(/\/$/, "")}/${conn.tenantId}`;
  const discovery = await fetch(`${authority}/v2.0/.well-known/openid-configuration`);
  assert.equal(discovery.status, 200);
  const { token_endpoint } = await discovery.json();
  assert.ok(token_endpoint.startsWith(origin + "/"), token_endpoint);
  const res = await fetch(token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: conn.clientId,
      client_secret: conn.clientSecret,
      scope: "https://graph.microsoft.com/.default",
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, "Bearer");
  assert.equal(typeof body.expires_in, "number");
  return body.access_token;
}

function graph(defaultVersion = "v1.0", token = () => accessToken) {
  return Client.init({
    baseUrl: graphUrl,
    defaultVersion,
    customHosts: new Set(["127.0.0.1"]),
    authProvider: (done) => done(null, token()),
  });
}

async function invite(client, email, displayName) {
  const inv = await client.api("/invitations").post({
    invitedUserEmailAddress: email,
    inviteRedirectUrl: REDIRECT,
    ...(displayName ? { invitedUserDisplayName: displayName } : {}),
    sendInvitationMessage: false,
  });
  assert.equal(typeof inv, "object", "a 2xx without application/json gives a stream, not an object");
  assert.ok(inv?.invitedUser?.id, JSON.stringify(inv));
  return inv;
}

async function graphError(promise) {
  try {
    const r = await promise;
    assert.fail(`expected a GraphError, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof GraphError)) throw e;
    return e;
  }
}

before(async () => {
  accessToken = await fetchToken();
});

test("token endpoint rejects a wrong secret with AADSTS7000215", async () => {
  const res = await fetch(`${conn.authorityUrl.replace(/\/$/, "")}/${conn.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: conn.clientId, client_secret: "wrong", scope: "https://graph.microsoft.com/.default" }),
  });
  assert.ok(res.status === 400 || res.status === 401, `status ${res.status}`);
  const body = await res.json();
  assert.equal(body.error, "invalid_client");
  assert.ok(body.error_codes.includes(7000215), JSON.stringify(body));
});

test("invite a guest", async () => {
  const email = uniqueEmail("alice");
  const inv = await invite(graph(), email, "Alice");
  assert.match(inv.invitedUser.id, /^[0-9a-f-]{36}$/i);
  assert.ok(inv.inviteRedeemUrl.startsWith(origin + "/"), inv.inviteRedeemUrl);
  assert.equal(inv.status, "PendingAcceptance");
  assert.equal(inv.invitedUserEmailAddress, email);
  assert.equal(inv.invitedUserDisplayName, "Alice");
  assert.equal(inv.resetRedemption, false);
  assert.equal(inv.invitedUserType, "Guest");
});

test("get a user by id and by encodeURIComponent(UPN)", async () => {
  const client = graph();
  const email = uniqueEmail("bob");
  const inv = await invite(client, email, "Bob");
  const byId = await client.api(`/users/${inv.invitedUser.id}`).get();
  assert.equal(byId.id, inv.invitedUser.id);
  assert.equal(byId.userPrincipalName, extUpn(email));
  assert.equal(byId.mail, email);
  const byUpn = await client.api(`/users/${encodeURIComponent(extUpn(email))}`).get();
  assert.equal(byUpn.id, inv.invitedUser.id);
  const guest = await client.api(`/users/${inv.invitedUser.id}`).select(["id", "userType", "externalUserState", "creationType", "otherMails"]).get();
  assert.equal(guest.userType, "Guest");
  assert.equal(guest.externalUserState, "PendingAcceptance");
  assert.equal(guest.creationType, "Invitation");
  assert.deepEqual(guest.otherMails, []);
});

test("unknown user is 404 Request_ResourceNotFound", async () => {
  const e = await graphError(graph().api(`/users/${randomUUID()}`).get());
  assert.equal(e.statusCode, 404);
  assert.equal(e.code, "Request_ResourceNotFound");
  assert.ok(e.requestId, "innerError.request-id");
});

test("PATCH otherMails, read back, filter by otherMails/any (unencoded / ( : @)", async () => {
  const client = graph();
  const target = await invite(client, uniqueEmail("carol"));
  const other = await invite(client, uniqueEmail("dave"));
  const needle = uniqueEmail("needle", "example.org");
  const patched = await client.api(`/users/${target.invitedUser.id}`).patch({ otherMails: [needle, "carol.home@example.net"] });
  assert.ok(patched === undefined || typeof patched === "object");
  await client.api(`/users/${other.invitedUser.id}`).patch({ otherMails: [uniqueEmail("hay", "example.org")] });
  const back = await client.api(`/users/${target.invitedUser.id}`).select(["id", "otherMails"]).get();
  assert.deepEqual(back.otherMails, [needle, "carol.home@example.net"]);

  const found = await client.api("/users").filter(`otherMails/any(x:x eq '${needle}')`).select(["id", "otherMails"]).get();
  assert.deepEqual(found.value.map((u) => u.id), [target.invitedUser.id]);

  // With ConsistencyLevel and $count=true, as the contract's advanced queries send it.
  const counted = await client.api("/users").header("ConsistencyLevel", "eventual").count(true)
    .filter(`otherMails/any(x:x eq '${needle}')`).select(["id"]).get();
  assert.deepEqual(counted.value.map((u) => u.id), [target.invitedUser.id]);
  assert.equal(counted["@odata.count"], 1);
});

test("reset redemption to an address in otherMails", async () => {
  const client = graph();
  const old = uniqueEmail("erin");
  const next = uniqueEmail("erin.new", "example.org");
  const inv = await invite(client, old);
  await client.api(`/users/${inv.invitedUser.id}`).patch({ otherMails: [next] });
  const res = await client.api("/invitations").post({
    invitedUserEmailAddress: next,
    inviteRedirectUrl: REDIRECT,
    invitedUser: { id: inv.invitedUser.id },
    resetRedemption: true,
  });
  assert.equal(res.invitedUser.id, inv.invitedUser.id);
  assert.equal(res.status, "PendingAcceptance");
  assert.equal(res.resetRedemption, true);
  assert.notEqual(res.inviteRedeemUrl, inv.inviteRedeemUrl);
  const user = await client.api(`/users/${inv.invitedUser.id}`).select(["id", "mail", "userPrincipalName", "externalUserState"]).get();
  assert.equal(user.mail, next);
  assert.equal(user.userPrincipalName, extUpn(next));
  assert.equal(user.externalUserState, "PendingAcceptance");
});

test("reset redemption with an unlisted email is 400 BadRequest", async () => {
  const client = graph();
  const inv = await invite(client, uniqueEmail("frank"));
  const e = await graphError(client.api("/invitations").post({
    invitedUserEmailAddress: uniqueEmail("stranger", "example.org"),
    inviteRedirectUrl: REDIRECT,
    invitedUser: { id: inv.invitedUser.id },
    resetRedemption: true,
  }));
  assert.equal(e.statusCode, 400);
  assert.equal(e.code, "BadRequest");
  assert.equal(e.message, RESET_MISMATCH);
});

test("reset redemption of an unknown user is 404", async () => {
  const e = await graphError(graph().api("/invitations").post({
    invitedUserEmailAddress: uniqueEmail("ghost"),
    inviteRedirectUrl: REDIRECT,
    invitedUser: { id: randomUUID() },
    resetRedemption: true,
  }));
  assert.equal(e.statusCode, 404);
  assert.equal(e.code, "Request_ResourceNotFound");
});

test("invite through /beta with .version('beta')", async () => {
  const client = graph();
  const email = uniqueEmail("beta");
  const inv = await client.api("/invitations").version("beta").post({ invitedUserEmailAddress: email, inviteRedirectUrl: REDIRECT });
  assert.equal(inv.status, "PendingAcceptance");
  assert.equal(inv.invitedUserEmailAddress, email);
  const user = await client.api(`/users/${inv.invitedUser.id}`).get();
  assert.equal(user.mail, email);
  const viaBetaDefault = await graph("beta").api(`/users/${inv.invitedUser.id}`).get();
  assert.equal(viaBetaDefault.id, inv.invitedUser.id);
});

test("no token is 401 InvalidAuthenticationToken", async () => {
  // An http URL would drop the header client-side; over https an empty token reaches the server as no token.
  const res = await fetch(`${graphUrl}/v1.0/users`);
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.error.code, "InvalidAuthenticationToken");
  const e = await graphError(graph("v1.0", () => "not-a-jwt").api("/users").get());
  assert.equal(e.statusCode, 401);
  assert.equal(e.code, "InvalidAuthenticationToken");
});
