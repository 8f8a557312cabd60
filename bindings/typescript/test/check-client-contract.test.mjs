// Tests of tools/check-client-contract.mjs (run by `npm test` through `node --test`).
//
// The fixture (test/fixtures/client-contract.ts) must agree with the generated bindings; copies of
// it with one planted drift each must fail with exit code 1 and exactly the report lines naming
// the envelope and field; bad usage and unreadable inputs exit 2.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TOOL = path.join(HERE, "..", "tools", "check-client-contract.mjs");
const FIXTURE = path.join(HERE, "fixtures", "client-contract.ts");
const FIXTURE_TEXT = fs.readFileSync(FIXTURE, "utf8");

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "client-contract-test-"));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Runs the checker; resolves to its exit status, stdout lines, stdout and stderr. */
function check(...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [TOOL, ...args], { encoding: "utf8" }, (error, stdout, stderr) => {
      const status = error ? error.code : 0;
      const lines = stdout.split("\n").filter((line) => line !== "");
      resolve({ status, lines, stdout, stderr });
    });
  });
}

let planted = 0;
/** Writes a copy of the fixture with each [from, to] replaced; every `from` must occur once. */
function plant(...replacements) {
  let text = FIXTURE_TEXT;
  for (const [from, to] of replacements) {
    assert.equal(text.split(from).length - 1, 1, `the fixture should contain exactly once: ${from}`);
    text = text.replace(from, to);
  }
  const file = path.join(scratch, `drift-${++planted}.ts`);
  fs.writeFileSync(file, text);
  return file;
}

