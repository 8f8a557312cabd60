// In-process client-contract checks for the tests: one TypeScript program over many in-memory
// contract files (and copies of the bindings), library and bindings files parsed once per test
// process. Owns no rules: it only feeds tools/client-contract.mjs.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import ts from "typescript";

import { checkClientContract, compilerOptions } from "../../tools/client-contract.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURE = path.join(HERE, "..", "fixtures", "client-contract.ts");
export const FIXTURE_TEXT = fs.readFileSync(FIXTURE, "utf8");
export const BINDINGS = path.join(HERE, "..", "..", "src");
export const BINDINGS_INDEX = path.join(BINDINGS, "index.ts");
export const NAMES = { outgoing: "OutgoingSignalingMessage", incoming: "IncomingSignalingMessage" };
/** In-memory files are named beside the fixture (a real folder, so imports resolve). */
export const VIRTUAL_DIR = path.dirname(FIXTURE);

const parsed = new Map();

function ancestors(dir) {
  const out = [];
  for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) out.push(d);
  return out;
}

/** A program over `virtualFiles` (absolute path -> text) and the bindings index. */
export function createProgram(virtualFiles, bindingsIndex = BINDINGS_INDEX) {
  const options = compilerOptions(ts);
  const host = ts.createCompilerHost(options, true);
  const base = { fileExists: host.fileExists, readFile: host.readFile, getSourceFile: host.getSourceFile };
  const virtualDirs = new Set([...virtualFiles.keys()].flatMap((f) => ancestors(path.dirname(f))));
  const directoryExists = host.directoryExists?.bind(host);
  host.fileExists = (f) => virtualFiles.has(f) || base.fileExists(f);
  host.readFile = (f) => virtualFiles.get(f) ?? base.readFile(f);
  host.directoryExists = (d) => virtualDirs.has(d) || (directoryExists ? directoryExists(d) : true);
  host.getSourceFile = (f, language, onError) => {
    if (virtualFiles.has(f)) return ts.createSourceFile(f, virtualFiles.get(f), language, true);
    if (!parsed.has(f)) parsed.set(f, base.getSourceFile(f, language, onError));
    return parsed.get(f);
  };
  return ts.createProgram([...virtualFiles.keys(), bindingsIndex], options, host);
}

/** The report lines for one contract file of `program`. */
export function check(program, file, bindingsIndex = BINDINGS_INDEX, names = NAMES) {
  return checkClientContract(ts, program, file, bindingsIndex, names).issues;
}

/** Applies [from, to] replacements (string: must occur exactly once; RegExp: at least once). */
export function rewrite(text, replacements) {
  for (const [from, to] of replacements) {
    if (from instanceof RegExp) {
      if (!from.test(text)) throw new Error(`the fixture should match ${from}`);
      from.lastIndex = 0;
      text = text.replace(from, to);
    } else {
      if (text.split(from).length - 1 !== 1) throw new Error(`the fixture should contain exactly once: ${from}`);
      text = text.replace(from, to);
    }
  }
  return text;
}

/** Checks each named text (name -> contract text) in one program; returns name -> report lines. */
export function checkAll(texts) {
  const files = new Map([...texts].map(([name, text], i) => [path.join(VIRTUAL_DIR, `__case-${i}.ts`), text]));
  const program = createProgram(files);
  const names = [...texts.keys()];
  return new Map([...files.keys()].map((file, i) => [names[i], check(program, file)]));
}
