// The guest's redemption flow in real headless Chromium (issue 4): invitation mail → link →
// Continue → Send code → the code from the received mail → consent → the redirect target; then a
// reset to an address from otherMails, the old link dead and the new one redeeming. Also a wrong
// code, an expired link, and a double-clicked Accept. Every page is saved under artifacts/screenshots/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { engines, startServer } from "../lib/server.mjs";
import { startMailbox } from "../lib/mail.mjs";
import { graphClient } from "../lib/graph.mjs";
import { openBrowser, screenshot } from "../lib/browser.mjs";

/** The redirect target: a tiny page on another loopback port. */
async function startRedirectTarget() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end('<!doctype html><html lang="en"><title>Welcome</title><h1>Welcome to the partner portal</h1></html>');
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  return { url: `http://127.0.0.1:${server.address().port}/welcome`, close: () => new Promise((res) => server.close(res)) };
}

for (const engine of engines()) {
  describe(`redemption in Chromium (${engine})`, () => {
    let mailbox, guestlist, graph, target;

    before(async () => {
      mailbox = await startMailbox();
      guestlist = await startServer({ engine, smtpUrl: mailbox.url });
      graph = graphClient(guestlist.conn);
      target = await startRedirectTarget();
    });

    after(async () => {
      await target?.close();
      const code = await guestlist?.stop();
      await mailbox?.close();
      assert.equal(code, 0, "the server stops cleanly");
    });

    async function invite(email) {
      const r = await graph.post("/invitations", { invitedUserEmailAddress: email, inviteRedirectUrl: target.url, sendInvitationMessage: true });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    }

    /** From the mailed link to the consent page, reading the code from the mail. */
    async function verifyByMail(page, link, email, shots) {
      await page.goto(link);
      await page.getByRole("heading", { name: /invited to Contoso/ }).waitFor();
      if (shots) await screenshot(page, `${shots}-1-landing`);
      await page.getByRole("link", { name: "Continue" }).click();
      await page.getByRole("heading", { name: "Verify your email" }).waitFor();
      if (shots) await screenshot(page, `${shots}-2-send-code`);
      const before = mailbox.codeCount(email);
      await page.getByRole("button", { name: "Send code" }).click();
      await page.getByRole("heading", { name: "Enter code" }).waitFor();
      if (shots) await screenshot(page, `${shots}-3-enter-code`);
      const code = await mailbox.code(email, before);
      await page.getByLabel("Code").fill(code);
      await page.getByRole("button", { name: "Verify" }).click();
      await page.getByRole("heading", { name: "Review permissions" }).waitFor();
      if (shots) await screenshot(page, `${shots}-4-consent`);
    }

    test("invite → mail → code → consent → redirect; reset → old link dead → new link redeems, same user and groups", async () => {
      const invited = await invite("ann@example.com");
      const id = invited.invitedUser.id;
      const link = await mailbox.redeemLink("ann@example.com");
      assert.equal(link, invited.inviteRedeemUrl);
      const group = await graph.post("/groups", { displayName: "Partners", mailEnabled: false, mailNickname: "partners", securityEnabled: true });
      assert.equal(group.status, 201);
      const added = await graph.post(`/groups/${group.body.id}/members/$ref`, { "@odata.id": `https://graph.microsoft.com/v1.0/directoryObjects/${id}` });
      assert.equal(added.status, 204);

      const browser = await openBrowser();
      try {
        const { page } = browser;
        await verifyByMail(page, link, "ann@example.com", `${engine}-01`);
        await page.getByRole("button", { name: "Accept" }).click();
        await page.waitForURL(target.url);
        await page.getByRole("heading", { name: "Welcome to the partner portal" }).waitFor();
        await screenshot(page, `${engine}-01-5-redirect-target`);
      } finally {
        await browser.close();
      }
      const accepted = await graph.get(`/users/${id}?$select=id,externalUserState,externalUserStateChangeDateTime,identities`);
      assert.equal(accepted.body.externalUserState, "Accepted");
      assert.ok(accepted.body.externalUserStateChangeDateTime);
      assert.deepEqual(accepted.body.identities.filter((i) => i.issuer === "mail"), [{ signInType: "federated", issuer: "mail", issuerAssignedId: "ann@example.com" }]);

      // Reset to an address from otherMails (contract §3.4).
      assert.equal((await graph.patch(`/users/${id}`, { otherMails: ["ann@newco.example"] })).status, 204);
      const reset = await graph.post("/invitations", {
        invitedUserEmailAddress: "ann@newco.example", inviteRedirectUrl: target.url, sendInvitationMessage: true, invitedUser: { id }, resetRedemption: true,
      });
      assert.equal(reset.status, 201, JSON.stringify(reset.body));
      const newLink = await mailbox.redeemLink("ann@newco.example");
      assert.equal(newLink, reset.body.inviteRedeemUrl);

      const again = await openBrowser();
      try {
        const { page } = again;
        const old = await page.goto(link);
        assert.equal(old.status(), 410);
        await page.getByRole("heading", { name: "This invitation link is no longer valid" }).waitFor();
        await screenshot(page, `${engine}-02-old-link-after-reset`);
        await verifyByMail(page, newLink, "ann@newco.example", null);
        await page.getByRole("button", { name: "Accept" }).click();
        await page.waitForURL(target.url);
      } finally {
        await again.close();
      }
      const after = await graph.get(`/users/${id}?$select=id,externalUserState,identities,mail,userPrincipalName`);
      assert.equal(after.body.id, id);
      assert.equal(after.body.externalUserState, "Accepted");
      assert.equal(after.body.mail, "ann@newco.example");
      assert.deepEqual(after.body.identities.filter((i) => i.issuer === "mail"), [{ signInType: "federated", issuer: "mail", issuerAssignedId: "ann@newco.example" }]);
      const groups = await graph.get(`/users/${id}/memberOf`);
      assert.deepEqual(groups.body.value.map((g) => g.id), [group.body.id], "memberships survive the reset");
    });

    test("a wrong code says what is wrong and how many tries are left; the right one still works", async () => {
      await invite("typo@example.com");
      const link = await mailbox.redeemLink("typo@example.com");
      const browser = await openBrowser();
      try {
        const { page } = browser;
        await page.goto(link);
        await page.getByRole("link", { name: "Continue" }).click();
        await page.getByRole("button", { name: "Send code" }).click();
        await page.getByRole("heading", { name: "Enter code" }).waitFor();
        const code = await mailbox.code("typo@example.com");
        await page.getByLabel("Code").fill(code === "00000000" ? "11111111" : "00000000");
        await page.getByRole("button", { name: "Verify" }).click();
        await page.getByRole("alert").filter({ hasText: "That code isn't right" }).waitFor();
        assert.match(await page.getByRole("alert").innerText(), /4 more tries/);
        assert.equal(await page.getByLabel("Code").getAttribute("aria-invalid"), "true");
        await screenshot(page, `${engine}-03-wrong-code`);
        await page.getByLabel("Code").fill(code);
        await page.getByRole("button", { name: "Verify" }).click();
        await page.getByRole("heading", { name: "Review permissions" }).waitFor();
      } finally {
        await browser.close();
      }
    });

    test("an expired link says so and offers nothing else", async () => {
      guestlist.admin("tenant", "set", "--invitation-lifetime-days", "14");
      const invited = await invite("late@example.com");
      const link = await mailbox.redeemLink("late@example.com");
      guestlist.sql(`UPDATE invitations SET expires_date_time = ${guestlist.past()} WHERE id = '${invited.id}'`);
      guestlist.admin("tenant", "set", "--invitation-lifetime-days", "none");
      const browser = await openBrowser();
      try {
        const { page } = browser;
        const response = await page.goto(link);
        assert.equal(response.status(), 410);
        await page.getByRole("heading", { name: "This invitation link has expired" }).waitFor();
        assert.equal(await page.locator("form").count(), 0);
        assert.equal(await page.getByRole("button").count(), 0);
        await screenshot(page, `${engine}-04-expired-link`);
      } finally {
        await browser.close();
      }
      const user = await graph.get(`/users/${invited.invitedUser.id}?$select=externalUserState`);
      assert.equal(user.body.externalUserState, "PendingAcceptance");
    });

    test("a double-clicked Accept redeems once and still leads to the redirect target", async () => {
      const invited = await invite("double@example.com");
      const link = await mailbox.redeemLink("double@example.com");
      const browser = await openBrowser({ viewport: { width: 1280, height: 900 } });
      try {
        const { page } = browser;
        await verifyByMail(page, link, "double@example.com", null);
        await screenshot(page, `${engine}-05-consent-desktop`);
        await page.getByRole("button", { name: "Accept" }).dblclick();
        const landed = page.waitForURL(target.url).then(() => "redirect", () => null);
        const lost = page.getByRole("heading", { name: "Invitation already accepted" }).waitFor().then(() => "lost", () => null);
        if ((await Promise.race([landed, lost])) === "lost") {
          // The second click's request lost the race: its page says so and links on.
          await page.getByRole("heading", { name: "Invitation already accepted" }).waitFor();
          await screenshot(page, `${engine}-06-double-submit`);
          await page.getByRole("link", { name: "Continue" }).click();
        }
        await page.waitForURL(target.url);
      } finally {
        await browser.close();
      }
      const filter = encodeURIComponent(`activityDisplayName eq 'Redeem external user invite' and targetResources/any(t:t/id eq '${invited.invitedUser.id}')`);
      const audits = await graph.get(`/auditLogs/directoryAudits?$filter=${filter}`);
      assert.equal(audits.status, 200, JSON.stringify(audits.body));
      assert.equal(audits.body.value.length, 1, "redeemed exactly once");
    });

    test("a cancelled consent shares nothing", async () => {
      const invited = await invite("maybe@example.com");
      const link = await mailbox.redeemLink("maybe@example.com");
      const browser = await openBrowser();
      try {
        const { page } = browser;
        await verifyByMail(page, link, "maybe@example.com", null);
        await page.getByRole("button", { name: "Cancel" }).click();
        await page.getByRole("heading", { name: "Invitation not accepted" }).waitFor();
        await screenshot(page, `${engine}-07-cancelled`);
      } finally {
        await browser.close();
      }
      const user = await graph.get(`/users/${invited.invitedUser.id}?$select=externalUserState`);
      assert.equal(user.body.externalUserState, "PendingAcceptance");
    });
  });
}
