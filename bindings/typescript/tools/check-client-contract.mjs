#!/usr/bin/env node
// check-client-contract: compares a client's TypeScript contract for the WebSocket envelopes with
// the signalbox bindings generated from the protocol crate, envelope type by envelope type.
//
// It owns one question: "would this client and signalbox agree on the wire?" It does not check
// that the bindings themselves are current (scripts/check-drift does) nor that they type-check
// (npm test does).
//
//   node tools/check-client-contract.mjs --client PATH.ts [--bindings DIR]
//                                        [--outgoing NAME] [--incoming NAME]
//
// The client file declares two unions of object types, each member with a string-literal `type`:
// client to server (default name OutgoingSignalingMessage) and server to client (default
// IncomingSignalingMessage). They are compared with `ClientEnvelope` and `ServerEnvelope` of the
// bindings (DIR/index.ts; default ../src beside this tool) by one TypeScript program and its type
// checker, so aliases, intersections, interfaces and imported types are resolved as tsc would.
//
// Rules, per direction (outgoing = the client sends, signalbox reads; incoming = the reverse):
//   - an envelope type on one side only is a disagreement;
//   - outgoing: every field signalbox requires must be present and required in the client; a field
//     the client requires that signalbox does not know is dropped by the server, so it is reported;
//     the client's field type must be assignable to signalbox's;
//   - incoming: every field the client requires must be sent by signalbox, and not optional there;
//     signalbox's field type must be assignable to the client's; extra signalbox fields are fine;
//   - fields unknown to signalbox are ignored where signalbox's type has an index signature
//     (forwarded envelopes keep every unknown field); values signalbox carries untouched (JsonValue,
//     and JSON objects of JsonValue) only need to be of a compatible kind (any value; an object);
//   - nested objects and arrays are compared field by field, so reports name the innermost field.
//
// Output: one line per disagreement, `DIRECTION TYPE[.field...]: what differs`, sorted.
// Exit 0 when everything matches, 1 on any disagreement, 2 on usage, I/O or compile errors.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const TOOL = "check-client-contract";
const DEFAULT_BINDINGS = fileURLToPath(new URL("../src", import.meta.url));
const USAGE = `usage: node tools/${TOOL}.mjs --client PATH.ts [--bindings DIR] [--outgoing NAME] [--incoming NAME]
  --client PATH.ts   the client's contract file (required)
  --bindings DIR     the generated bindings (default: ${DEFAULT_BINDINGS})
  --outgoing NAME    client-to-server union in the client file (default: OutgoingSignalingMessage)
  --incoming NAME    server-to-client union in the client file (default: IncomingSignalingMessage)`;

/** An error that ends the run with exit code 2 (bad usage, unreadable input, uncomparable file). */
class FatalError extends Error {
  constructor(message, { showUsage = false } = {}) {
    super(message);
    this.showUsage = showUsage;
  }
}

// ---------------------------------------------------------------------------------------------
// Command line and inputs

function parseCommandLine(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        client: { type: "string" },
        bindings: { type: "string" },
        outgoing: { type: "string" },
        incoming: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new FatalError(err.message, { showUsage: true });
  }
  if (values.help) return { help: true };
  if (!values.client) throw new FatalError("--client PATH.ts is required", { showUsage: true });
  return {
    client: path.resolve(values.client),
    bindings: path.resolve(values.bindings ?? DEFAULT_BINDINGS),
    outgoing: values.outgoing ?? "OutgoingSignalingMessage",
    incoming: values.incoming ?? "IncomingSignalingMessage",
  };
}

function requireReadableFile(file, what) {
  try {
    if (!fs.statSync(file).isFile()) throw new Error("not a regular file");
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const reason = err.code === "ENOENT" ? "no such file" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new FatalError(`cannot read ${what} ${file}: ${reason}`);
  }
}

