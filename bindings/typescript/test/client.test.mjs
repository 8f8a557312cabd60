// The typed client (build/client/, compiled from client/ by `npm run build`) against a real
// signalbox server: the built binary on a free loopback port, started and killed by the tests.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { WebSocket } from "ws";
import { SignalboxClient, SseClient, backoffDelay, isRetryable } from "../build/client/index.js";
import { createServer, guest, startServer } from "./helpers/server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `client`'s state becomes `state` (optionally matching `pred`). */
function stateOf(client, state, pred = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (client.state.state === state && pred(client.state)) return resolve(client.state);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no state ${state} within ${timeoutMs} ms (now ${JSON.stringify(client.state)})`));
    }, timeoutMs);
    const off = client.onState((s) => {
      if (s.state !== state || !pred(s)) return;
      clearTimeout(timer);
      off();
      resolve(s);
    });
  });
}

describe("backoff and close codes (pure)", () => {
  test("delays double, are capped and jittered within [exp/2, exp]", () => {
    assert.equal(backoffDelay(0, 500, 30000, () => 0), 250);
    assert.equal(backoffDelay(0, 500, 30000, () => 0.999999), 500);
    assert.equal(backoffDelay(3, 500, 30000, () => 1), 4000);
    assert.equal(backoffDelay(20, 500, 30000, () => 1), 30000);
    assert.equal(backoffDelay(20, 500, 30000, () => 0), 15000);
  });
  test("4001 and 4000 are final; 1001, 4002, 4008 and 1006 are retried", () => {
    for (const code of [4001, 4000]) assert.equal(isRetryable(code), false, String(code));
    for (const code of [1001, 4002, 4008, 1006, 1008]) assert.equal(isRetryable(code), true, String(code));
  });
  test("no WebSocket constructor is a clear error", () => {
    const saved = globalThis.WebSocket;
    delete globalThis.WebSocket;
    try {
      assert.throws(() => new SignalboxClient({ url: "ws://x", identify: { displayName: "a" } }), /pass one/);
    } finally {
      if (saved) globalThis.WebSocket = saved;
    }
  });
});

describe("SignalboxClient against a real server", () => {
  let server;
  const clients = [];
  const make = (opts) => {
    const c = new SignalboxClient({ url: server.ws, WebSocket, backoffBaseMs: 50, backoffMaxMs: 400, ...opts });
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  test("identify, join, roster, user_joined, chat and a forwarded offer, all typed", async () => {
    const alice = await guest(server.base, "alice");
    const bob = await guest(server.base, "bob");
    await createServer(server.base, alice.token, "room-1");

    const a = make({ identify: { displayName: "alice", token: alice.token } });
    const connected = a.next("connected");
    const rosterA = a.next("server_users", (e) => e.serverId === "room-1");
    // Sent before the socket is ready: remembered and sent after identify.
    assert.equal(a.send({ type: "join_server", serverId: "room-1" }), false);
    a.connect();
    const hello = await connected;
    assert.match(hello.protocolVersion, /^\d+\.\d+\.\d+/);
    assert.deepEqual(hello.iceServers, []);
    assert.deepEqual((await rosterA).users.map((u) => u.oderId), [alice.userId]);
    assert.equal(a.ready, true);

    const b = make({ identify: { displayName: "bob", token: bob.token } });
    const joined = a.next("user_joined", (e) => e.oderId === bob.userId);
    const rosterB = b.next("server_users");
    b.connect();
    b.send({ type: "join_server", serverId: "room-1" });
    assert.equal((await joined).displayName, "bob");
    assert.equal((await rosterB).users.length, 2);

    const chat = a.next("chat_message");
    b.send({ type: "chat_message", serverId: "room-1", message: { text: "hi alice" } });
    const got = await chat;
    assert.equal(got.senderId, bob.userId);
    assert.equal(got.senderName, "bob");
    assert.deepEqual(got.message, { text: "hi alice" });

    const offer = b.next("offer");
    a.send({ type: "offer", targetUserId: bob.userId, sdp: { type: "offer", sdp: "v=0\r\n" } });
    const delivered = await offer;
    assert.equal(delivered.fromUserId, alice.userId);
    assert.equal(delivered.sdp.sdp, "v=0\r\n");

    const denied = a.next("access_denied");
    a.send({ type: "join_server", serverId: "no-such-server" });
    assert.equal((await denied).reason, "not_found");
    a.send({ type: "leave_server", serverId: "no-such-server" });

    const left = b.next("user_left", (e) => e.oderId === alice.userId);
    a.close();
    assert.equal((await left).serverId, "room-1");
    b.close();
  });

  test("keepalive: the server answers with its clock", async () => {
    const c = make({ identify: { displayName: "pinger" }, keepaliveMs: 100 });
    const ack = c.next("keepalive");
    c.connect();
    const e = await ack;
    assert.equal(typeof e.serverTime, "number");
    assert.ok(Math.abs(e.serverTime - Date.now()) < 60000);
    c.close();
  });

  test("an unsupported protocol major (close 4000) is not retried", async () => {
    const c = make({ identify: { displayName: "future" }, protocolMajor: 999 });
    const states = [];
    c.onState((s) => states.push(s.state));
    c.connect();
    const closed = await stateOf(c, "closed");
    assert.equal(closed.code, 4000);
    await sleep(300);
    assert.ok(!states.includes("reconnecting"), `states: ${states.join(",")}`);
  });
});

describe("reconnect across a server restart (close 1001)", () => {
  test("reconnects with backoff, identifies and re-joins by itself", async () => {
    let server = await startServer();
    const dir = server.dir;
    const port = server.port;
    const c = new SignalboxClient({ url: server.ws, WebSocket, backoffBaseMs: 100, backoffMaxMs: 800 });
    try {
      const g = await guest(server.base, "carol");
      await createServer(server.base, g.token, "room-r");
      // identify as a function: re-read on every reconnect.
      let identifies = 0;
      const c2 = new SignalboxClient({
        url: server.ws,
        WebSocket,
        backoffBaseMs: 100,
        backoffMaxMs: 800,
        identify: () => {
          identifies += 1;
          return { displayName: "carol", token: g.token };
        },
      });
      c.close();
      const first = c2.next("server_users");
      c2.connect();
      c2.send({ type: "join_server", serverId: "room-r" });
      await first;

      const reconnecting = stateOf(c2, "reconnecting");
      await server.stop({ keepDir: true });
      const s = await reconnecting;
      assert.equal(s.code, 1001, JSON.stringify(s));
      assert.ok(s.delayMs >= 50 && s.delayMs <= 100, `delay ${s.delayMs}`);

      const again = c2.next("server_users", (e) => e.serverId === "room-r", 15000);
      server = await startServer({ port, dataDir: dir });
      const roster = await again;
      assert.deepEqual(roster.users.map((u) => u.oderId), [g.userId]);
      assert.equal(identifies, 2);
      c2.close();
    } finally {
      c.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("SseClient against a real server", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("joined, roster, a signal crosses, leave updates the roster", async () => {
    const a = new SseClient({ baseUrl: server.base, room: "agents" });
    const b = new SseClient({ baseUrl: server.base, room: "AGENTS " });
    try {
      const ja = await a.connect();
      assert.deepEqual(ja.iceServers, []);
      const bothA = new Promise((r) => {
        const off = a.on("roster", (ids) => ids.length === 2 && (off(), r(ids)));
      });
      const jb = await b.connect();
      assert.deepEqual([...(await bothA)].sort(), [ja.id, jb.id].sort());

      const signal = new Promise((r) => b.on("signal", r));
      await a.signal(jb.id, { type: "offer", sdp: "v=0" });
      assert.deepEqual(await signal, { sender: ja.id, signal: { type: "offer", sdp: "v=0" } });

      await assert.rejects(a.signal("nobody", 1), /404/);

      const alone = new Promise((r) => {
        const off = b.on("roster", (ids) => ids.length === 1 && (off(), r(ids)));
      });
      await a.leave();
      assert.deepEqual(await alone, [jb.id]);
    } finally {
      a.close();
      b.close();
    }
  });
});
