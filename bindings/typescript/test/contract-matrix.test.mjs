// The client-contract check against generated drifts and honest idioms, in-process (one
// TypeScript program for all variants, so the whole matrix takes seconds, not a process each).
//
// - Planted-drift matrix: every field of every envelope of the fixture contract
//   (test/fixtures/client-contract.ts), nested objects included, found by walking the fixture
//   with the type checker (never a hand-written list). Each field is renamed, removed, given an
//   incompatible type and flipped between required and optional, in its own copy of the fixture;
//   each copy must disagree, naming the field at every envelope that uses its declaration.
// - Protocol-side drifts: renames made in a copy of the generated bindings instead (optional
//   fields, and the fields the server sets on deliveries).
// - Idiom variants: the fixture rewritten the ways hand-written Angular contracts are (string
//   and const enums, branded ids, `T | undefined`, classes with methods and getters, DOM WebRTC
//   types, Readonly/Pick/Omit/Partial/intersections, imports and aliases); each must agree.
//
// The sizes are printed (`t.diagnostic`), and the test fails on any miss or false drift.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import ts from "typescript";

import { envelopesByType, lookupNamedType } from "../tools/client-contract.mjs";
import {
  BINDINGS,
  BINDINGS_INDEX,
  FIXTURE,
  FIXTURE_TEXT,
  NAMES,
  VIRTUAL_DIR,
  check,
  createProgram,
  rewrite,
} from "./helpers/contract-program.mjs";

// ---------------------------------------------------------------------------------------------
// The fixture's fields: declaration -> the envelope paths that use it

/**
 * Walks both unions of the fixture: for every wire field (but the top-level `type`) of every
 * envelope, nested object and array-of-object fields too, the property declaration in the
 * fixture and the `DIRECTION ENVELOPE.path` prefixes reports about it start with.
 */
function fixtureFields() {
  const program = createProgram(new Map([[FIXTURE, FIXTURE_TEXT]]));
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(FIXTURE);
  const byDeclaration = new Map();
  const visitObject = (direction, where, type, depth, skip) => {
    if (depth > 4) return;
    for (const prop of checker.getPropertiesOfType(type)) {
      if (prop.name === skip) continue;
      const declaration = prop.declarations?.find((d) => d.getSourceFile() === source && ts.isPropertySignature(d));
      if (!declaration) continue;
      const at = `${where}.${prop.name}`;
      if (!byDeclaration.has(declaration)) byDeclaration.set(declaration, { declaration, name: prop.name, uses: new Set() });
      byDeclaration.get(declaration).uses.add(`${direction} ${at}`);
      const fieldType = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
      if (checker.isArrayType(fieldType)) visitObject(direction, `${at}[]`, checker.getTypeArguments(fieldType)[0], depth + 1);
      else if (fieldType.flags & ts.TypeFlags.Object && checker.getPropertiesOfType(fieldType).length > 0) {
        visitObject(direction, at, fieldType, depth + 1);
      }
    }
  };
  for (const [direction, union] of Object.entries(NAMES)) {
    const envelopes = envelopesByType(ts, checker, lookupNamedType(ts, checker, source, union), union);
    for (const [name, member] of envelopes) visitObject(direction, name, member, 0, "type");
  }
  return { fields: [...byDeclaration.values()], checker };
}

/** An incompatible replacement for a field's declared type, chosen by what the type allows. */
function incompatibleType(checker, declaration) {
  const type = checker.getTypeAtLocation(declaration.type);
  if (type.flags & (ts.TypeFlags.Unknown | ts.TypeFlags.Any)) return "bigint";
  const parts = type.isUnion() ? type.types : [type];
  if (parts.some((p) => p.flags & ts.TypeFlags.StringLike)) return "number";
  return "string";
}

function replaceRange(text, start, end, replacement) {
  return text.slice(0, start) + replacement + text.slice(end);
}

