// The npm package as a client team gets it: `npm pack` (which builds dist/ through `prepack`),
// then the tarball, never this folder, is checked:
// - its contents: every `exports` target, a declaration map beside every declaration, the
//   sources those maps point to, and nothing of the repository's tooling;
// - `@arethetypeswrong/cli` and `publint --strict` on the tarball;
// - four scratch projects under target/npm-package-test/, one per TypeScript `moduleResolution`
//   (nodenext from ESM, node16 from CommonJS, bundler, node10), each installing the tarball,
//   type-checking with `skipLibCheck: false` and running the output with Node. Each program
//   prints the protocol constants it imported at run time and the test compares them with
//   schemas/constants.json; each holds a `@ts-expect-error` that only fires when the types
//   really resolved (types that resolve to `any` would make it an unused directive, an error).
//
// The scratch projects stay in target/npm-package-test/ (cleared at the next run) to look at.
//
// Accepted attw warning: "CJS resolves to ESM" for node16 from CommonJS. The package is
// ES modules only; CommonJS code loads it with `await import()` (the node16 project does so)
// or, on Node >= 20.19 / 22.12, with `require()` (the node10 project does so). A second,
// CommonJS build would bring the dual-package hazard for the client's classes.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const repoRoot = join(pkgDir, "..", "..");
const scratchRoot = join(repoRoot, "target", "npm-package-test");
const bin = (name) => join(pkgDir, "node_modules", ".bin", name);
const tsc = join(pkgDir, "node_modules", "typescript", "bin", "tsc");
const pkgJson = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const constants = JSON.parse(readFileSync(join(repoRoot, "schemas", "constants.json"), "utf8")).constants;

/** Runs a command; on failure the assertion message carries its whole output. */
function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  assert.equal(result.status, 0, `${command} ${args.join(" ")} (in ${cwd}) failed:\n${output}`);
  return result;
}

let tarball;
let files;

