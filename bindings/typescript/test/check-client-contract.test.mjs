// Tests of tools/check-client-contract.mjs (run by `npm test` through `node --test`).
//
// The command: the fixture (test/fixtures/client-contract.ts) agrees with the generated bindings
// (exit 0), a planted drift exits 1 with its report lines, bad usage and unreadable inputs exit 2.
// The report: copies of the fixture with one drift each give exactly the lines naming the
// envelope, the field and the stricter side (checked in-process, one program for all; the
// generated matrix of every field is test/contract-matrix.test.mjs).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { checkAll } from "./helpers/contract-program.mjs";

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

/** The fixture with [from, to] replacements (string: exactly once; RegExp: once). */
function rewriteFixture(replacements) {
  let text = FIXTURE_TEXT;
  for (const [from, to] of replacements) {
    if (typeof from === "string") assert.equal(text.split(from).length - 1, 1, `the fixture should contain exactly once: ${from}`);
    else assert.match(text, from);
    text = text.replace(from, to);
  }
  return text;
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

describe("a planted drift exits 1", () => {
  test("a renamed field (join_server serverId -> serverID), reported both ways", async () => {
    const file = plant(["type: 'join_server';\n  serverId: string;", "type: 'join_server';\n  serverID: string;"]);
    const result = await check("--client", file);
    assert.equal(result.status, 1, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.deepEqual(result.lines, [
      "outgoing join_server.serverID: required in client, unknown to signalbox, which drops it (client is stricter)",
      "outgoing join_server.serverId: required in signalbox, missing in client (signalbox is stricter)",
    ]);
    assert.match(result.stderr, /client contract differs from signalbox: 2 disagreement\(s\)/);
  });
});

/** Each [name, replacements] planted in its own copy of the fixture, all checked in one program. */
const DRIFTS = [
  ["an envelope removed from the outgoing union (typing)", [["  | TypingMessage\n", ""]]],
  [
    "a changed field type (outgoing typing.isTyping: string)",
    [[/(type: 'typing';\n {2}serverId: string;\n {2}channelId: string;\n {2})isTyping: boolean;(\n\}\n\nexport interface VoiceStateMessage)/, "$1isTyping: string;$2"]],
  ],
  ["a new required incoming field (user_joined.avatarUrl)", [["type: 'user_joined';\n  serverId: string;", "type: 'user_joined';\n  serverId: string;\n  avatarUrl: string;"]]],
  [
    "an envelope type that is not in the protocol, in either direction",
    [
      ["  | PluginEventEvent;", "  | PluginEventEvent\n  | { type: 'server_icon_changed'; serverId: string };"],
      ["  | PluginEventMessage;", "  | PluginEventMessage\n  | { type: 'ping' };"],
    ],
  ],
  ["a field the client requires but signalbox sends as optional (error.requestId)", [["  requestId?: string;\n}", "  requestId: string;\n}"]]],
  ["a field signalbox requires that the client marks optional (view_server.serverId)", [["type: 'view_server';\n  serverId: string;", "type: 'view_server';\n  serverId?: string;"]]],
  ["a renamed optional field (identify.profileUpdatedAt)", [["  profileUpdatedAt?: number;\n  token?: string;", "  profileUpdatedAtMs?: number;\n  token?: string;"]]],
  ["a renamed server-set field on a delivery (ice_candidate fromUserId)", [["type: 'ice_candidate';\n  fromUserId: string;", "type: 'ice_candidate';\n  fromUserID: string;"]]],
  ["a narrower incoming type, inside nested arrays of objects", [["  status: UserStatus;\n  profileUpdatedAt?: number;", "  status: 'online' | 'offline';\n  profileUpdatedAt?: number;"]]],
  ["an opaque record typed as a non-object (chat_message.message: string)", [["  message: OpaqueRecord;\n}\n\nexport interface TypingMessage", "  message: string;\n}\n\nexport interface TypingMessage"]]],
  ["a field signalbox does not know, even optional (leave_server.reason)", [["type: 'leave_server';\n  serverId: string;", "type: 'leave_server';\n  serverId: string;\n  reason?: string;"]]],
  ["extra fields of forwarded envelopes, both ways (not a disagreement)", [
    ["type: 'ice_candidate';\n  targetUserId: string;", "type: 'ice_candidate';\n  targetUserId: string;\n  callId: string;"],
    ["type: 'ice_candidate';\n  fromUserId: string;", "type: 'ice_candidate';\n  fromUserId: string;\n  callId: string;"],
  ]],
  ["several drifts, all reported, sorted", [["  | TypingMessage\n", ""], ["  requestId?: string;\n}", "  requestId: string;\n}"]]],
];

const STATUSES = `'"online" | "away" | "busy" | "offline"'`;
const EXPECTED = {
  "an envelope removed from the outgoing union (typing)": ["outgoing typing: missing in client contract"],
  "a changed field type (outgoing typing.isTyping: string)": [
    "outgoing typing.isTyping: client type 'string' is not assignable to signalbox type 'boolean' (client and signalbox share no value)",
  ],
  "a new required incoming field (user_joined.avatarUrl)": ["incoming user_joined.avatarUrl: required in client, not sent by signalbox (client is stricter)"],
  "an envelope type that is not in the protocol, in either direction": [
    "incoming server_icon_changed: not in the signalbox protocol",
    "outgoing ping: not in the signalbox protocol",
  ],
  "a field the client requires but signalbox sends as optional (error.requestId)": [
    "incoming error.requestId: required in client, optional in signalbox (client is stricter)",
  ],
  "a field signalbox requires that the client marks optional (view_server.serverId)": [
    "outgoing view_server.serverId: optional in client, required in signalbox (signalbox is stricter)",
  ],
  "a renamed optional field (identify.profileUpdatedAt)": [
    "outgoing identify.profileUpdatedAt: optional in signalbox, missing in client (client is stricter)",
    "outgoing identify.profileUpdatedAtMs: optional in client, unknown to signalbox, which drops it (signalbox is stricter)",
  ],
  "a renamed server-set field on a delivery (ice_candidate fromUserId)": [
    "incoming ice_candidate.fromUserId: required in signalbox, missing in client (signalbox is stricter)",
  ],
  "a narrower incoming type, inside nested arrays of objects": [
    `incoming server_users.users[].status: signalbox type ${STATUSES} is not assignable to client type '"online" | "offline"' (client is stricter)`,
    `incoming user_joined.status: signalbox type ${STATUSES} is not assignable to client type '"online" | "offline"' (client is stricter)`,
  ],
  "an opaque record typed as a non-object (chat_message.message: string)": [
    "outgoing chat_message.message: client type 'string' is not assignable to signalbox type '{ [x: string]: JsonValue; }' (client and signalbox share no value)",
  ],
  "a field signalbox does not know, even optional (leave_server.reason)": [
    "outgoing leave_server.reason: optional in client, unknown to signalbox, which drops it (signalbox is stricter)",
  ],
  "extra fields of forwarded envelopes, both ways (not a disagreement)": [],
  "several drifts, all reported, sorted": [
    "incoming error.requestId: required in client, optional in signalbox (client is stricter)",
    "outgoing typing: missing in client contract",
  ],
};

describe("the report names envelope, direction, field and the stricter side", () => {
  const reports = checkAll(new Map(DRIFTS.map(([name, replacements]) => [name, rewriteFixture(replacements)])));
  for (const [name] of DRIFTS) {
    test(name, () => assert.deepEqual(reports.get(name), EXPECTED[name]));
  }
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