/** The four planted drifts of one field declaration: [mutation, fixture text]. */
function driftsOf(field, checker) {
  const d = field.declaration;
  const nameStart = d.name.getStart();
  const nameEnd = d.name.getEnd();
  const optionalized = d.questionToken
    ? replaceRange(FIXTURE_TEXT, d.questionToken.getStart(), d.questionToken.getEnd(), "")
    : replaceRange(FIXTURE_TEXT, nameEnd, nameEnd, "?");
  return [
    ["rename", replaceRange(FIXTURE_TEXT, nameStart, nameEnd, `${field.name}Renamed`)],
    ["removal", replaceRange(FIXTURE_TEXT, d.getStart(), d.getEnd(), "")],
    ["type change", replaceRange(FIXTURE_TEXT, d.type.getStart(), d.type.getEnd(), incompatibleType(checker, d))],
    ["optionality change", optionalized],
  ];
}

// ---------------------------------------------------------------------------------------------

test("the planted-drift matrix: every mutation of every field is reported, naming it", (t) => {
  const { fields, checker } = fixtureFields();
  const cases = [];
  const files = new Map();
  for (const field of fields) {
    for (const [mutation, text] of driftsOf(field, checker)) {
      const file = path.join(VIRTUAL_DIR, `__drift-${cases.length}.ts`);
      files.set(file, text);
      cases.push({ file, field, mutation });
    }
  }
  const program = createProgram(files);
  const misses = [];
  for (const { file, field, mutation } of cases) {
    const issues = check(program, file);
    const unnamed = [...field.uses].filter((use) => !issues.some((line) => line.startsWith(`${use}:`)));
    if (issues.length === 0 || unnamed.length > 0) {
      misses.push(`${mutation} of ${[...field.uses].join(", ")}: not reported at ${unnamed.join(", ")}; got ${JSON.stringify(issues)}`);
    }
  }
  const uses = fields.reduce((n, f) => n + f.uses.size, 0);
  t.diagnostic(
    `planted-drift matrix: ${cases.length} drifts (${fields.length} field declarations x 4 mutations; ` +
      `${uses} envelope fields named), ${cases.length - misses.length} reported, ${misses.length} missed`,
  );
  assert.deepEqual(misses, []);
  assert.ok(fields.length > 50, `the walk found only ${fields.length} fields`);
});

test("protocol-side renames are reported too, optional and server-set fields included", (t) => {
  // Each rename is made in a copy of the generated bindings, as `scripts/generate` would write
  // it after the crate renamed the field.
  const renames = [
    ["Identify.ts", "oderId?:", "identify.oderId", "outgoing"],
    ["Identify.ts", "profileUpdatedAt?:", "identify.profileUpdatedAt", "outgoing"],
    ["JoinServer.ts", "inviteCode?:", "join_server.inviteCode", "outgoing"],
    ["ErrorEvent.ts", "requestId?:", "error.requestId", "incoming"],
    ["UserSummary.ts", "profileUpdatedAt?:", "server_users.users[].profileUpdatedAt", "incoming"],
    ["SdpSignalDelivery.ts", "fromUserId:", "offer.fromUserId", "incoming"],
    ["IceCandidateSignalDelivery.ts", "fromUserId:", "ice_candidate.fromUserId", "incoming"],
    ["PeerMessageDelivery.ts", "fromUserId:", "direct-message.fromUserId", "incoming"],
    ["RpcRequestDelivery.ts", "requestId:", "rpc_request.requestId", "incoming"],
    ["RpcResponseDelivery.ts", "fromUserId:", "rpc_response.fromUserId", "incoming"],
    ["IceCandidate.ts", "sdpMid?:", "ice_candidate.candidate.sdpMid", "outgoing"],
  ];
  const files = new Map();
  const cases = renames.map(([module, field, where, direction], i) => {
    const dir = path.join(VIRTUAL_DIR, `__bindings-${i}`);
    for (const name of fs.readdirSync(BINDINGS, { recursive: true })) {
      const source = path.join(BINDINGS, name);
      if (!name.endsWith(".ts") || fs.statSync(source).isDirectory()) continue;
      let text = fs.readFileSync(source, "utf8");
      if (name === module) {
        assert.ok(text.includes(field), `${module} declares ${field}`);
        text = text.replace(field, field.replace(/^(\w+)/, "$1Renamed"));
      }
      files.set(path.join(dir, name), text);
    }
    files.set(path.join(dir, "client.ts"), FIXTURE_TEXT);
    return { dir, where: `${direction} ${where}` };
  });
  const program = createProgram(files);
  const misses = [];
  for (const { dir, where } of cases) {
    const issues = check(program, path.join(dir, "client.ts"), path.join(dir, "index.ts"));
    // A forwarded envelope keeps unknown fields, so only the old name's absence is reported there.
    if (!issues.some((line) => line.startsWith(`${where}:`) || line.startsWith(`${where}Renamed:`))) misses.push(`${where}: ${JSON.stringify(issues)}`);
  }
  t.diagnostic(`protocol-side renames: ${cases.length}, ${misses.length} missed`);
  assert.deepEqual(misses, []);
});

