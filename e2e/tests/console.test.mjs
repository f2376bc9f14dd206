// The admin console (issue 5 item 4) in real headless Chromium at a desktop width: the Global
// Administrator signs in (a wrong password first), invites a guest with the single form (the mail
// arrives), finds it on the guest list by state, search and domain, and opens its page; resets
// redemption with the email picker (an address from otherMails, then another address typed in);
// a Guest Inviter's reset and settings are refused with Graph's code and message; a denied domain
// is refused; a bulk CSV upload reports each row; Resend mails a new link; sign-out ends the
// session. The CSP, the absence of script and every field's label are checked once. Every page is
// saved under artifacts/screenshots/ as <engine>-console-<step>-<page>.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engines, startServer } from "../lib/server.mjs";
import { startMailbox, textOf } from "../lib/mail.mjs";
import { graphClient } from "../lib/graph.mjs";
import { openBrowser, screenshot } from "../lib/browser.mjs";

const DESKTOP = { width: 1280, height: 900 };
const GUEST_INVITER = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
const RESET_ACTIVITY = "Invite external user with reset invitation status";
const DOMAIN_BLOCKED_MESSAGE =
  "The domain of the user is currently blocked by your invitation policy. Contact your administrator to allow invitations to this domain.";
const REDIRECT = "https://partners.example/start";

/** Entra's bulk-invite template filled in with `rows` (arrays of cells), lines ending in `eol`. */
function bulkCsv(rows, eol = "\n") {
  const head = [
    "version:v1.0",
    "Email address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]",
  ];
  return [...head, ...rows.map((cells) => cells.join(","))].join(eol) + eol;
}

/** The text of the `<dd>` after the `<dt>` named `term` in the guest page's Profile section. */
async function profileValue(page, term) {
  const profile = page.getByRole("region", { name: "Profile" });
  return (await profile.locator(`dt:text-is("${term}") + dd`).innerText()).trim();
}

/** The rows of the table in the guest page's section `name`, each row as its cells' texts. */
async function sectionRows(page, name) {
  return page.getByRole("region", { name }).locator("tbody tr").evaluateAll((rows) =>
    rows.map((row) => [...row.cells].map((cell) => cell.innerText.trim())));
}

