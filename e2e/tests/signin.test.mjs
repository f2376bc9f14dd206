// Member sign-in in real headless Chromium (issue 5): the authorization code flow with PKCE to a
// loopback redirect URI (a wrong password first, then the right one; the code exchanged for
// tokens), and the device code flow through /devicelogin (approve, Cancel, an unknown code).
// The security headers of the sign-in pages are checked once. Every page is saved under
// artifacts/screenshots/ as <engine>-signin-<step>-<page>.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { engines, startServer } from "../lib/server.mjs";
import { startMailbox } from "../lib/mail.mjs";
import { graphClient } from "../lib/graph.mjs";
import { openBrowser, screenshot } from "../lib/browser.mjs";

const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const UNKNOWN_CODE_TEXT = "That code didn't work. Check the code and try again; codes expire after 15 minutes.";

/** A PKCE pair (RFC 7636, S256). */
function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** The claims of a JWT, unverified (the server's own tests check signatures). */
function claimsOf(jwt) {
  const [, payload] = jwt.split(".");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

/** The app's loopback redirect URI: a tiny listener that hands over each query it receives. */
async function startLoopbackListener() {
  const received = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const query = new URL(req.url, "http://127.0.0.1").searchParams;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end('<!doctype html><html lang="en"><title>Signed in</title><h1>Authentication complete</h1><p>You can close this window.</p></html>');
    const waiter = waiters.shift();
    if (waiter) waiter(query); else received.push(query);
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  return {
    uri: `http://127.0.0.1:${server.address().port}/callback`,
    /** The query of the next request to the listener. */
    next: (timeoutMs = 30_000) => received.length ? Promise.resolve(received.shift()) : new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no request to the loopback listener in ${timeoutMs} ms`)), timeoutMs);
      waiters.push((query) => { clearTimeout(timer); res(query); });
    }),
    close: () => new Promise((res) => server.close(res)),
  };
}

/** The sign-in form's fields and button, by their accessible names. */
function signInForm(page) {
  return {
    username: page.getByLabel("Email, phone, or Skype"),
    password: page.getByLabel("Password"),
    submit: page.getByRole("button", { name: "Sign in" }),
    cancel: page.getByRole("button", { name: "Cancel" }),
  };
}

async function signIn(page, username, password) {
  const form = signInForm(page);
  await form.username.fill(username);
  await form.password.fill(password);
  await form.submit.click();
}

/** Asserts the headers of a page response: a strict CSP and the rest of the page headers. */
async function assertPageSecurity(page, response, what) {
  const headers = response.headers();
  const csp = headers["content-security-policy"];
  assert.ok(csp, `${what}: has a Content-Security-Policy`);
  const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
  assert.deepEqual(directives["default-src"], ["'none'"], `${what}: ${csp}`);
  assert.equal(directives["script-src"], undefined, `${what}: no script source beyond default-src 'none': ${csp}`);
  assert.ok(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), `${what}: ${csp}`);
  assert.deepEqual(directives["frame-ancestors"], ["'none'"], `${what}: ${csp}`);
  assert.equal(headers["cache-control"], "no-store", what);
  assert.equal(headers["referrer-policy"], "same-origin", what);
  assert.equal(headers["x-frame-options"], "DENY", what);
  assert.equal(headers["x-content-type-options"], "nosniff", what);
  // No script, no inline event handler and no inline style in the document itself.
  const inline = await page.evaluate(() => ({
    scripts: document.scripts.length,
    handlers: [...document.querySelectorAll("*")].flatMap((el) => [...el.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${el.tagName}[${a.name}]`)),
    styles: document.querySelectorAll("style, [style]").length,
  }));
  assert.deepEqual(inline, { scripts: 0, handlers: [], styles: 0 }, what);
}