// ---------------------------------------------------------------------------------------------
// Idioms: each variant is the fixture rewritten, and must still agree.

const USER_STATUS = "export type UserStatus = 'online' | 'away' | 'busy' | 'offline';";

const IDIOMS = {
  "a string enum as a field type": [
    [USER_STATUS, "export enum UserStatus { Online = 'online', Away = 'away', Busy = 'busy', Offline = 'offline' }"],
  ],
  "a const enum, for the error codes too": [
    [USER_STATUS, "export const enum UserStatus { Online = 'online', Away = 'away', Busy = 'busy', Offline = 'offline' }"],
    [
      /export type SignalingErrorCode =[^;]*;/,
      "export const enum SignalingErrorCode { InvalidMessage = 'INVALID_MESSAGE', UnknownType = 'UNKNOWN_TYPE', " +
        "NotIdentified = 'NOT_IDENTIFIED', RateLimited = 'RATE_LIMITED', TargetNotFound = 'TARGET_NOT_FOUND', " +
        "Forbidden = 'FORBIDDEN', AuthInvalid = 'AUTH_INVALID', AuthExpired = 'AUTH_EXPIRED', " +
        "InvalidPluginEvent = 'INVALID_PLUGIN_EVENT', InternalError = 'INTERNAL_ERROR' }",
    ],
  ],
  "branded id types": [
    [
      USER_STATUS,
      `${USER_STATUS}\nexport type UserId = string & { readonly __brand: 'UserId' };\n` +
        "export type ServerId = string & { readonly __brand: 'ServerId' };\nexport type Millis = number & { readonly __unit: 'ms' };",
    ],
    [/(oderId|fromUserId|targetUserId|senderId|sourceUserId)(\??): string;/g, "$1$2: UserId;"],
    [/serverId: string;/g, "serverId: ServerId;"],
    [/(timestamp|serverTime|emittedAt|iconUpdatedAt)(\??): number;/g, "$1$2: Millis;"],
  ],
  "`T | undefined` instead of `field?: T`": [[/(\w+)\?: ([^;]+);/g, "$1: $2 | undefined;"]],
  "classes with methods and getters": [
    [
      /export interface JoinServerMessage \{[^}]*\}/,
      [
        "export class JoinServerMessage {",
        "  readonly type = 'join_server' as const;",
        "  password?: string;",
        "  inviteCode?: string;",
        "  constructor(public serverId: string) {}",
        "  get isPrivate(): boolean { return this.password !== undefined; }",
        "  toJSON(): object { return { type: this.type, serverId: this.serverId, password: this.password }; }",
        "}",
      ].join("\n"),
    ],
    [
      /export interface ChatMessageEvent \{[^}]*\}/,
      [
        "export class ChatMessageEvent {",
        "  type!: 'chat_message';",
        "  serverId!: string;",
        "  message!: OpaqueRecord;",
        "  senderId!: string;",
        "  senderName!: string;",
        "  timestamp!: number;",
        "  get sentAt(): Date { return new Date(this.timestamp); }",
        "  describe(): string { return `${this.senderName}: ${String(this.message['text'])}`; }",
        "  static parse(raw: string): ChatMessageEvent { return Object.assign(new ChatMessageEvent(), JSON.parse(raw)); }",
        "}",
      ].join("\n"),
    ],
  ],
  "the DOM's WebRTC types": [
    [/export interface SessionDescriptionPayload \{[^}]*\}/, "export type SessionDescriptionPayload = RTCSessionDescriptionInit;"],
    [/export interface IceCandidatePayload \{[^}]*\}/, "export type IceCandidatePayload = RTCIceCandidateInit;"],
    [/export interface IceServerConfig \{[^}]*\}/, "export type IceServerConfig = RTCIceServer;"],
  ],
  "Readonly, Pick, Omit, Partial and intersections": [
    [/export interface LeaveServerMessage \{[^}]*\}/, "export type LeaveServerMessage = Omit<ViewServerMessage, 'type'> & { readonly type: 'leave_server' };"],
    [
      /export interface UserLeftEvent \{[^}]*\}/,
      "export type UserLeftEvent = Readonly<{ type: 'user_left'; serverId: string } & Pick<SignalingUser, 'oderId'>> &\n" +
        "  Partial<Pick<SignalingUser, 'displayName'>>;",
    ],
    [/export interface StatusUpdateEvent \{[^}]*\}/, "export type StatusUpdateEvent = Readonly<{ type: 'status_update' } & Pick<SignalingUser, 'oderId' | 'status'>>;"],
    [/export interface KeepaliveEvent \{[^}]*\}/, "export type KeepaliveEvent = Required<Partial<{ type: 'keepalive'; serverTime: number }>>;"],
  ],
  "readonly fields and arrays": [
    [/\n {2}(\w+\??): /g, "\n  readonly $1: "],
    [/(\w+)\[\];/g, "readonly $1[];"],
  ],
};

