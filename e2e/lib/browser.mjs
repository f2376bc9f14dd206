// Debian's Chromium driven by playwright-core (browsers downloaded by test tools don't run here),
// with the flags that work on these machines, and a screenshot helper.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO_ROOT } from "./server.mjs";

export const SCREENSHOTS = process.env.GUESTLIST_SCREENSHOTS || join(REPO_ROOT, "artifacts", "screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** A fresh browser profile (its own cookies); `viewport` defaults to a phone's width. */
export async function openBrowser({ viewport = { width: 390, height: 844 } } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "guestlist-e2e-chromium-"));
  // The server's development CA is not in Chromium's store; the tests check TLS elsewhere.
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, ignoreHTTPSErrors: true, viewport });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context, page,
    async close() { await context.close(); rmSync(profile, { recursive: true, force: true }); },
  };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