async function loadTypeScript() {
  try {
    return (await import("typescript")).default;
  } catch {
    const dir = path.dirname(DEFAULT_BINDINGS);
    throw new FatalError(`the typescript package is not installed; run \`npm ci\` in ${dir}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The program: the client file and the bindings' index, checked together

function createProgram(ts, clientFile, bindingsIndex) {
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    // DOM for clients that use WebRTC's own types (RTCSessionDescriptionInit, ...).
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    types: [],
    skipLibCheck: true,
  };
  const program = ts.createProgram([clientFile, bindingsIndex], options);
  const client = program.getSourceFile(clientFile);
  if (!client) throw new FatalError(`cannot load client contract ${clientFile}`);
  const diagnostics = [...program.getSyntacticDiagnostics(client), ...program.getSemanticDiagnostics(client)];
  if (diagnostics.length > 0) {
    const text = ts.formatDiagnostics(diagnostics.slice(0, 10), {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => process.cwd(),
      getNewLine: () => "\n",
    });
    throw new FatalError(`the client contract does not compile, so it cannot be compared:\n${text.trimEnd()}`);
  }
  return { checker: program.getTypeChecker(), client, bindings: program.getSourceFile(bindingsIndex) };
}

/** The type named `name` in `sourceFile`: exported (also re-exported), or declared at top level. */
function lookupNamedType(ts, checker, sourceFile, name) {
  const moduleSymbol = checker.getSymbolAtLocation(sourceFile);
  let symbol = moduleSymbol && checker.getExportsOfModule(moduleSymbol).find((s) => s.name === name);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  if (symbol && symbol.flags & ts.SymbolFlags.Type) return checker.getDeclaredTypeOfSymbol(symbol);
  for (const statement of sourceFile.statements) {
    const isTypeDeclaration = ts.isTypeAliasDeclaration(statement) || ts.isInterfaceDeclaration(statement);
    if (isTypeDeclaration && statement.name.text === name) return checker.getTypeAtLocation(statement.name);
  }
  return undefined;
}

function requireNamedType(ts, checker, sourceFile, name, where) {
  const type = lookupNamedType(ts, checker, sourceFile, name);
  if (!type) throw new FatalError(`${where} declares no type named ${name}`);
  return type;
}

// ---------------------------------------------------------------------------------------------
// Envelope unions: `type` string -> member object type

/** Splits a union of envelope object types by their `type` literal(s). */
function envelopesByType(ts, checker, union, unionName, where) {
  const members = union.isUnion() ? union.types : [union];
  const byType = new Map();
  for (const member of members) {
    const typeNames = discriminantsOf(ts, checker, member);
    if (typeNames.length === 0) {
      throw new FatalError(
        `${where}: a member of ${unionName} (${checker.typeToString(member)}) has no string-literal \`type\` field`,
      );
    }
    for (const typeName of typeNames) {
      if (byType.has(typeName)) {
        throw new FatalError(`${where}: ${unionName} has more than one member with type "${typeName}"`);
      }
      byType.set(typeName, member);
    }
  }
  return byType;
}

/** The string literals of a member's `type` property (several when it is a union of literals). */
function discriminantsOf(ts, checker, member) {
  const prop = checker.getPropertyOfType(member, "type");
  if (!prop) return [];
  const type = checker.getTypeOfSymbol(prop);
  const parts = type.isUnion() ? type.types : [type];
  if (!parts.every((t) => t.isStringLiteral())) return [];
  return parts.map((t) => t.value);
}

// ---------------------------------------------------------------------------------------------
// Comparison

const MAX_DEPTH = 8;

/** Compares one direction's unions; returns report lines. */
function compareDirection(ctx, direction, ours, theirs) {
  const issues = [];
  for (const typeName of new Set([...ours.keys(), ...theirs.keys()])) {
    const oursMember = ours.get(typeName);
    const clientMember = theirs.get(typeName);
    if (!clientMember) issues.push(`${direction} ${typeName}: missing in client contract`);
    else if (!oursMember) issues.push(`${direction} ${typeName}: not in the signalbox protocol`);
    else compareObjects(ctx, direction, typeName, oursMember, clientMember, 0, new Set(["type"]), issues);
  }
  return issues;
}