for (const engine of engines()) {
  describe(`member sign-in in Chromium (${engine})`, () => {
    let mailbox, guestlist, graph, conn, listener;
    const password = `Pw-${randomBytes(9).toString("base64url")}`;
    let member; // { id, userPrincipalName }

    before(async () => {
      mailbox = await startMailbox();
      guestlist = await startServer({ engine, smtpUrl: mailbox.url });
      conn = guestlist.conn;
      assert.ok(conn.cliClientId, "connection.json names the CLI's public client");
      graph = graphClient(conn);
      listener = await startLoopbackListener();
      const created = await graph.post("/users", {
        accountEnabled: true,
        displayName: "Megan Bowen",
        mailNickname: "megan",
        userPrincipalName: `megan@${conn.tenantDomain}`,
        passwordProfile: { password, forceChangePasswordNextSignIn: false },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      member = created.body;
    });

    after(async () => {
      await listener?.close();
      const code = await guestlist?.stop();
      await mailbox?.close();
      assert.equal(code, 0, "the server stops cleanly");
    });

    function authorizeUrl({ challenge, state, nonce, scope = "openid profile offline_access https://graph.microsoft.com/User.Read", loginHint }) {
      const query = new URLSearchParams({
        client_id: conn.cliClientId, response_type: "code", redirect_uri: listener.uri, scope, state, nonce,
        code_challenge: challenge, code_challenge_method: "S256",
      });
      if (loginHint) query.set("login_hint", loginHint);
      return `${conn.authorityUrl}/${conn.tenantId}/oauth2/v2.0/authorize?${query}`;
    }

    const startDeviceCode = async () => {
      const r = await graph.oauth("devicecode", { client_id: conn.cliClientId, scope: "https://graph.microsoft.com/.default offline_access" });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body;
    };
    const pollDeviceCode = (deviceCode) => graph.oauth("token", { grant_type: DEVICE_CODE_GRANT, client_id: conn.cliClientId, device_code: deviceCode });

    /** /devicelogin → the code → the sign-in form for the device's app; `shots` prefixes the screenshots. */
    async function enterDeviceCode(page, userCode, shots) {
      const response = await page.goto(`${conn.authorityUrl}/devicelogin`);
      assert.equal(response.status(), 200);
      await page.getByRole("heading", { name: "Enter code" }).waitFor();
      if (shots) await screenshot(page, `${shots}-03-device-code`);
      await page.getByLabel("Code").fill(userCode);
      await page.getByRole("button", { name: "Next" }).click();
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      assert.match(await page.locator("main").innerText(), /Sign in to continue to guestlist CLI/);
      if (shots) await screenshot(page, `${shots}-04-device-signin`);
    }

    test("authorization code + PKCE: a wrong password says so, the right one redirects with code and state; the code buys tokens once", async () => {
      const { verifier, challenge } = pkce();
      const state = randomBytes(12).toString("hex");
      const nonce = randomBytes(12).toString("hex");
      const browser = await openBrowser();
      let query;
      try {
        const { page } = browser;
        const response = await page.goto(authorizeUrl({ challenge, state, nonce }));
        assert.equal(response.status(), 200);
        await page.getByRole("heading", { name: "Sign in" }).waitFor();
        assert.match(await page.locator("main").innerText(), /Sign in to continue to guestlist CLI/);
        assert.equal(await signInForm(page).cancel.count(), 0, "no Cancel on the authorize page");
        await screenshot(page, `${engine}-signin-01-form`);

        await signIn(page, member.userPrincipalName, `${password}-wrong`);
        await page.getByRole("alert").filter({ hasText: "Your account or password is incorrect." }).waitFor();
        const form = signInForm(page);
        assert.equal(await form.username.inputValue(), member.userPrincipalName, "the username is kept");
        assert.equal(await form.username.getAttribute("aria-invalid"), "true");
        assert.equal(await form.password.inputValue(), "", "the password is not echoed back");
        await screenshot(page, `${engine}-signin-02-error`);

        const received = listener.next();
        await signIn(page, member.userPrincipalName, password);
        query = await received;
        await page.waitForURL((url) => url.href.startsWith(listener.uri));
        await page.getByRole("heading", { name: "Authentication complete" }).waitFor();
      } finally {
        await browser.close();
      }
      assert.equal(query.get("state"), state);
      assert.equal(query.get("error"), null, query.get("error_description") ?? "");
      const code = query.get("code");
      assert.ok(code, `a code in ${query}`);

      const exchange = { grant_type: "authorization_code", client_id: conn.cliClientId, code, redirect_uri: listener.uri, code_verifier: verifier };
      const tokens = await graph.oauth("token", exchange);
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal(tokens.body.token_type, "Bearer");
      assert.ok(tokens.body.refresh_token, "offline_access gives a refresh token");
      const access = claimsOf(tokens.body.access_token);
      assert.equal(access.scp, "User.Read");
      assert.equal(access.oid, member.id);
      assert.equal(access.upn, member.userPrincipalName);
      assert.equal(access.idtyp, "user");
      assert.equal(access.tid, conn.tenantId);
      assert.equal(access.appid, conn.cliClientId);
      const id = claimsOf(tokens.body.id_token);
      assert.equal(id.aud, conn.cliClientId);
      assert.equal(id.oid, member.id);
      assert.equal(id.nonce, nonce);

      const again = await graph.oauth("token", exchange);
      assert.equal(again.status, 400, "a code is single use");
      assert.equal(again.body.error, "invalid_grant");
    });

    test("device code: /devicelogin → code → sign in → success page; the poll then returns tokens", async () => {
      const device = await startDeviceCode();
      assert.equal(device.verification_uri, `${conn.authorityUrl}/devicelogin`);
      assert.equal(device.expires_in, 900);
      assert.equal(device.interval, 5);
      assert.ok(device.message.includes(device.user_code), device.message);
      const pending = await pollDeviceCode(device.device_code);
      assert.equal(pending.status, 400);
      assert.equal(pending.body.error, "authorization_pending");

      const browser = await openBrowser();
      try {
        const { page } = browser;
        await enterDeviceCode(page, device.user_code, `${engine}-signin`);
        await signIn(page, member.userPrincipalName, password);
        await page.getByRole("heading", { name: "You're signed in" }).waitFor();
        assert.match(await page.locator("main").innerText(), /You have signed in to guestlist CLI on your device/);
        await screenshot(page, `${engine}-signin-05-device-success`);
      } finally {
        await browser.close();
      }

      const tokens = await pollDeviceCode(device.device_code);
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.ok(tokens.body.refresh_token, "offline_access gives a refresh token");
      const access = claimsOf(tokens.body.access_token);
      assert.deepEqual(access.scp.split(" ").sort(), ["Directory.ReadWrite.All", "User.Read", "User.ReadWrite.All"]);
      assert.equal(access.oid, member.id);
      assert.equal(access.appid, conn.cliClientId);
      const self = await graph.getAs(tokens.body.access_token, `/users/${member.id}?$select=id,userPrincipalName`);
      assert.equal(self.status, 200, `the token reads the signed-in user: ${JSON.stringify(self.body)}`);
      assert.equal(self.body.userPrincipalName, member.userPrincipalName);

      const spent = await pollDeviceCode(device.device_code);
      assert.equal(spent.status, 400, "the device code gives tokens once");
      assert.equal(spent.body.error, "invalid_grant");
    });

    test("device code: Cancel declines the device, and the code no longer works", async () => {
      const device = await startDeviceCode();
      const browser = await openBrowser();
      try {
        const { page } = browser;
        // Typed as a person might: lower case, with a space.
        const typed = `${device.user_code.slice(0, 4)} ${device.user_code.slice(4)}`.toLowerCase();
        await enterDeviceCode(page, typed, null);
        await signInForm(page).cancel.click();
        await page.getByRole("heading", { name: "Sign-in cancelled" }).waitFor();
        await screenshot(page, `${engine}-signin-06-device-cancelled`);

        await page.goto(`${conn.authorityUrl}/devicelogin`);
        await page.getByLabel("Code").fill(device.user_code);
        await page.getByRole("button", { name: "Next" }).click();
        await page.getByRole("alert").filter({ hasText: UNKNOWN_CODE_TEXT }).waitFor();
      } finally {
        await browser.close();
      }
      const declined = await pollDeviceCode(device.device_code);
      assert.equal(declined.status, 400, JSON.stringify(declined.body));
      // Entra's device code docs name it `authorization_declined` (RFC 8628 says `access_denied`).
      assert.equal(declined.body.error, "authorization_declined", JSON.stringify(declined.body));
      assert.match(declined.body.error_description, /declined/);
    });

    test("device code: an unknown code says so on the page", async () => {
      const browser = await openBrowser();
      try {
        const { page } = browser;
        await page.goto(`${conn.authorityUrl}/devicelogin`);
        await page.getByLabel("Code").fill("BCDFGHJKL");
        await page.getByRole("button", { name: "Next" }).click();
        await page.getByRole("alert").filter({ hasText: UNKNOWN_CODE_TEXT }).waitFor();
        await page.getByRole("heading", { name: "Enter code" }).waitFor();
        assert.equal(await page.getByLabel("Code").getAttribute("aria-invalid"), "true");
        await screenshot(page, `${engine}-signin-07-device-unknown-code`);
      } finally {
        await browser.close();
      }
    });

    test("the sign-in pages send a strict CSP (default-src 'none') and carry no script", async () => {
      const browser = await openBrowser();
      try {
        const { page } = browser;
        const { challenge } = pkce();
        const authorize = await page.goto(authorizeUrl({ challenge, state: "s", nonce: "n", loginHint: member.userPrincipalName }));
        assert.equal(authorize.status(), 200);
        await assertPageSecurity(page, authorize, "authorize page");
        const formAction = /form-action ([^;]*)/.exec(authorize.headers()["content-security-policy"])?.[1].split(/\s+/);
        assert.deepEqual(formAction, ["'self'", new URL(listener.uri).origin], "the form may post only here and to the app's loopback origin");
        assert.equal(await signInForm(page).username.inputValue(), member.userPrincipalName, "login_hint fills the username");

        const device = await page.goto(`${conn.authorityUrl}/devicelogin`);
        assert.equal(device.status(), 200);
        await assertPageSecurity(page, device, "device login page");
      } finally {
        await browser.close();
      }
    });
  });
}
