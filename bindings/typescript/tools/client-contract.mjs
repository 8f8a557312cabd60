// The client-contract comparison: given a TypeScript program holding a client's contract and the
// generated bindings, list every way the two disagree about the WebSocket wire.
//
// It owns the rules of agreement and nothing else: no command line, no files, no exit codes
// (tools/check-client-contract.mjs is the command; the tests drive this module in-process, many
// contracts per program). It never reports a difference TypeScript's spelling makes but the wire
// does not (aliases, interfaces or classes, enums, brands, `T | undefined`, mapped types).
//
// The rules, per envelope `type`, per direction (outgoing: the client sends, signalbox reads;
// incoming: signalbox sends, the client reads), for every field, nested objects and arrays too:
//   - an envelope type on one side only is a disagreement;
//   - a field signalbox declares must be declared by the client, required or optional alike;
//   - a field only the client declares is a disagreement, unless signalbox's object keeps
//     unknown fields (an index signature: forwarded envelopes, whose extra fields are the
//     peers' business), or the incoming envelope is the delivery of such an outgoing one;
//   - optionality must be the same on both sides (`field?: T` and `field: T | undefined` are
//     both optional);
//   - the sender's type must fit the reader's: every value the sender may put on the wire is
//     one the reader accepts. signalbox's optional fields are never sent as `null` (they are
//     omitted), so on incoming envelopes a `| null` of theirs is not one the client must accept;
//   - a field signalbox carries untouched (JsonValue) accepts any JSON-shaped client type; a
//     JSON object of JsonValue (a chat record) accepts any object type.
// What counts on the wire: literal values (string enums and const enums are their values),
// primitives (a branded `string & {...}` is a string), objects as their fields (methods and
// accessors of classes are not fields: JSON.stringify drops them), arrays as their elements.
//
// Each disagreement is one line `DIRECTION ENVELOPE[.field...]: what differs (who is stricter)`.

const MAX_DEPTH = 8;

/** Why a contract could not be compared (it does not compile, a union is missing or malformed). */
export class ContractError extends Error {}