/** Form fields (not hidden, not buttons) with no accessible label, described for the message. */
async function unlabelledFields(page) {
  return page.evaluate(() => [...document.querySelectorAll("input, select, textarea")]
    .filter((el) => !["hidden", "submit", "button", "reset", "image"].includes(el.type))
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}[name=${el.name}]`));
}

for (const engine of engines()) {
  describe(`admin console in Chromium (${engine})`, () => {
    let mailbox, guestlist, graph, conn, admin;
    const shot = (page, name) => screenshot(page, `${engine}-console-${name}`);
    // What the tests hand on: the guest invited with the form, and a bulk-invited pending guest.
    const ann = { email: "ann.lee@fabrikam.example", name: "Ann Lee", id: null };
    const bulk = ["bulk.one@tailspin.example", "bulk.two@tailspin.example"];

    before(async () => {
      mailbox = await startMailbox();
      guestlist = await startServer({ engine, smtpUrl: mailbox.url });
      conn = guestlist.conn;
      assert.equal(conn.consoleUrl, `${new URL(conn.graphUrl).origin}/console`, JSON.stringify(conn));
      assert.ok(conn.adminUserPrincipalName && conn.adminPassword, "connection.json names the console's administrator");
      graph = graphClient(conn);
      admin = await openBrowser({ viewport: DESKTOP });
    });

    after(async () => {
      await admin?.close();
      const code = await guestlist?.stop();
      await mailbox?.close();
      assert.equal(code, 0, "the server stops cleanly");
    });

    /** Signs in on the console's sign-in page (the current page must show it). */
    async function signIn(page, username, password) {
      await page.getByLabel("Username").fill(username);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Sign in" }).click();
    }

    async function openGuest(page, id) {
      await page.goto(`${conn.consoleUrl}/guests/${id}`);
    }

    test("the administrator signs in, invites a guest with the form, finds it on the list and opens it", async () => {
      const { page } = admin;
      await page.goto(conn.consoleUrl);
      await page.waitForURL(/\/console\/signin\?next=/);
      await page.getByRole("heading", { name: "Sign in to the admin console" }).waitFor();
      await shot(page, "01-signin");

      await signIn(page, conn.adminUserPrincipalName, `${conn.adminPassword}-wrong`);
      await page.getByRole("alert").filter({ hasText: "Your account or password is incorrect." }).waitFor();
      assert.equal(await page.getByLabel("Username").inputValue(), conn.adminUserPrincipalName, "the username is kept");
      assert.equal(await page.getByLabel("Username").getAttribute("aria-invalid"), "true");
      assert.equal(await page.getByLabel("Password").inputValue(), "", "the password is not echoed");
      await shot(page, "02-signin-error");

      await signIn(page, conn.adminUserPrincipalName, conn.adminPassword);
      await page.waitForURL(/\/console\/guests$/);
      await page.getByRole("heading", { name: "Guests", exact: true }).waitFor();
      assert.match(await page.locator("header").innerText(), new RegExp(`Signed in as ${conn.adminUserPrincipalName.replace(/\./g, "\\.")}`));
      assert.equal(await page.getByRole("link", { name: "Guests", exact: true }).getAttribute("aria-current"), "page");
      await page.getByText("No guests match these filters.").waitFor();

      // Another guest, from another domain, to tell the filters apart.
      const other = await graph.post("/invitations", { invitedUserEmailAddress: "otto@woodgrove.example", inviteRedirectUrl: REDIRECT, sendInvitationMessage: false });
      assert.equal(other.status, 201, JSON.stringify(other.body));

      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Invite" }).click();
      await page.getByRole("heading", { name: "Invite guests" }).waitFor();
      assert.equal(await page.getByLabel("Send an invitation email").isChecked(), true, "mail is sent unless unticked");
      assert.equal(await page.getByRole("radio", { name: "Guest" }).isChecked(), true);
      await page.getByLabel("Email address").fill(ann.email);
      await page.getByLabel("Display name (optional)").fill(ann.name);
      await page.getByLabel("Redirect URL after redemption").fill(REDIRECT);
      await page.getByLabel("Personal message (optional)").fill("Welcome to the Fabrikam project.");
      await shot(page, "03-invite-form");
      await page.getByRole("button", { name: "Invite", exact: true }).click();

      await page.waitForURL(/\/console\/guests\/[0-9a-f-]+\?done=invited$/);
      ann.id = /\/console\/guests\/([0-9a-f-]+)\?/.exec(page.url())[1];
      await page.getByRole("heading", { name: ann.name, level: 1 }).waitFor();
      assert.match(await page.getByRole("status").innerText(), /^Invitation sent/);
      assert.equal(await profileValue(page, "Email (mail)"), ann.email);
      assert.match(await profileValue(page, "Invitation state"), /^Pending acceptance since \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      assert.equal(await profileValue(page, "User type"), "Guest");
      for (const name of ["Profile", "Identities", "Invitations", "Group memberships", "Sponsors", "Audit history"]) {
        await page.getByRole("heading", { name, level: 2 }).waitFor();
      }
      const invitations = await sectionRows(page, "Invitations");
      assert.equal(invitations.length, 1, JSON.stringify(invitations));
      assert.equal(invitations[0][0], ann.email);
      assert.equal(invitations[0][1], "Invitation");
      assert.match(invitations[0][2], /^Pending/);
      const sponsors = await page.getByRole("region", { name: "Sponsors" }).innerText();
      assert.ok(sponsors.includes(conn.adminUserPrincipalName), `the inviting person is the sponsor: ${sponsors}`);
      await page.getByRole("button", { name: "Resend invitation" }).waitFor();
      await shot(page, "04-guest-page-invited");

      const link = await mailbox.redeemLink(ann.email);
      assert.ok(link.startsWith(`${new URL(conn.consoleUrl).origin}/redeem?`), link);
      assert.match(textOf(mailbox.to(ann.email)[0]), /Welcome to the Fabrikam project\./, "the personal message is in the mail");
      const user = await graph.get(`/users/${ann.id}?$select=id,displayName,mail,externalUserState,userType`);
      assert.deepEqual(
        { ...user.body, "@odata.context": undefined },
        { "@odata.context": undefined, id: ann.id, displayName: ann.name, mail: ann.email, externalUserState: "PendingAcceptance", userType: "Guest" },
      );

      // The list: both guests, then Pending only, then by search and by domain.
      await page.getByRole("link", { name: "Back to guests" }).click();
      await page.getByRole("heading", { name: "Guests", exact: true }).waitFor();
      const names = () => page.locator("tbody tr td:first-child").allInnerTexts();
      assert.deepEqual((await names()).sort(), [ann.name, "otto"].sort());
      await shot(page, "05-guest-list");

      await page.getByLabel("State").selectOption({ label: "Pending acceptance" });
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/state=pending/);
      assert.deepEqual((await names()).sort(), [ann.name, "otto"].sort());
      await page.getByLabel("State").selectOption({ label: "Accepted" });
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/state=accepted/);
      await page.getByText("No guests match these filters.").waitFor();

      await page.getByLabel("State").selectOption({ label: "Pending acceptance" });
      await page.getByLabel("Search", { exact: true }).fill("lee");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/q=lee/);
      assert.deepEqual(await names(), [ann.name]);
      assert.equal(await page.getByLabel("State").inputValue(), "pending", "the filters are kept");

      await page.getByLabel("Search", { exact: true }).fill("");
      await page.getByLabel("Email domain").fill("fabrikam.example");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/domain=fabrikam\.example/);
      assert.deepEqual(await names(), [ann.name]);
      const row = page.locator("tbody tr");
      assert.equal((await row.locator("td").nth(1).innerText()).trim(), ann.email);
      assert.equal((await row.locator("td").nth(2).innerText()).trim(), "Pending acceptance");
      await shot(page, "06-guest-list-filtered");

      await page.getByLabel("Email domain").fill("woodgrove.example");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/domain=woodgrove\.example/);
      assert.deepEqual(await names(), ["otto"]);

      await page.getByLabel("Email domain").fill("bad domain'");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.getByRole("alert").filter({ hasText: "is not a domain name" }).waitFor();

      await page.getByLabel("Email domain").fill("fabrikam.example");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.getByRole("link", { name: ann.name }).click();
      await page.waitForURL(new RegExp(`/console/guests/${ann.id}$`));
      await page.getByRole("heading", { name: ann.name, level: 1 }).waitFor();
      assert.equal(await page.getByRole("status").count(), 0, "no notice without an action");
      await shot(page, "07-guest-page");
    });

    test("reset redemption with the email picker: an address from otherMails, then another address typed in", async () => {
      assert.ok(ann.id, "the first test invited the guest");
      const { page } = admin;
      const picked = "ann@northwind.example";
      assert.equal((await graph.patch(`/users/${ann.id}`, { otherMails: [picked] })).status, 204);

      await openGuest(page, ann.id);
      await page.getByRole("link", { name: "Reset redemption status" }).click();
      await page.waitForURL(new RegExp(`/console/guests/${ann.id}/reset$`));
      await page.getByRole("heading", { name: "Reset redemption status", level: 1 }).waitFor();
      const picker = page.getByRole("group", { name: "Email to invite" });
      const choices = await picker.getByRole("radio").evaluateAll((radios) => radios.map((r) => [r.labels[0].innerText.trim(), r.checked]));
      assert.deepEqual(choices, [
        [`${ann.email} — current email (mail)`, true],
        [`${picked} — other email (otherMails)`, false],
        ["Another address (added to other emails first)", false],
      ]);
      assert.equal(await page.getByLabel("Redirect URL after redemption").inputValue(), REDIRECT, "the last invitation's redirect is offered");
      assert.equal(await page.getByLabel("Send an invitation email to the new address").isChecked(), true);
      await picker.getByRole("radio", { name: new RegExp(picked.replace(/\./g, "\\.")) }).check();
      await shot(page, "08-reset-page");
      await page.getByRole("button", { name: "Reset redemption status" }).click();

      await page.waitForURL(new RegExp(`/console/guests/${ann.id}\\?done=reset$`));
      assert.match(await page.getByRole("status").innerText(), /^Redemption status reset/);
      assert.equal(await profileValue(page, "Email (mail)"), picked);
      assert.match(await profileValue(page, "Invitation state"), /^Pending acceptance since \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      let invitations = await sectionRows(page, "Invitations");
      const resetRow = invitations.find((r) => r[1] === "Reset redemption");
      assert.ok(resetRow, JSON.stringify(invitations));
      assert.equal(resetRow[0], picked);
      assert.match(resetRow[2], /^Pending/);
      assert.ok(invitations.some((r) => r[1] === "Invitation" && r[0] === ann.email && r[2].startsWith("Revoked")), `the first link is revoked: ${JSON.stringify(invitations)}`);
      const audit = await sectionRows(page, "Audit history");
      const resetEntry = audit.find((r) => r[1] === RESET_ACTIVITY);
      assert.ok(resetEntry, JSON.stringify(audit));
      assert.equal(resetEntry[2], conn.adminUserPrincipalName, "initiated by the signed-in administrator");
      assert.equal(resetEntry[3], "success");
      await shot(page, "09-reset-done");
      const pickedLink = await mailbox.redeemLink(picked);
      assert.ok(pickedLink.includes("/redeem?"), pickedLink);

      // Another address: added to otherMails first, then the reset goes to it.
      const typed = "ann.lee@adatum.example";
      await page.getByRole("link", { name: "Reset redemption status" }).click();
      await page.getByRole("heading", { name: "Reset redemption status", level: 1 }).waitFor();
      await page.getByRole("radio", { name: "Another address (added to other emails first)" }).check();
      await page.getByLabel("Other address", { exact: true }).fill(typed);
      await page.getByRole("button", { name: "Reset redemption status" }).click();
      await page.waitForURL(new RegExp(`/console/guests/${ann.id}\\?done=reset$`));
      assert.match(await page.getByRole("status").innerText(), /^Redemption status reset/);
      assert.equal(await profileValue(page, "Email (mail)"), typed);
      assert.ok((await profileValue(page, "Other emails")).split(", ").includes(typed), await profileValue(page, "Other emails"));
      invitations = await sectionRows(page, "Invitations");
      assert.equal(invitations.filter((r) => r[1] === "Reset redemption").length, 2, JSON.stringify(invitations));
      assert.equal(invitations.filter((r) => r[2].startsWith("Pending")).length, 1, `one live link: ${JSON.stringify(invitations)}`);
      assert.equal((await sectionRows(page, "Audit history")).filter((r) => r[1] === RESET_ACTIVITY).length, 2);
      await mailbox.redeemLink(typed);

      const user = await graph.get(`/users/${ann.id}?$select=id,mail,otherMails,externalUserState`);
      assert.equal(user.status, 200, JSON.stringify(user.body));
      assert.equal(user.body.id, ann.id, "the object id is kept");
      assert.equal(user.body.mail, typed);
      assert.ok(user.body.otherMails.includes(typed), JSON.stringify(user.body));
      assert.equal(user.body.externalUserState, "PendingAcceptance");

      // An invalid typed address is refused on the form, which keeps what was typed.
      await page.getByRole("link", { name: "Reset redemption status" }).click();
      await page.getByRole("radio", { name: "Another address (added to other emails first)" }).check();
      await page.getByLabel("Other address", { exact: true }).fill("not an address");
      // The browser's own validation would stop an invalid type=email value; the server must too.
      await page.getByLabel("Other address", { exact: true }).evaluate((input) => { input.type = "text"; });
      await page.getByRole("button", { name: "Reset redemption status" }).click();
      await page.getByRole("alert").filter({ hasText: "Request_BadRequest" }).waitFor();
      assert.equal(await page.getByRole("radio", { name: "Another address (added to other emails first)" }).isChecked(), true);
      assert.equal(await page.getByLabel("Other address", { exact: true }).inputValue(), "not an address");
    });

    test("refusals show Graph's code and message: a Guest Inviter's reset and settings, a denied domain", async () => {
      assert.ok(ann.id, "the first test invited the guest");
      const password = `Pw-${randomBytes(9).toString("base64url")}`;
      const created = await graph.post("/users", {
        accountEnabled: true,
        displayName: "Isaiah Langer",
        mailNickname: "isaiah",
        userPrincipalName: `isaiah@${conn.tenantDomain}`,
        passwordProfile: { password, forceChangePasswordNextSignIn: false },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const assigned = await graph.post("/roleManagement/directory/roleAssignments", {
        principalId: created.body.id, roleDefinitionId: GUEST_INVITER, directoryScopeId: "/",
      });
      assert.equal(assigned.status, 201, JSON.stringify(assigned.body));

      const inviter = await openBrowser({ viewport: DESKTOP });
      try {
        const { page } = inviter;
        await openGuest(page, ann.id);
        await page.waitForURL(/\/console\/signin\?next=/);
        await signIn(page, created.body.userPrincipalName, password);
        await page.waitForURL(new RegExp(`/console/guests/${ann.id}$`), { waitUntil: "commit" });
        await page.getByRole("heading", { name: ann.name, level: 1 }).waitFor();
        await page.getByRole("link", { name: "Reset redemption status" }).click();
        await page.getByRole("heading", { name: "Reset redemption status", level: 1 }).waitFor();
        const response = page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith(`/console/guests/${ann.id}/reset`));
        await page.getByRole("button", { name: "Reset redemption status" }).click();
        assert.equal((await response).status(), 403);
        const alert = page.getByRole("alert");
        await alert.waitFor();
        assert.equal((await alert.innerText()).trim(), "Forbidden Generic authorization exception.");
        assert.equal(await alert.locator(".code").innerText(), "Forbidden");
        await shot(page, "10-reset-refused");

        const settings = await page.goto(`${conn.consoleUrl}/settings`);
        await page.getByRole("heading", { name: "External collaboration settings" }).waitFor();
        const refusal = page.getByRole("alert");
        await refusal.waitFor();
        assert.equal(await refusal.locator(".code").innerText(), "Authorization_RequestDenied", `${settings.status()} ${await refusal.innerText()}`);
        assert.match(await refusal.innerText(), /Insufficient privileges to complete the operation\./);
        assert.equal(await page.getByRole("button", { name: "Save invite settings" }).count(), 0, "no form to save");
        await shot(page, "11-settings-refused");
      } finally {
        await inviter.close();
      }
      const user = await graph.get(`/users/${ann.id}?$select=mail`);
      assert.equal(user.body.mail, "ann.lee@adatum.example", "the refused reset changed nothing");

      // A denied domain, set by the administrator on the Settings page.
      const { page } = admin;
      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Settings" }).click();
      await page.getByRole("heading", { name: "External collaboration settings" }).waitFor();
      assert.equal(await page.getByRole("radio", { name: /^Allow invitations to be sent to any domain/ }).isChecked(), true);
      await page.getByRole("group", { name: /allowInvitesFrom/ }).getByRole("radio").first().waitFor();
      await shot(page, "12-settings");
      await page.getByRole("radio", { name: "Deny invitations to the specified domains" }).check();
      await page.getByLabel("Domains", { exact: true }).fill("blocked.example");
      await page.getByRole("button", { name: "Save domain settings" }).click();
      await page.waitForURL(/\/console\/settings\?done=saved$/);
      assert.equal((await page.getByRole("status").innerText()).trim(), "Settings saved.");
      assert.equal(await page.getByRole("radio", { name: "Deny invitations to the specified domains" }).isChecked(), true);
      assert.equal(await page.getByLabel("Domains", { exact: true }).inputValue(), "blocked.example");
      await shot(page, "13-settings-saved");
      const policy = await graph.get("/policies/b2bManagementPolicy");

      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Invite" }).click();
      await page.getByLabel("Email address").fill("x@blocked.example");
      await page.getByRole("button", { name: "Invite", exact: true }).click();
      const alert = page.getByRole("alert");
      await alert.waitFor();
      assert.equal((await alert.innerText()).trim(), `BadRequest ${DOMAIN_BLOCKED_MESSAGE}`, `policy: ${JSON.stringify(policy.body)}`);
      assert.equal(await page.getByLabel("Email address").inputValue(), "x@blocked.example", "the form keeps what was typed");
      assert.equal(await page.getByLabel("Email address").getAttribute("aria-describedby"), "problem");
      await shot(page, "14-invite-refused");
      const found = await graph.get(`/users?$filter=${encodeURIComponent("mail eq 'x@blocked.example'")}`);
      assert.deepEqual(found.body.value, [], "no user was created");

      // Back to any domain, so the later tests invite freely.
      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Settings" }).click();
      await page.getByRole("radio", { name: /^Allow invitations to be sent to any domain/ }).check();
      await page.getByRole("button", { name: "Save domain settings" }).click();
      await page.waitForURL(/\/console\/settings\?done=saved$/);
    });

    test("bulk invite from Entra's CSV template: a result per row, the good rows invited", async () => {
      const { page } = admin;
      const dir = mkdtempSync(join(tmpdir(), "guestlist-e2e-bulk-"));
      try {
        const file = join(dir, "BulkInviteTemplate.csv");
        writeFileSync(file, bulkCsv([
          [bulk[0], REDIRECT, "true", "Welcome to Tailspin"],
          ["not-an-address", REDIRECT, "true", ""],
          [bulk[1], REDIRECT, "", ""],
        ]));
        await page.goto(`${conn.consoleUrl}/invite`);
        await page.getByLabel("CSV file", { exact: true }).setInputFiles(file);
        assert.equal(await page.getByLabel("Send invitation emails where a row doesn't say").isChecked(), true);
        await page.getByRole("button", { name: "Upload and invite" }).click();
        // The file stays until the results are in: Chromium reads it while it submits the form.
        await page.getByRole("heading", { name: "Bulk invitation results" }).waitFor();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      assert.equal((await page.getByRole("status").innerText()).trim(), "2 invited, 1 failed.");
      const rows = await page.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.innerText.trim())));
      assert.equal(rows.length, 3, JSON.stringify(rows));
      assert.deepEqual(rows.map((r) => r.slice(0, 2)), [["3", bulk[0]], ["4", "not-an-address"], ["5", bulk[1]]]);
      assert.match(rows[0][2], /^Invited/);
      assert.match(rows[2][2], /^Invited/);
      assert.match(rows[1][2], /^Failed BadRequest \S/, "the failed row says why");
      assert.equal(await page.getByRole("link", { name: "Open guest" }).count(), 2);
      await shot(page, "15-bulk-results");

      for (const email of bulk) {
        const found = await graph.get(`/users?$filter=${encodeURIComponent(`mail eq '${email}'`)}&$select=id,mail,userType,externalUserState`);
        assert.equal(found.status, 200, JSON.stringify(found.body));
        assert.equal(found.body.value.length, 1, `${email}: ${JSON.stringify(found.body)}`);
        assert.equal(found.body.value[0].externalUserState, "PendingAcceptance");
        assert.equal(found.body.value[0].userType, "Guest");
        await mailbox.redeemLink(email); // both mailed: one says true, the other takes the box's default
      }
      assert.match(textOf(mailbox.to(bulk[0])[0]), /Welcome to Tailspin/);
    });

    // Entra's template, as Entra and the console's own download offer it, ends its lines in CRLF.
    test("bulk invite from the console's downloaded template (CRLF lines): the Line column is the file's line", async () => {
      const { page } = admin;
      const download = await admin.context.request.get(`${conn.consoleUrl}/invite/template.csv`);
      assert.equal(download.status(), 200);
      assert.match(download.headers()["content-disposition"], /attachment; filename="BulkInviteTemplate\.csv"/);
      const template = await download.text();
      assert.ok(template.startsWith("version:v1.0\r\nEmail address to invite [inviteeEmail] Required,"), JSON.stringify(template));
      const dir = mkdtempSync(join(tmpdir(), "guestlist-e2e-bulk-"));
      try {
        const file = join(dir, "BulkInviteTemplate.csv");
        // Filled in below the examples row, which the parser skips (Entra says to delete it).
        writeFileSync(file, `${template}crlf.one@tailspin.example,${REDIRECT},false,\r\ncrlf.two@tailspin.example,${REDIRECT},false,\r\n`);
        await page.goto(`${conn.consoleUrl}/invite`);
        await page.getByLabel("CSV file", { exact: true }).setInputFiles(file);
        await page.getByRole("button", { name: "Upload and invite" }).click();
        // The file stays until the results are in: Chromium reads it while it submits the form.
        await page.getByRole("heading", { name: "Bulk invitation results" }).waitFor();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      assert.equal((await page.getByRole("status").innerText()).trim(), "2 invited, 0 failed.");
      const rows = await page.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.innerText.trim())));
      assert.deepEqual(rows.map((r) => r.slice(0, 2)), [["4", "crlf.one@tailspin.example"], ["5", "crlf.two@tailspin.example"]]);
    });

    test("Resend invitation on a pending guest mails a new redeem link", async () => {
      const { page } = admin;
      const [email] = bulk;
      const first = await mailbox.redeemLink(email);
      const found = await graph.get(`/users?$filter=${encodeURIComponent(`mail eq '${email}'`)}&$select=id`);
      const id = found.body.value[0].id;
      await openGuest(page, id);
      await page.getByRole("button", { name: "Resend invitation" }).click();
      await page.waitForURL(new RegExp(`/console/guests/${id}\\?done=resent$`));
      assert.match(await page.getByRole("status").innerText(), /^Invitation sent again with a new redeem link/);
      await shot(page, "16-resent");
      const second = await mailbox.redeemLink(email, 1);
      assert.notEqual(second, first, "a new link");
      const invitations = await sectionRows(page, "Invitations");
      assert.equal(invitations.filter((r) => r[2].startsWith("Pending")).length, 1, JSON.stringify(invitations));
    });

    test("the console's pages: strict CSP, no script, every field labelled", async () => {
      const { page } = admin;
      const pages = [
        ["guest list", `${conn.consoleUrl}/guests?state=pending`],
        ["guest page", `${conn.consoleUrl}/guests/${ann.id}`],
        ["reset page", `${conn.consoleUrl}/guests/${ann.id}/reset`],
        ["invite", `${conn.consoleUrl}/invite`],
        ["settings", `${conn.consoleUrl}/settings`],
      ];
      for (const [what, url] of pages) {
        const response = await page.goto(url);
        assert.equal(response.status(), 200, what);
        const headers = response.headers();
        const csp = headers["content-security-policy"] ?? "";
        const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
        assert.deepEqual(directives["default-src"], ["'none'"], `${what}: ${csp}`);
        assert.equal(directives["script-src"], undefined, `${what}: ${csp}`);
        assert.deepEqual(directives["frame-ancestors"], ["'none'"], `${what}: ${csp}`);
        assert.ok(!csp.includes("unsafe-"), `${what}: ${csp}`);
        assert.equal(headers["cache-control"], "no-store", what);
        assert.equal(headers["x-frame-options"], "DENY", what);
        const inline = await page.evaluate(() => ({
          scripts: document.scripts.length,
          handlers: [...document.querySelectorAll("*")].flatMap((el) => [...el.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${el.tagName}[${a.name}]`)),
          styles: document.querySelectorAll("style, [style]").length,
        }));
        assert.deepEqual(inline, { scripts: 0, handlers: [], styles: 0 }, what);
        assert.deepEqual(await unlabelledFields(page), [], `${what}: fields without a label`);
      }
      // The sign-in page, in a browser without a session.
      const fresh = await openBrowser({ viewport: DESKTOP });
      try {
        const response = await fresh.page.goto(`${conn.consoleUrl}/signin`);
        assert.match(response.headers()["content-security-policy"] ?? "", /default-src 'none'/);
        assert.equal(await fresh.page.evaluate(() => document.scripts.length), 0);
        assert.deepEqual(await unlabelledFields(fresh.page), [], "sign-in: fields without a label");
      } finally {
        await fresh.close();
      }
    });

    test("Delete guest asks first, then deletes through DELETE /users", async () => {
      const { page } = admin;
      const invited = await graph.post("/invitations", { invitedUserEmailAddress: "leaving@woodgrove.example", inviteRedirectUrl: REDIRECT, sendInvitationMessage: false });
      assert.equal(invited.status, 201, JSON.stringify(invited.body));
      const id = invited.body.invitedUser.id;
      await page.goto(`${conn.consoleUrl}/guests/${id}`);
      await page.getByRole("link", { name: "Delete guest" }).click();
      await page.getByRole("heading", { name: "Delete guest" }).waitFor();
      await shot(page, "18-delete-confirm");
      await page.getByRole("button", { name: "Delete guest" }).click();
      await page.getByRole("heading", { name: "Guests" }).waitFor();
      assert.match(await page.getByRole("status").innerText(), /Guest deleted\./);
      assert.equal((await graph.get(`/users/${id}`)).status, 404);
    });

    test("Sign out returns to the sign-in page and ends the session", async () => {
      const { page } = admin;
      await page.goto(`${conn.consoleUrl}/guests`);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/console\/signin\?signed_out=1$/);
      assert.equal((await page.getByRole("status").innerText()).trim(), "You have signed out.");
      await page.getByRole("heading", { name: "Sign in to the admin console" }).waitFor();
      await shot(page, "17-signed-out");
      const cookies = await admin.context.cookies();
      assert.deepEqual(cookies.filter((c) => c.name.endsWith("guestlist-console")), [], "the session cookie is gone");
      await page.goto(`${conn.consoleUrl}/guests`);
      await page.waitForURL(/\/console\/signin\?next=%2Fconsole%2Fguests$/);
      await page.getByRole("heading", { name: "Sign in to the admin console" }).waitFor();
      assert.equal(await page.getByRole("status").count(), 0);
    });
  });
}
