// Browser end-to-end: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// never a downloaded browser) opens two pages on /demo of a real signalbox server, both join one
// server, one opens a WebRTC data channel to the other through offer / answer / ice_candidate, a
// message crosses it, then one page closes and the other shows `user_left`.
// Screenshots of both pages are written to bindings/typescript/test-results/ (gitignored) on
// failure. Without Chromium the test is skipped, saying why.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../helpers/server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-results");
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium)`;

let server;
let browser;

before(async () => {
  if (skip) return;
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", // CI runs as root
      "--use-fake-ui-for-media-stream",
      // Host candidates as 127.0.0.1 rather than mDNS names nothing here resolves.
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function joinAs(context, name, serverName) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  await page.goto(`${server.base}/demo`);
  await page.fill("#name", name);
  await page.fill("#server", serverName);
  await page.click("#join");
  await page.waitForSelector('#status[data-state="open"]');
  return page;
}

test("two pages connect a data channel through signalbox and exchange a message", { skip, timeout: 60000 }, async () => {
  const serverName = `e2e-${Date.now()}`;
  const pages = [];
  try {
    // One browser context per user, as two devices would be.
    const alice = await joinAs(await browser.newContext(), "alice", serverName);
    pages.push(["alice", alice]);
    const bob = await joinAs(await browser.newContext(), "bob", serverName);
    pages.push(["bob", bob]);

    // Both see each other.
    await alice.waitForSelector("#members li:has-text('bob') button.connect");
    await bob.waitForSelector("#members li:has-text('alice') .dc-state");

    // Alice opens a data channel to Bob; both sides show it open.
    await alice.click("#members li:has-text('bob') button.connect");
    await alice.waitForSelector("#members li:has-text('bob') .dc-state[data-state='open']", { timeout: 20000 });
    await bob.waitForSelector("#members li:has-text('alice') .dc-state[data-state='open']", { timeout: 20000 });

    // A message crosses the channel (peer to peer, not through the server).
    const text = `hello over WebRTC ${Math.random().toString(36).slice(2)}`;
    await alice.fill("#dc-input", text);
    await alice.click("#dc-form button[type=submit]");
    await bob.waitForSelector(`#dc-log li[data-kind="received"]:has-text("${text}")`, { timeout: 10000 });
    assert.equal(await bob.locator('#dc-log li[data-kind="received"]').first().textContent(), `alice: ${text}`);

    // Chat goes through the server.
    await bob.fill("#chat-input", "hi from bob");
    await bob.click("#chat-form button");
    await alice.waitForSelector('#chat-log li[data-kind="received"]:has-text("bob: hi from bob")');

    // Alice closes her page: Bob's page shows user_left and drops her from the list.
    await alice.close();
    pages.shift();
    await bob.waitForSelector('#log li[data-kind="user_left"]:has-text("alice")', { timeout: 15000 });
    assert.equal(await bob.locator("#members li:has-text('alice')").count(), 0);
  } catch (e) {
    mkdirSync(RESULTS, { recursive: true });
    for (const [name, page] of pages) {
      const path = join(RESULTS, `demo-${name}-${Date.now()}.png`);
      await page.screenshot({ path, fullPage: true }).catch(() => {});
      console.error(`screenshot: ${path}`);
    }
    console.error(`server log:\n${server.log()}`);
    throw e;
  }
});