/** The compiler options contracts are checked with: strict, with the DOM's WebRTC types. */
export function compilerOptions(ts) {
  return {
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
}

/**
 * Compares the client contract `clientFile` of `program` (which also holds `bindingsIndex`)
 * with the bindings; `names` = { outgoing, incoming } union names in the client file.
 * Returns { issues, outgoing, incoming } (the bindings' envelope type counts); throws
 * ContractError when the contract cannot be compared.
 */
export function checkClientContract(ts, program, clientFile, bindingsIndex, names, where = clientFile) {
  const client = program.getSourceFile(clientFile);
  if (!client) throw new ContractError(`cannot load client contract ${where}`);
  const bindings = program.getSourceFile(bindingsIndex);
  if (!bindings) throw new ContractError(`cannot load bindings index ${bindingsIndex}`);
  const diagnostics = [...program.getSyntacticDiagnostics(client), ...program.getSemanticDiagnostics(client)];
  if (diagnostics.length > 0) {
    const text = ts.formatDiagnostics(diagnostics.slice(0, 10), {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => process.cwd(),
      getNewLine: () => "\n",
    });
    throw new ContractError(`the client contract does not compile, so it cannot be compared:\n${text.trimEnd()}`);
  }
  const checker = program.getTypeChecker();
  const union = (file, name, at) => {
    const type = lookupNamedType(ts, checker, file, name);
    if (!type) throw new ContractError(`${at} declares no type named ${name}`);
    try {
      return envelopesByType(ts, checker, type, name);
    } catch (err) {
      throw new ContractError(`${at}: ${err.message}`);
    }
  };
  const ours = { outgoing: union(bindings, "ClientEnvelope", bindingsIndex), incoming: union(bindings, "ServerEnvelope", bindingsIndex) };
  const theirs = { outgoing: union(client, names.outgoing, where), incoming: union(client, names.incoming, where) };
  const jsonValue = lookupNamedType(ts, checker, bindings, "JsonValue");
  const issues = compareContracts(ts, checker, jsonValue, ours, theirs);
  return { issues, outgoing: ours.outgoing.size, incoming: ours.incoming.size };
}

/** The type named `name` in `sourceFile`: exported (also re-exported), or declared at top level. */
export function lookupNamedType(ts, checker, sourceFile, name) {
  const moduleSymbol = checker.getSymbolAtLocation(sourceFile);
  let symbol = moduleSymbol && checker.getExportsOfModule(moduleSymbol).find((s) => s.name === name);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  if (symbol && symbol.flags & ts.SymbolFlags.Type) return checker.getDeclaredTypeOfSymbol(symbol);
  for (const statement of sourceFile.statements) {
    const isTypeDeclaration =
      ts.isTypeAliasDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isClassDeclaration(statement);
    if (isTypeDeclaration && statement.name?.text === name) return checker.getTypeAtLocation(statement.name);
  }
  return undefined;
}

/**
 * Compares a client's two envelope unions with signalbox's, in one type checker.
 * `ours` and `theirs` are `{ outgoing, incoming }` maps from envelope `type` to member type.
 * Returns the sorted report lines (empty when they agree).
 */
export function compareContracts(ts, checker, jsonValue, ours, theirs) {
  const ctx = { ts, checker, jsonValue };
  const openOutgoing = new Set([...ours.outgoing].filter(([, type]) => hasStringIndex(ctx, type)).map(([name]) => name));
  return [
    ...compareDirection(ctx, "outgoing", ours.outgoing, theirs.outgoing, new Set()),
    ...compareDirection(ctx, "incoming", ours.incoming, theirs.incoming, openOutgoing),
  ].sort();
}

/** Splits a union of envelope object types by their `type` literal(s); throws on a bad union. */
export function envelopesByType(ts, checker, union, unionName) {
  const members = union.isUnion() ? union.types : [union];
  const byType = new Map();
  for (const member of members) {
    const typeNames = discriminantsOf(ts, checker, member);
    if (typeNames.length === 0) {
      throw new Error(`a member of ${unionName} (${checker.typeToString(member)}) has no string-literal \`type\` field`);
    }
    for (const typeName of typeNames) {
      if (byType.has(typeName)) throw new Error(`${unionName} has more than one member with type "${typeName}"`);
      byType.set(typeName, member);
    }
  }
  return byType;
}

/** The string literals of a member's `type` property (several when it is a union of them). */
function discriminantsOf(ts, checker, member) {
  const prop = checker.getPropertyOfType(member, "type");
  if (!prop) return [];
  const type = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
  const parts = type.isUnion() ? type.types : [type];
  if (!parts.every((t) => t.isStringLiteral())) return [];
  return parts.map((t) => t.value);
}

// ---------------------------------------------------------------------------------------------
// Envelopes and objects

function compareDirection(ctx, direction, ours, theirs, openDeliveries) {
  const issues = [];
  for (const typeName of new Set([...ours.keys(), ...theirs.keys()])) {
    const oursMember = ours.get(typeName);
    const clientMember = theirs.get(typeName);
    if (!clientMember) issues.push(`${direction} ${typeName}: missing in client contract`);
    else if (!oursMember) issues.push(`${direction} ${typeName}: not in the signalbox protocol`);
    else {
      const open = openDeliveries.has(typeName);
      compareObjects(ctx, direction, typeName, oursMember, clientMember, 0, { skip: "type", open }, issues);
    }
  }
  return issues;
}

/** Compares the wire fields of two object types at `where` (e.g. `server_users.users[]`). */
function compareObjects(ctx, direction, where, ours, client, depth, { skip, open = false }, issues) {
  const oursFields = wireFields(ctx, ours);
  const clientFields = wireFields(ctx, client);
  const oursIsOpen = open || hasStringIndex(ctx, ours);
  const outgoing = direction === "outgoing";
  for (const name of new Set([...oursFields.keys(), ...clientFields.keys()])) {
    if (name === skip) continue;
    const at = `${direction} ${where}.${name}`;
    const o = oursFields.get(name);
    const c = clientFields.get(name);
    // Which side is stricter about a field only one side declares: the side that requires it,
    // or, when it is optional, the side without it (whose type allows fewer objects).
    if (!c) {
      const stricter = o.optional ? "client is stricter" : "signalbox is stricter";
      issues.push(`${at}: ${o.optional ? "optional" : "required"} in signalbox, missing in client (${stricter})`);
      continue;
    }
    if (!o) {
      if (!oursIsOpen) {
        const role = outgoing ? "unknown to signalbox, which drops it" : "not sent by signalbox";
        const stricter = c.optional ? "signalbox is stricter" : "client is stricter";
        issues.push(`${at}: ${c.optional ? "optional" : "required"} in client, ${role} (${stricter})`);
      }
      continue;
    }
    if (o.optional !== c.optional) {
      issues.push(
        o.optional
          ? `${at}: required in client, optional in signalbox (client is stricter)`
          : `${at}: optional in client, required in signalbox (signalbox is stricter)`,
      );
    }
    // signalbox omits an absent optional field rather than sending null.
    const oursType = !outgoing && o.optional ? withoutNull(ctx, o.type) : o.type;
    compareTypes(ctx, direction, `${where}.${name}`, oursType, c.type, depth + 1, issues);
  }
}

/** Field name -> { optional, type (without the `undefined` optionality adds) }. */
function wireFields(ctx, type) {
  const { ts, checker } = ctx;
  const fields = new Map();
  for (const prop of checker.getPropertiesOfType(type)) {
    if (!isWireField(ts, prop)) continue;
    const full = checker.getTypeOfSymbol(prop);
    const undefinedAllowed = full.isUnion() && full.types.some((t) => t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void));
    const optional =
      (prop.flags & ts.SymbolFlags.Optional) !== 0 || undefinedAllowed || isUndefinedOnly(ts, full) || declaresUndefined(ts, prop);
    fields.set(prop.name, { optional, type: withoutUndefined(ctx, full) });
  }
  return fields;
}