/** Compares the fields of two object types at `where` (e.g. `server_users.users[]`). */
function compareObjects(ctx, direction, where, ours, client, depth, skip, issues) {
  const { checker } = ctx;
  const oursProps = propertyMap(checker, ours);
  const clientProps = propertyMap(checker, client);
  const oursIsOpen = hasStringIndex(ctx, ours);
  const outgoing = direction === "outgoing";
  for (const name of new Set([...oursProps.keys(), ...clientProps.keys()])) {
    if (skip.has(name)) continue;
    const field = `${direction} ${where}.${name}`;
    const o = oursProps.get(name);
    const c = clientProps.get(name);
    const oRequired = o !== undefined && !isOptional(ctx, o);
    const cRequired = c !== undefined && !isOptional(ctx, c);
    if (!c) {
      if (outgoing && oRequired) issues.push(`${field}: required by signalbox, missing in client`);
      continue;
    }
    if (!o) {
      if (cRequired && !oursIsOpen) {
        issues.push(`${field}: required by client, ${outgoing ? "unknown to signalbox (dropped)" : "not sent by signalbox"}`);
      }
      continue;
    }
    if (outgoing && oRequired && !cRequired) issues.push(`${field}: optional in client, required by signalbox`);
    if (!outgoing && cRequired && !oRequired) issues.push(`${field}: required by client, optional in signalbox`);
    compareTypes(ctx, direction, `${where}.${name}`, checker.getTypeOfSymbol(o), checker.getTypeOfSymbol(c), depth + 1, issues);
  }
}

/** Compares two field types: structurally where both are objects or arrays, else by assignability. */
function compareTypes(ctx, direction, where, oursType, clientType, depth, issues) {
  const { checker } = ctx;
  const outgoing = direction === "outgoing";
  const ours = withoutUndefined(ctx, oursType);
  const client = withoutUndefined(ctx, clientType);

  if (isJsonValue(ctx, ours)) return; // any JSON value: its shape is the clients' business
  if (isJsonObject(ctx, ours)) {
    // An opaque JSON object: the client may type it as any object (an interface of its record).
    const nonPrimitive = checker.getNonPrimitiveType();
    if (assignable(ctx, client, nonPrimitive) || (!outgoing && assignable(ctx, ours, client))) return;
  } else if (depth < MAX_DEPTH && checker.isArrayType(ours) && checker.isArrayType(client)) {
    const [oursElement] = checker.getTypeArguments(ours);
    const [clientElement] = checker.getTypeArguments(client);
    compareTypes(ctx, direction, `${where}[]`, oursElement, clientElement, depth + 1, issues);
    return;
  } else if (depth < MAX_DEPTH && isPlainObject(ctx, ours) && isPlainObject(ctx, client)) {
    compareObjects(ctx, direction, where, ours, client, depth, new Set(), issues);
    return;
  } else if (outgoing ? assignable(ctx, client, ours) : assignable(ctx, ours, client)) {
    return;
  }
  const oursText = `signalbox type '${display(ctx, oursType)}'`;
  const clientText = `client type '${display(ctx, clientType)}'`;
  const [source, target] = outgoing ? [clientText, oursText] : [oursText, clientText];
  issues.push(`${direction} ${where}: ${source} is not assignable to ${target}`);
}

// ---------------------------------------------------------------------------------------------
// Type helpers

function propertyMap(checker, type) {
  return new Map(checker.getPropertiesOfType(type).map((p) => [p.name, p]));
}

function isOptional(ctx, prop) {
  return (prop.flags & ctx.ts.SymbolFlags.Optional) !== 0;
}

function hasStringIndex(ctx, type) {
  return ctx.checker.getIndexInfosOfType(type).some((info) => info.keyType.flags & ctx.ts.TypeFlags.String);
}

/** An optional field's type without the `undefined` its `?` adds (optionality is checked apart). */
function withoutUndefined(ctx, type) {
  const { ts, checker } = ctx;
  if (!type.isUnion() || !type.types.some((t) => t.flags & ts.TypeFlags.Undefined)) return type;
  if (!type.types.some((t) => t.flags & ts.TypeFlags.Null)) return checker.getNonNullableType(type);
  // `T | null | undefined`: keep the union; assignable() and display() skip `undefined` parts.
  return type;
}