test("idiom variants agree: no false drift", (t) => {
  const files = new Map();
  const variants = Object.entries(IDIOMS).map(([idiom, replacements], i) => {
    const file = path.join(VIRTUAL_DIR, `__idiom-${i}.ts`);
    files.set(file, rewrite(FIXTURE_TEXT, replacements));
    return { idiom, file };
  });
  // Imports, aliases and custom union names: the unions re-exported under other names.
  const base = path.join(VIRTUAL_DIR, "__idiom-base.ts");
  const wrapper = path.join(VIRTUAL_DIR, "__idiom-wrapper.ts");
  files.set(base, FIXTURE_TEXT);
  files.set(
    wrapper,
    [
      'import type { OutgoingSignalingMessage, IncomingSignalingMessage } from "./__idiom-base";',
      "export type ToServer = OutgoingSignalingMessage;",
      "type FromServer = IncomingSignalingMessage;",
      "export type { FromServer as ServerToClient };",
      "",
    ].join("\n"),
  );
  const program = createProgram(files);
  const falseDrifts = [];
  for (const { idiom, file } of variants) {
    const issues = check(program, file);
    if (issues.length > 0) falseDrifts.push(`${idiom}:\n  ${issues.join("\n  ")}`);
  }
  const wrapped = check(program, wrapper, BINDINGS_INDEX, { outgoing: "ToServer", incoming: "ServerToClient" });
  if (wrapped.length > 0) falseDrifts.push(`imports and aliases:\n  ${wrapped.join("\n  ")}`);
  if (check(program, base).length > 0) falseDrifts.push("the fixture itself");
  t.diagnostic(`idiom variants: ${variants.length + 2} (${Object.keys(IDIOMS).join("; ")}; imports and aliases; the fixture), ${falseDrifts.length} false drifts`);
  assert.deepEqual(falseDrifts, []);
});