/** `field: unknown | undefined` (which the checker folds into `unknown`): written optional. */
function declaresUndefined(ts, prop) {
  return (prop.declarations ?? []).some((d) => {
    const node = d.type;
    return node !== undefined && ts.isUnionTypeNode(node) && node.types.some((t) => t.kind === ts.SyntaxKind.UndefinedKeyword);
  });
}

/** Methods, accessors and function-valued members are not serialized by JSON.stringify. */
function isWireField(ts, prop) {
  const notData = ts.SymbolFlags.Method | ts.SymbolFlags.GetAccessor | ts.SymbolFlags.SetAccessor;
  if (prop.flags & notData) return false;
  if (prop.escapedName.startsWith("__@") || prop.escapedName.startsWith("#")) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Field types

/** Compares a field's types: structurally where objects or arrays meet, else by value sets. */
function compareTypes(ctx, direction, where, oursType, clientType, depth, issues) {
  const outgoing = direction === "outgoing";
  const oursText = `signalbox type '${display(ctx, oursType)}'`;
  const clientText = `client type '${display(ctx, clientType)}'`;
  const report = (stricter) => {
    const [source, target] = outgoing ? [clientText, oursText] : [oursText, clientText];
    issues.push(`${direction} ${where}: ${source} is not assignable to ${target} (${stricter})`);
  };

  if (isJsonValue(ctx, oursType)) {
    // Carried untouched: any JSON-shaped client type will do; functions, symbols do not.
    if (!jsonShaped(ctx, clientType, depth)) report("signalbox carries only JSON");
    return;
  }
  if (isJsonObject(ctx, oursType)) {
    const atoms = atomsOf(ctx, clientType);
    if (atoms.length === 0 || !atoms.every((a) => a.kind === "object" || (!outgoing && a.kind === "opaque"))) {
      const overlap = atoms.some((a) => a.kind === "object" || a.kind === "opaque");
      report(!overlap ? "client and signalbox share no value" : outgoing ? "signalbox is stricter" : "client is stricter");
    }
    return;
  }
  const [sender, reader] = outgoing ? [clientType, oursType] : [oursType, clientType];
  const senderAtoms = atomsOf(ctx, sender);
  const readerAtoms = atomsOf(ctx, reader);
  const nested = [];
  const fits = covers(ctx, direction, where, readerAtoms, senderAtoms, depth, nested);
  issues.push(...nested);
  if (fits) return;
  const readerSide = outgoing ? "signalbox" : "client";
  const senderSide = outgoing ? "client" : "signalbox";
  const reverse = covers(ctx, direction, where, senderAtoms, readerAtoms, depth, []);
  report(reverse ? `${readerSide} is stricter` : `${senderSide} and ${readerSide} share no value`);
}

/**
 * Whether every value of `sender` is accepted by `reader`. Where exactly one object (or array)
 * kind meets one on the other side, their fields (elements) are compared and the differences
 * go to `nested`: the report then names the innermost field, and the object counts as covered.
 */
function covers(ctx, direction, where, reader, sender, depth, nested) {
  if (reader.some((a) => a.kind === "opaque")) return true;
  const readerObjects = reader.filter((a) => a.kind === "object");
  const readerArrays = reader.filter((a) => a.kind === "array");
  const senderObjects = sender.filter((a) => a.kind === "object");
  const senderArrays = sender.filter((a) => a.kind === "array");
  for (const atom of sender) {
    if (atom.kind === "object") {
      if (readerObjects.length === 0) return false;
      if (readerObjects.length === 1 && senderObjects.length === 1 && depth < MAX_DEPTH) {
        const [ours, client] = direction === "outgoing" ? [readerObjects[0].type, atom.type] : [atom.type, readerObjects[0].type];
        compareObjects(ctx, direction, where, ours, client, depth, {}, nested);
      } else if (!readerObjects.some((r) => ctx.checker.isTypeAssignableTo(atom.type, r.type))) {
        return false;
      }
    } else if (atom.kind === "array") {
      if (readerArrays.length === 0) return false;
      if (readerArrays.length === 1 && senderArrays.length === 1 && depth < MAX_DEPTH) {
        const [ours, client] = direction === "outgoing" ? [readerArrays[0].element, atom.element] : [atom.element, readerArrays[0].element];
        compareTypes(ctx, direction, `${where}[]`, ours, client, depth + 1, nested);
      } else if (!readerArrays.some((r) => ctx.checker.isTypeAssignableTo(atom.type, r.type))) {
        return false;
      }
    } else if (!reader.some((r) => primitiveCovers(r, atom))) {
      return false;
    }
  }
  return true;
}

function primitiveCovers(reader, atom) {
  if (reader.kind === atom.kind) return atom.value === undefined || reader.value === undefined || reader.value === atom.value;
  if (reader.kind === "string" && atom.kind === "string-literal") return true;
  if (reader.kind === "number" && atom.kind === "number-literal") return true;
  if (reader.kind === "boolean" && (atom.kind === "true" || atom.kind === "false")) return true;
  return false;
}

/**
 * The kinds of value a type allows on the wire: `string`, `string-literal` (value), `number`,
 * `number-literal`, `true`, `false`, `boolean`, `null`, `object`, `array`, `opaque` (any,
 * unknown) or `non-json` (functions, symbols, bigint). Enums become their members' values and
 * brands their primitive; `undefined` is optionality, handled apart.
 */
function atomsOf(ctx, type) {
  const { ts, checker } = ctx;
  const F = ts.TypeFlags;
  const out = [];
  const visit = (t) => {
    if (t.flags & (F.Any | F.Unknown)) out.push({ kind: "opaque" });
    else if (t.isUnion()) t.types.forEach(visit);
    else if (t.flags & (F.Undefined | F.Void | F.Never)) return;
    else if (t.flags & F.StringLiteral) out.push({ kind: "string-literal", value: t.value });
    else if (t.flags & F.NumberLiteral) out.push({ kind: "number-literal", value: t.value });
    else if (t.flags & F.BooleanLiteral) out.push({ kind: t.intrinsicName === "true" ? "true" : "false" });
    else if (t.flags & (F.String | F.TemplateLiteral | F.StringMapping)) out.push({ kind: "string" });
    else if (t.flags & F.Number) out.push({ kind: "number" });
    else if (t.flags & F.Boolean) out.push({ kind: "boolean" });
    else if (t.flags & F.Null) out.push({ kind: "null" });
    else if (t.flags & (F.BigInt | F.BigIntLiteral | F.ESSymbol | F.UniqueESSymbol)) out.push({ kind: "non-json" });
    else if (t.isIntersection()) {
      // A branded primitive (`string & { __brand }`) is its primitive on the wire.
      const primitives = t.types.filter((p) => p.flags & (F.StringLike | F.NumberLike | F.BooleanLike));
      if (primitives.length > 0) primitives.forEach(visit);
      else out.push({ kind: "object", type: t });
    } else if (checker.isArrayType(t) || checker.isTupleType(t)) {
      const element = checker.isArrayType(t) ? checker.getTypeArguments(t)[0] : checker.getUnionType(checker.getTypeArguments(t));
      out.push({ kind: "array", type: t, element });
    } else if (t.flags & F.NonPrimitive) out.push({ kind: "object", type: t });
    else if (t.flags & F.Object) {
      if (checker.getSignaturesOfType(t, ts.SignatureKind.Call).length > 0) out.push({ kind: "non-json" });
      else out.push({ kind: "object", type: t });
    } else out.push({ kind: "non-json" });
  };
  visit(type);
  return out;
}

/** Whether every value of a client type can be JSON (recursing into objects and arrays). */
function jsonShaped(ctx, type, depth, seen = new Set()) {
  if (depth > MAX_DEPTH || seen.has(type)) return true;
  seen.add(type);
  return atomsOf(ctx, type).every((atom) => {
    if (atom.kind === "non-json") return false;
    if (atom.kind === "array") return jsonShaped(ctx, atom.element, depth + 1, seen);
    if (atom.kind !== "object") return true;
    return [...wireFields(ctx, atom.type).values()].every((f) => jsonShaped(ctx, f.type, depth + 1, seen));
  });
}

// ---------------------------------------------------------------------------------------------
// Type helpers

function hasStringIndex(ctx, type) {
  return ctx.checker.getIndexInfosOfType(type).some((info) => info.keyType.flags & ctx.ts.TypeFlags.String);
}

function isUndefinedOnly(ts, type) {
  return (type.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)) !== 0;
}