before(() => {
  rmSync(scratchRoot, { recursive: true, force: true });
  mkdirSync(scratchRoot, { recursive: true });
  const packed = execFileSync("npm", ["pack", "--json", "--silent", "--pack-destination", scratchRoot], {
    cwd: pkgDir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  // `prepack` output may precede the JSON array on stdout.
  const [info] = JSON.parse(packed.slice(packed.indexOf("[")));
  tarball = join(scratchRoot, info.filename);
  files = new Set(info.files.map((f) => f.path));
});

describe("tarball contents", () => {
  test("every exports target, main, types and typesVersions target is in the tarball", () => {
    const targets = [pkgJson.main, pkgJson.types];
    for (const conditions of Object.values(pkgJson.exports)) {
      targets.push(...(typeof conditions === "string" ? [conditions] : Object.values(conditions)));
    }
    for (const paths of Object.values(pkgJson.typesVersions["*"])) targets.push(...paths);
    for (const target of targets) assert.ok(files.has(posix.normalize(target)), `${target} is not in the tarball`);
    // `types` must come first in each condition set, or resolvers that stop at `default` miss it.
    for (const [entry, conditions] of Object.entries(pkgJson.exports)) {
      if (typeof conditions !== "string") assert.equal(Object.keys(conditions)[0], "types", `exports["${entry}"]`);
    }
    assert.equal(pkgJson.sideEffects, false);
  });

  test("each declaration has its declaration map, and each map's sources are shipped", () => {
    const declarations = [...files].filter((f) => f.endsWith(".d.ts"));
    assert.ok(declarations.length > 10, `only ${declarations.length} declarations`);
    const unpacked = join(scratchRoot, "unpacked");
    mkdirSync(unpacked, { recursive: true });
    run("tar", ["-xzf", tarball, "-C", unpacked], scratchRoot);
    for (const declaration of declarations) {
      const map = `${declaration}.map`;
      assert.ok(files.has(map), `${map} is missing`);
      const { sources } = JSON.parse(readFileSync(join(unpacked, "package", map), "utf8"));
      for (const source of sources) {
        const shipped = posix.join(posix.dirname(map), source);
        assert.ok(files.has(shipped), `${map} points to ${shipped}, which is not in the tarball`);
      }
    }
  });

  test("nothing of the repository's tooling or the demo is shipped", () => {
    for (const file of files) {
      assert.match(file, /^(package\.json|README\.md|dist\/.+|src\/.+\.ts|client\/.+\.ts)$/, `unexpected ${file}`);
    }
  });
});

describe("linters on the tarball", () => {
  test("@arethetypeswrong/cli: no problem but the accepted cjs-resolves-to-esm", () => {
    const { stdout } = run(bin("attw"), [tarball, "--format", "table-flipped", "--no-color", "--ignore-rules", "cjs-resolves-to-esm"], scratchRoot);
    console.log(stdout);
    assert.doesNotMatch(stdout, /Internal resolution error|No types|Resolution failed|Masquerad|Unexpected module syntax/);
  });

  test("publint --strict", () => {
    const { stdout } = run(bin("publint"), ["--strict", tarball], scratchRoot);
    assert.match(stdout, /All good!/);
  });
});

// ---- scratch projects -------------------------------------------------------------------------

const STRICT = {
  target: "ES2022",
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: false,
  outDir: "out",
  rootDir: ".",
};
/** A Node project's ambient types: @types/node (this package's devDependency). */
const NODE_TYPES = { lib: ["ES2022"], types: ["node"], typeRoots: [join(pkgDir, "node_modules", "@types")] };

/** The checks every program makes, whichever way it got `protocol` and `client`. */
const BODY = `
  const outgoing: ClientEnvelope = { type: "join_server", serverId: "lobby" };
  // @ts-expect-error a misspelled field must not compile (only true when the types resolved)
  const misspelled: ClientEnvelope = { type: "join_server", serverID: "lobby" };
  const left: ServerEnvelopeOf<"user_left">["type"] = "user_left";
  console.log(JSON.stringify({
    runtimeExports: Object.keys(protocol).filter((k) => k !== "default" && k !== "__esModule").sort(),
    protocolVersion: protocol.PROTOCOL_VERSION,
    authFailed: protocol.CLOSE_CODES.AUTH_FAILED,
    fatal: client.FATAL_CLOSE_CODES,
    classes: [typeof client.SignalboxClient, typeof client.SseClient],
    retryable: client.isRetryable(protocol.CLOSE_CODES.SLOW_CONSUMER),
    envelopes: [outgoing.type, left, typeof misspelled],
  }));
`;

const ESM_MAIN = `import * as protocol from "@signalbox/protocol";
import type { ClientEnvelope } from "@signalbox/protocol";
import * as client from "@signalbox/protocol/client";
import type { ServerEnvelopeOf } from "@signalbox/protocol/client";
${BODY}`;

const SCENARIOS = [
  {
    name: "nodenext (ESM)",
    dir: "nodenext-esm",
    type: "module",
    compilerOptions: { ...NODE_TYPES, module: "NodeNext", moduleResolution: "NodeNext", verbatimModuleSyntax: true },
    main: ESM_MAIN,
  },
  {
    name: "node16 from CommonJS (dynamic import)",
    dir: "node16-cjs",
    type: "commonjs",
    compilerOptions: { ...NODE_TYPES, module: "Node16", moduleResolution: "Node16" },
    main: `import type { ClientEnvelope } from "@signalbox/protocol" with { "resolution-mode": "import" };
import type { ServerEnvelopeOf } from "@signalbox/protocol/client" with { "resolution-mode": "import" };
async function main(): Promise<void> {
  const protocol = await import("@signalbox/protocol");
  const client = await import("@signalbox/protocol/client");
  ${BODY}
}
main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
`,
  },
  {
    name: "bundler (a browser app: DOM lib, no @types/node)",
    dir: "bundler",
    type: "module",
    compilerOptions: {
      lib: ["ES2022", "DOM"],
      types: [],
      module: "ESNext",
      moduleResolution: "Bundler",
      verbatimModuleSyntax: true,
    },
    main: ESM_MAIN,
  },
  {
    // Runs with require() of an ES module: Node >= 20.19 / 22.12 (older: ERR_REQUIRE_ESM).
    name: "node10 (CommonJS output, require)",
    dir: "node10",
    requiresRequireEsm: true,
    type: "commonjs",
    compilerOptions: { ...NODE_TYPES, module: "CommonJS", moduleResolution: "Node10", esModuleInterop: true },
    main: ESM_MAIN,
  },
];

describe("scratch projects install the tarball, type-check with skipLibCheck false and run", () => {
  const expected = {
    runtimeExports: Object.keys(constants).sort(),
    protocolVersion: constants.PROTOCOL_VERSION.value,
    authFailed: constants.CLOSE_CODES.value.AUTH_FAILED,
    fatal: [constants.CLOSE_CODES.value.AUTH_FAILED, constants.CLOSE_CODES.value.UNSUPPORTED_VERSION],
    classes: ["function", "function"],
    retryable: true,
    envelopes: ["join_server", "user_left", "object"],
  };

  for (const scenario of SCENARIOS) {
    test(scenario.name, () => {
      const dir = join(scratchRoot, scenario.dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, "package.json"),
        JSON.stringify({ name: `scratch-${scenario.dir}`, version: "0.0.0", private: true, type: scenario.type }, null, 2),
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { ...STRICT, ...scenario.compilerOptions }, files: ["main.ts"] }, null, 2),
      );
      writeFileSync(join(dir, "main.ts"), scenario.main);
      // The tarball has no dependencies: nothing is fetched.
      run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", tarball], dir);
      assert.ok(existsSync(join(dir, "node_modules", "@signalbox", "protocol", "dist")));
      run(process.execPath, [tsc, "-p", "tsconfig.json"], dir);
      const main = join(dir, "out", "main.js");
      if (scenario.requiresRequireEsm && process.features.require_module !== true) {
        // What the README says: require() of this ES-module-only package needs Node >= 20.19.
        const refused = spawnSync(process.execPath, [main], { cwd: dir, encoding: "utf8" });
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /ERR_REQUIRE_ESM/);
        return;
      }
      const { stdout } = run(process.execPath, [main], dir);
      assert.deepEqual(JSON.parse(stdout.trim()), expected);
    });
  }
});
