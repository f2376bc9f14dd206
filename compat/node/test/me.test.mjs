// `/me` through @microsoft/microsoft-graph-client with a person's delegated token, as a single-page
// or Node app that signs people in calls it; the token comes from the device code flow, completed on
// the server's /devicelogin page over HTTP. Run through `npm test` (run-tests.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Client, GraphError } from "@microsoft/microsoft-graph-client";

const conn = JSON.parse(readFileSync(process.env.GUESTLIST_CONNECTION_FILE, "utf8"));
const authority = `${conn.authorityUrl.replace(/\/$/, "")}/${conn.tenantId}`;
const PASSWORD = "Corr3ct-Horse!";

const form = (fields) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });

function client(token) {
  return Client.init({ baseUrl: conn.graphUrl, defaultVersion: "v1.0", customHosts: new Set(["127.0.0.1"]), authProvider: (done) => done(null, token) });
}

async function appToken() {
  const res = await fetch(`${authority}/oauth2/v2.0/token`, form({ grant_type: "client_credentials", client_id: conn.clientId, client_secret: conn.clientSecret, scope: "https://graph.microsoft.com/.default" }));
  return (await res.json()).access_token;
}

/** The hidden fields of a page's form (CSRF token, user code). */
function hidden(html) {
  return Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
}

/** Signs `upn` in on /devicelogin for `userCode`, keeping the page's CSRF cookie as a browser would. */
async function approveDevice(userCode, upn) {
  const page = await fetch(`${conn.authorityUrl}/devicelogin`);
  const cookie = page.headers.get("set-cookie").split(";")[0];
  const withCookie = (fields) => ({ ...form(fields), headers: { ...form(fields).headers, cookie } });
  const signin = await fetch(`${conn.authorityUrl}/devicelogin`, withCookie({ ...hidden(await page.text()), user_code: userCode }));
  const done = await fetch(`${conn.authorityUrl}/devicelogin/signin`, withCookie({ ...hidden(await signin.text()), username: upn, password: PASSWORD, decision: "sign-in" }));
  assert.equal(done.status, 200);
  assert.match(await done.text(), /You're signed in|You&#x27;re signed in/);
}

test("GET /me with a User.Read token from the device code flow; app tokens get Graph's 400", async () => {
  const admin = client(await appToken());
  const alias = `node${randomBytes(4).toString("hex")}`;
  const upn = `${alias}@${conn.tenantDomain}`;
  const member = await admin.api("/users").post({
    accountEnabled: true, displayName: alias, mailNickname: alias, userPrincipalName: upn,
    passwordProfile: { password: PASSWORD, forceChangePasswordNextSignIn: false },
  });

  const device = await (await fetch(`${authority}/oauth2/v2.0/devicecode`, form({ client_id: conn.cliClientId, scope: "User.Read offline_access" }))).json();
  await approveDevice(device.user_code, upn);
  const tokens = await (await fetch(`${authority}/oauth2/v2.0/token`, form({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", client_id: conn.cliClientId, device_code: device.device_code }))).json();
  assert.ok(tokens.access_token, JSON.stringify(tokens));

  const me = await client(tokens.access_token).api("/me").select("id,userPrincipalName").get();
  assert.equal(me.id, member.id);
  assert.equal(me.userPrincipalName, upn);
  const others = await client(tokens.access_token).api("/users").get().then(() => null, (e) => e);
  assert.ok(others instanceof GraphError && others.statusCode === 403 && others.code === "Authorization_RequestDenied", String(others));

  const appMe = await admin.api("/me").get().then(() => null, (e) => e);
  assert.ok(appMe instanceof GraphError, String(appMe));
  assert.equal(appMe.statusCode, 400);
  assert.equal(appMe.message, "/me request is only valid with delegated authentication flow.");
});