/** `source` assignable to `target`, ignoring `undefined` constituents of `source`. */
function assignable(ctx, source, target) {
  const { ts, checker } = ctx;
  const parts = source.isUnion() ? source.types.filter((t) => !(t.flags & ts.TypeFlags.Undefined)) : [source];
  return parts.every((part) => checker.isTypeAssignableTo(part, target));
}

function sameType(ctx, a, b) {
  return assignable(ctx, a, b) && assignable(ctx, b, a);
}

/** Signalbox's JsonValue (any JSON value), when the bindings define it. */
function isJsonValue(ctx, type) {
  return ctx.jsonValue !== undefined && sameType(ctx, type, ctx.jsonValue);
}

/** `{ [key: string]: JsonValue }`: an opaque JSON object with no declared fields. */
function isJsonObject(ctx, type) {
  if (ctx.jsonValue === undefined || type.isUnion()) return false;
  if (ctx.checker.getPropertiesOfType(type).length > 0) return false;
  const index = ctx.checker.getIndexInfosOfType(type).find((info) => info.keyType.flags & ctx.ts.TypeFlags.String);
  return index !== undefined && sameType(ctx, index.type, ctx.jsonValue);
}

/** An object type with fields (alone or an intersection of such), not an array or a function. */
function isPlainObject(ctx, type) {
  const { ts, checker } = ctx;
  const isObject = (t) => (t.flags & ts.TypeFlags.Object) !== 0;
  if (type.isUnion()) return false;
  if (!(isObject(type) || (type.isIntersection() && type.types.every(isObject)))) return false;
  if (checker.isArrayType(type) || checker.isTupleType(type)) return false;
  if (checker.getSignaturesOfType(type, ts.SignatureKind.Call).length > 0) return false;
  return checker.getPropertiesOfType(type).length > 0;
}

/** A type as a reader wants it in a report: the top-level alias expanded, no `| undefined`. */
function display(ctx, type) {
  const { ts, checker } = ctx;
  const flags = ts.TypeFormatFlags.InTypeAlias;
  const text = (t) => checker.typeToString(t, undefined, flags);
  if (!type.isUnion() || !type.types.some((t) => t.flags & ts.TypeFlags.Undefined)) return text(type);
  const hasNull = type.types.some((t) => t.flags & ts.TypeFlags.Null);
  return text(checker.getNonNullableType(type)) + (hasNull ? " | null" : "");
}

// ---------------------------------------------------------------------------------------------
// Main

async function run(argv) {
  const args = parseCommandLine(argv);
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const bindingsIndex = path.join(args.bindings, "index.ts");
  requireReadableFile(args.client, "client contract");
  requireReadableFile(bindingsIndex, "bindings index");
  const ts = await loadTypeScript();
  const { checker, client, bindings } = createProgram(ts, args.client, bindingsIndex);
  const ctx = { ts, checker, jsonValue: lookupNamedType(ts, checker, bindings, "JsonValue") };

  const clientWhere = path.relative(process.cwd(), args.client) || args.client;
  const bindingsWhere = path.relative(process.cwd(), bindingsIndex) || bindingsIndex;
  const union = (file, name, where) => envelopesByType(ts, checker, requireNamedType(ts, checker, file, name, where), name, where);
  const oursOut = union(bindings, "ClientEnvelope", bindingsWhere);
  const oursIn = union(bindings, "ServerEnvelope", bindingsWhere);
  const clientOut = union(client, args.outgoing, clientWhere);
  const clientIn = union(client, args.incoming, clientWhere);

  const issues = [
    ...compareDirection(ctx, "outgoing", oursOut, clientOut),
    ...compareDirection(ctx, "incoming", oursIn, clientIn),
  ].sort();
  if (issues.length > 0) {
    for (const line of issues) console.log(line);
    console.error(`client contract differs from signalbox: ${issues.length} disagreement(s)`);
    return 1;
  }
  console.log(`client contract OK: ${oursOut.size} outgoing, ${oursIn.size} incoming envelope types match`);
  return 0;
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (err) {
  // Exit 2 for every failure to compare, crashes included: 1 means "compared, and they differ".
  console.error(`${TOOL}: error: ${err instanceof FatalError ? err.message : err.stack}`);
  if (err.showUsage) console.error(USAGE);
  process.exitCode = 2;
}