function withoutUndefined(ctx, type) {
  const { ts, checker } = ctx;
  if (!type.isUnion()) return type;
  const kept = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)));
  return kept.length === type.types.length ? type : checker.getUnionType(kept);
}

function withoutNull(ctx, type) {
  const { ts, checker } = ctx;
  if (!type.isUnion()) return type;
  const kept = type.types.filter((t) => !(t.flags & ts.TypeFlags.Null));
  return kept.length === type.types.length ? type : checker.getUnionType(kept);
}

function sameType(ctx, a, b) {
  return ctx.checker.isTypeAssignableTo(a, b) && ctx.checker.isTypeAssignableTo(b, a);
}

/** Signalbox's JsonValue (any JSON value), when the bindings define it. */
function isJsonValue(ctx, type) {
  return ctx.jsonValue !== undefined && sameType(ctx, withoutUndefined(ctx, type), ctx.jsonValue);
}

/** `{ [key: string]: JsonValue }`: an opaque JSON object with no declared fields. */
function isJsonObject(ctx, type) {
  if (ctx.jsonValue === undefined || type.isUnion()) return false;
  if (ctx.checker.getPropertiesOfType(type).length > 0) return false;
  const index = ctx.checker.getIndexInfosOfType(type).find((info) => info.keyType.flags & ctx.ts.TypeFlags.String);
  return index !== undefined && sameType(ctx, index.type, ctx.jsonValue);
}

/** A type as a reader wants it in a report: the top-level alias expanded, no `| undefined`. */
function display(ctx, type) {
  const { ts, checker } = ctx;
  return checker.typeToString(withoutUndefined(ctx, type), undefined, ts.TypeFormatFlags.InTypeAlias);
}
