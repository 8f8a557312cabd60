// Browser end-to-end: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// never a downloaded browser) opens /admin of a real signalbox server (no operator configured,
// so loopback callers may look), generates WebSocket traffic from Node (guests, a server, joins,
// chat messages) and checks the dashboard's numbers change: connections, users online, the top
// server, envelopes in and out. A screenshot is written to <repo>/target/admin-e2e/ on failure
// (and dashboard.png on success, for the record). Without Chromium the test is skipped.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { createServer, guest, startServer } from "../helpers/server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "target", "admin-e2e");
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium)`;

let server;
let browser;
const sockets = [];

before(async () => {
  if (skip) return;
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  for (const ws of sockets) ws.terminate();
  await browser?.close();
  await server?.stop();
});

/** A WebSocket that collects every envelope it receives. */
function open(url) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url);
    const received = [];
    ws.on("message", (data) => received.push(JSON.parse(String(data))));
    ws.once("open", () => res({ ws, received, send: (e) => ws.send(JSON.stringify(e)) }));
    ws.once("error", rej);
    sockets.push(ws);
  });
}

/** Waits until `socket` has received an envelope of `type` (bounded by the test's timeout). */
async function received(socket, type) {
  while (!socket.received.some((e) => e.type === type)) await new Promise((r) => setTimeout(r, 20));
}

async function member(name, serverId) {
  const { token } = await guest(server.base, name);
  const socket = await open(`${server.ws}?token=${token}`);
  socket.send({ type: "identify", displayName: name });
  // `identify` has no reply; a keepalive round trip proves it was processed.
  socket.send({ type: "keepalive" });
  await received(socket, "keepalive");
  return { token, socket, join: () => socket.send({ type: "join_server", serverId }) };
}

const value = async (page, id) => Number(await page.locator(`#${id}`).getAttribute("data-value"));

test("the dashboard's numbers follow real traffic", { skip, timeout: 60000 }, async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1400 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  try {
    await page.goto(`${server.base}/admin`);
    await page.waitForSelector('#status[data-state="live"]');
    assert.equal(await value(page, "users-online"), 0);
    assert.equal(await value(page, "conn-websocket"), 0);
    const inBefore = await value(page, "env-in-total");

    const serverId = `dash-${Date.now()}`;
    const alice = await member("alice", serverId);
    const bob = await member("bob", serverId);
    await createServer(server.base, alice.token, serverId);
    alice.join();
    bob.join();
    await received(alice.socket, "server_users");
    await received(bob.socket, "server_users");
    for (let i = 0; i < 5; i++) {
      alice.socket.send({ type: "chat_message", serverId, message: { id: `m${i}`, channelId: "general", content: `hello ${i}` } });
    }
    await received(bob.socket, "chat_message");

    // The page polls every 2 s; wait for a poll that shows the traffic.
    await page.waitForFunction(() => document.getElementById("users-online").dataset.value === "2", null, { timeout: 15000 });
    assert.equal(await value(page, "conn-websocket"), 2);
    assert.ok((await value(page, "env-in-total")) >= inBefore + 2 + 2 + 5, "identify, join_server, chat_message counted");
    assert.ok((await value(page, "env-out-total")) > 0);
    await page.waitForSelector(`#top-servers text:has-text("${serverId}")`);
    // A rate is drawn once two polls have seen traffic.
    await page.waitForSelector("#bars-in text:has-text('/s')", { timeout: 15000 });
    assert.ok((await page.locator("#chart-connections polyline").count()) >= 1, "the connections chart has lines");
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, "dashboard.png"), fullPage: true });

    // Users leave: the gauges come down on a later poll.
    alice.socket.ws.close();
    bob.socket.ws.close();
    await page.waitForFunction(() => document.getElementById("users-online").dataset.value === "0", null, { timeout: 15000 });
    assert.deepEqual(errors, [], "no script errors on the page");
    assert.ok(await page.locator("#token-form").isHidden(), "no token asked for on loopback");
  } catch (e) {
    mkdirSync(RESULTS, { recursive: true });
    const path = join(RESULTS, `failure-${Date.now()}.png`);
    await page.screenshot({ path, fullPage: true }).catch(() => {});
    console.error(`screenshot: ${path}`);
    console.error(`page errors: ${errors.join("\n")}`);
    console.error(`server log:\n${server.log()}`);
    throw e;
  }
});
