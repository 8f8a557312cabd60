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
// The rules of agreement are those of tools/client-contract.mjs: every field of every envelope
// is compared both ways (present on both sides, same optionality, the sender's type fitting the
// reader's), through aliases, enums, brands, classes, mapped types and the DOM's WebRTC types.
//
// Output: one line per disagreement, `DIRECTION TYPE[.field...]: what differs (who is
// stricter)`, sorted. Exit 0 when everything matches, 1 on any disagreement, 2 on usage, I/O or
// compile errors.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { ContractError, checkClientContract, compilerOptions } from "./client-contract.mjs";

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
  const program = ts.createProgram([args.client, bindingsIndex], compilerOptions(ts));
  const clientWhere = path.relative(process.cwd(), args.client) || args.client;
  let result;
  try {
    result = checkClientContract(ts, program, args.client, bindingsIndex, args, clientWhere);
  } catch (err) {
    if (err instanceof ContractError) throw new FatalError(err.message);
    throw err;
  }
  const { issues } = result;
  if (issues.length > 0) {
    for (const line of issues) console.log(line);
    console.error(`client contract differs from signalbox: ${issues.length} disagreement(s)`);
    return 1;
  }
  console.log(`client contract OK: ${result.outgoing} outgoing, ${result.incoming} incoming envelope types match`);
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