async function assertDrift(file, expectedLines) {
  const result = await check("--client", file);
  assert.equal(result.status, 1, `expected exit 1; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  assert.deepEqual(result.lines, expectedLines);
}

describe("the fixture", { concurrency: 2 }, () => {
  test("agrees with the generated bindings", async () => {
    const result = await check("--client", FIXTURE);
    assert.equal(result.status, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^client contract OK: \d+ outgoing, \d+ incoming envelope types match\n$/);
  });

  test("agrees through imports, aliases and custom union names", async () => {
    fs.copyFileSync(FIXTURE, path.join(scratch, "client-contract.ts"));
    const wrapper = path.join(scratch, "wrapper.ts");
    fs.writeFileSync(
      wrapper,
      [
        'import type { OutgoingSignalingMessage, IncomingSignalingMessage } from "./client-contract";',
        "export type ToServer = OutgoingSignalingMessage;",
        "type FromServer = IncomingSignalingMessage;",
        "export type { FromServer as ServerToClient };",
        "",
      ].join("\n"),
    );
    const result = await check("--client", wrapper, "--outgoing", "ToServer", "--incoming", "ServerToClient");
    assert.equal(result.status, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  });
});

describe("planted drifts exit 1 and name the envelope and field", { concurrency: 2 }, () => {
  test("a renamed field (join_server serverId -> serverID)", async () => {
    const file = plant(["type: 'join_server';\n  serverId: string;", "type: 'join_server';\n  serverID: string;"]);
    await assertDrift(file, [
      "outgoing join_server.serverID: required by client, unknown to signalbox (dropped)",
      "outgoing join_server.serverId: required by signalbox, missing in client",
    ]);
  });

  test("an envelope removed from the outgoing union (typing)", async () => {
    const file = plant(["  | TypingMessage\n", ""]);
    await assertDrift(file, ["outgoing typing: missing in client contract"]);
  });

  test("a changed field type (outgoing typing.isTyping: string)", async () => {
    const file = plant([
      "type: 'typing';\n  serverId: string;\n  channelId: string;\n  isTyping: boolean;\n}\n\nexport interface VoiceStateMessage",
      "type: 'typing';\n  serverId: string;\n  channelId: string;\n  isTyping: string;\n}\n\nexport interface VoiceStateMessage",
    ]);
    await assertDrift(file, ["outgoing typing.isTyping: client type 'string' is not assignable to signalbox type 'boolean'"]);
  });

  test("a new required incoming field (user_joined.avatarUrl)", async () => {
    const file = plant(["type: 'user_joined';\n  serverId: string;", "type: 'user_joined';\n  serverId: string;\n  avatarUrl: string;"]);
    await assertDrift(file, ["incoming user_joined.avatarUrl: required by client, not sent by signalbox"]);
  });

  test("an envelope type that is not in the protocol, in either direction", async () => {
    const file = plant(
      ["  | PluginEventEvent;", "  | PluginEventEvent\n  | { type: 'server_icon_changed'; serverId: string };"],
      ["  | PluginEventMessage;", "  | PluginEventMessage\n  | { type: 'ping' };"],
    );
    await assertDrift(file, [
      "incoming server_icon_changed: not in the signalbox protocol",
      "outgoing ping: not in the signalbox protocol",
    ]);
  });

  test("a field the client requires but signalbox sends as optional (error.requestId)", async () => {
    const file = plant(["  requestId?: string;\n}", "  requestId: string;\n}"]);
    await assertDrift(file, ["incoming error.requestId: required by client, optional in signalbox"]);
  });

  test("a field signalbox requires that the client marks optional (outgoing view_server.serverId)", async () => {
    const file = plant(["type: 'view_server';\n  serverId: string;", "type: 'view_server';\n  serverId?: string;"]);
    await assertDrift(file, ["outgoing view_server.serverId: optional in client, required by signalbox"]);
  });

  test("a narrower incoming type, reported inside nested arrays of objects", async () => {
    const file = plant(["  status: UserStatus;\n  profileUpdatedAt?: number;", "  status: 'online' | 'offline';\n  profileUpdatedAt?: number;"]);
    const signalbox = `'"online" | "away" | "busy" | "offline"'`;
    const client = `'"online" | "offline"'`;
    await assertDrift(file, [
      `incoming server_users.users[].status: signalbox type ${signalbox} is not assignable to client type ${client}`,
      `incoming user_joined.status: signalbox type ${signalbox} is not assignable to client type ${client}`,
    ]);
  });

  test("an opaque record typed as a non-object (chat_message.message: string)", async () => {
    const file = plant(["  message: OpaqueRecord;\n}\n\nexport interface TypingMessage", "  message: string;\n}\n\nexport interface TypingMessage"]);
    const result = await check("--client", file);
    assert.equal(result.status, 1);
    assert.equal(result.lines.length, 1);
    assert.match(result.lines[0], /^outgoing chat_message\.message: client type 'string' is not assignable to signalbox type /);
  });

  test("extra optional fields and extra forwarded fields are not disagreements", async () => {
    const file = plant(
      ["type: 'leave_server';\n  serverId: string;", "type: 'leave_server';\n  serverId: string;\n  reason?: string;"],
      ["type: 'ice_candidate';\n  fromUserId: string;", "type: 'ice_candidate';\n  fromUserId: string;\n  callId: string;"],
    );
    const result = await check("--client", file);
    assert.equal(result.status, 0, result.stdout);
  });

  test("several drifts are all reported, sorted", async () => {
    const file = plant(["  | TypingMessage\n", ""], ["  requestId?: string;\n}", "  requestId: string;\n}"]);
    await assertDrift(file, [
      "incoming error.requestId: required by client, optional in signalbox",
      "outgoing typing: missing in client contract",
    ]);
  });
});

describe("usage and input errors exit 2", { concurrency: 2 }, () => {
  async function assertFatal(pending, pattern) {
    const result = await pending;
    assert.equal(result.status, 2, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, pattern);
  }

  test("no --client", async () => await assertFatal(check(), /--client PATH\.ts is required/));
  test("an unknown option", async () => await assertFatal(check("--client", FIXTURE, "--frobnicate"), /Unknown option '--frobnicate'/));
  test("an unreadable client file", async () =>
    await assertFatal(check("--client", path.join(scratch, "nope.ts")), /cannot read client contract .*nope\.ts: no such file/));
  test("a directory as client file", async () => await assertFatal(check("--client", scratch), /cannot read client contract/));
  test("a bindings dir without index.ts", async () =>
    await assertFatal(check("--client", FIXTURE, "--bindings", scratch), /cannot read bindings index/));
  test("a union name the client file does not declare", async () =>
    await assertFatal(check("--client", FIXTURE, "--incoming", "ServerMessage"), /declares no type named ServerMessage/));
  test("a union member without a string-literal type", async () =>
    await assertFatal(check("--client", plant(["  | PluginEventEvent;", "  | PluginEventEvent\n  | { kind: 'x' };"])), /has no string-literal `type` field/));
  test("a client file that does not compile", async () =>
    await assertFatal(check("--client", plant(["  isTyping: boolean;\n  oderId", "  isTyping: Boolen;\n  oderId"])), /does not compile[\s\S]*Boolen/));
});
