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
//   types, Readonly/Pick/Omit/Partial/intersections, imports and aliases), and all of them in
//   one file; each must agree. The matrix then runs over that all-idioms file too, so no idiom
//   hides a drift.
//
// The sizes are printed (`t.diagnostic`), and the test fails on any miss or false drift.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import ts from "typescript";

import { ContractError, envelopesByType, lookupNamedType } from "../tools/client-contract.mjs";
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
function fixtureFields(text = FIXTURE_TEXT) {
  const program = createProgram(new Map([[FIXTURE, text]]));
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(FIXTURE);
  const byDeclaration = new Map();
  const visitObject = (direction, where, type, depth, skip) => {
    if (depth > 4) return;
    for (const prop of checker.getPropertiesOfType(type)) {
      if (prop.name === skip) continue;
      const declaration = prop.declarations?.find(
        (d) => d.getSourceFile() === source && (ts.isPropertySignature(d) || ts.isPropertyDeclaration(d)) && d.type,
      );
      if (!declaration) continue;
      const at = `${where}.${prop.name}`;
      if (!byDeclaration.has(declaration)) {
        byDeclaration.set(declaration, { declaration, name: prop.name, uses: new Set(), optionalityForced: new Set() });
      }
      const field = byDeclaration.get(declaration);
      field.uses.add(`${direction} ${at}`);
      // Through Partial/Required (a mapped type with a `?` modifier) the declaration's own `?`
      // does not reach this use, so flipping it changes nothing there.
      if (prop.links?.mappedType?.declaration?.questionToken) field.optionalityForced.add(`${direction} ${at}`);
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
  const parts = (type.isUnion() ? type.types : [type]).flatMap((p) => (p.isIntersection() ? p.types : [p]));
  if (parts.some((p) => p.flags & ts.TypeFlags.StringLike)) return "number";
  return "string";
}

function replaceRange(text, start, end, replacement) {
  return text.slice(0, start) + replacement + text.slice(end);
}

/** The four planted drifts of one field declaration: [mutation, contract text]. */
function driftsOf(field, checker, text = FIXTURE_TEXT) {
  const d = field.declaration;
  const nameStart = d.name.getStart();
  const nameEnd = d.name.getEnd();
  // Optional is `name?: T` or `name: T | undefined`: the change flips both spellings.
  const undefinedMembers = ts.isUnionTypeNode(d.type)
    ? d.type.types.filter((t) => t.kind === ts.SyntaxKind.UndefinedKeyword)
    : [];
  const optional = d.questionToken !== undefined || undefinedMembers.length > 0;
  const typeText = ts.isUnionTypeNode(d.type)
    ? d.type.types.filter((t) => !undefinedMembers.includes(t)).map((t) => t.getText()).join(" | ")
    : d.type.getText();
  const head = text.slice(d.getStart(), d.name.getStart());
  const optionalized = replaceRange(text, d.getStart(), d.type.getEnd(), `${head}${d.name.getText()}${optional ? "" : "?"}: ${typeText}`);
  return [
    ["rename", replaceRange(text, nameStart, nameEnd, `${field.name}Renamed`)],
    ["removal", replaceRange(text, d.getStart(), d.getEnd(), "")],
    ["type change", replaceRange(text, d.type.getStart(), d.type.getEnd(), incompatibleType(checker, d))],
    ["optionality change", optionalized],
  ];
}

/**
 * Plants every drift of every field of `text` and checks them in one program. Returns the
 * counts and the misses; a drift that makes the contract stop compiling (a class method or a
 * `Pick` using the renamed field) is refused by the checker with exit 2 and counted apart.
 */
function runMatrix(text) {
  const { fields, checker } = fixtureFields(text);
  const cases = [];
  const files = new Map();
  for (const field of fields) {
    for (const [mutation, mutated] of driftsOf(field, checker, text)) {
      const file = path.join(VIRTUAL_DIR, `__drift-${cases.length}.ts`);
      files.set(file, mutated);
      cases.push({ file, field, mutation });
    }
  }
  const program = createProgram(files);
  const misses = [];
  let uncompilable = 0;
  let unchanged = 0;
  for (const { file, field, mutation } of cases) {
    const expected = [...field.uses].filter((use) => mutation !== "optionality change" || !field.optionalityForced.has(use));
    if (expected.length === 0) {
      unchanged += 1;
      continue;
    }
    let issues;
    try {
      issues = check(program, file);
    } catch (err) {
      if (!(err instanceof ContractError) || !/does not compile/.test(err.message)) throw err;
      uncompilable += 1;
      continue;
    }
    const unnamed = expected.filter((use) => !issues.some((line) => line.startsWith(`${use}:`)));
    if (issues.length === 0 || unnamed.length > 0) {
      misses.push(`${mutation} of ${[...field.uses].join(", ")}: not reported at ${unnamed.join(", ")}; got ${JSON.stringify(issues)}`);
    }
  }
  const uses = fields.reduce((n, f) => n + f.uses.size, 0);
  return { cases: cases.length, fields: fields.length, uses, misses, uncompilable, unchanged };
}

// ---------------------------------------------------------------------------------------------

test("the planted-drift matrix: every mutation of every field is reported, naming it", (t) => {
  const { cases, fields, uses, misses, uncompilable, unchanged } = runMatrix(FIXTURE_TEXT);
  t.diagnostic(
    `planted-drift matrix: ${cases} drifts (${fields} field declarations x 4 mutations; ` +
      `${uses} envelope fields named), ${cases - misses.length - uncompilable} reported, ${misses.length} missed`,
  );
  assert.deepEqual(misses, []);
  assert.equal(uncompilable, 0);
  assert.equal(unchanged, 0);
  assert.ok(fields > 50, `the walk found only ${fields} fields`);
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

/** `export const enum Name { PascalCase = 'CODE', ... }` for the string literals of `union`. */
function constEnumOf(name, union) {
  const members = [...union.matchAll(/'([A-Z_]+)'/g)].map(([, code]) => {
    const member = code
      .toLowerCase()
      .split("_")
      .map((word) => word[0].toUpperCase() + word.slice(1))
      .join("");
    return `${member} = '${code}'`;
  });
  return `export const enum ${name} { ${members.join(", ")} }`;
}

const IDIOMS = {
  "a string enum as a field type": [
    [USER_STATUS, "export enum UserStatus { Online = 'online', Away = 'away', Busy = 'busy', Offline = 'offline' }"],
  ],
  "a const enum, for the error codes too": [
    [USER_STATUS, "export const enum UserStatus { Online = 'online', Away = 'away', Busy = 'busy', Offline = 'offline' }"],
    [
      /export type SignalingErrorCode =[^;]*;/,
      // Built from the fixture's own union, so a new error code needs no second list here.
      (union) => constEnumOf("SignalingErrorCode", union),
    ],
  ],
  "branded id types": [
    [
      "// Shared shapes\n",
      "// Shared shapes\n\nexport type UserId = string & { readonly __brand: 'UserId' };\n" +
        "export type ServerId = string & { readonly __brand: 'ServerId' };\nexport type Millis = number & { readonly __unit: 'ms' };\n",
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

/** The fixture with every idiom but the string enum (the const enum replaces it) applied. */
function combinedIdioms() {
  const together = Object.keys(IDIOMS).filter((idiom) => idiom !== "a string enum as a field type");
  return together.reduce((text, idiom) => rewrite(text, IDIOMS[idiom]), FIXTURE_TEXT);
}

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
  // All of them at once, as one hand-written Angular contract would mix them.
  const combined = path.join(VIRTUAL_DIR, "__idiom-combined.ts");
  files.set(combined, combinedIdioms());
  variants.push({ idiom: "all of the above but the string enum, in one file", file: combined });
  const program = createProgram(files);
  const falseDrifts = [];
  for (const { idiom, file } of variants) {
    const issues = check(program, file);
    if (issues.length > 0) falseDrifts.push(`${idiom}:\n  ${issues.join("\n  ")}`);
  }
  const wrapped = check(program, wrapper, BINDINGS_INDEX, { outgoing: "ToServer", incoming: "ServerToClient" });
  if (wrapped.length > 0) falseDrifts.push(`imports and aliases:\n  ${wrapped.join("\n  ")}`);
  if (check(program, base).length > 0) falseDrifts.push("the fixture itself");
  t.diagnostic(
    `idiom variants: ${variants.length + 2} (${variants.map((v) => v.idiom).join("; ")}; imports and aliases; ` +
      `the fixture), ${falseDrifts.length} false drifts`,
  );
  assert.deepEqual(falseDrifts, []);
});

test("the matrix over the all-idioms contract: idioms hide no drift", (t) => {
  const { cases, fields, uses, misses, uncompilable, unchanged } = runMatrix(combinedIdioms());
  t.diagnostic(
    `all-idioms matrix: ${cases} drifts (${fields} field declarations x 4 mutations; ${uses} envelope fields named), ` +
      `${cases - misses.length - uncompilable - unchanged} reported, ${misses.length} missed, ` +
      `${uncompilable} stop the contract compiling (a method or Pick using the field: exit 2, CI fails), ` +
      `${unchanged} not drifts (a \`?\` flipped under Partial/Required)`,
  );
  assert.deepEqual(misses, []);
  assert.ok(uncompilable < cases / 10, `${uncompilable} mutations did not compile`);
});
