#!/usr/bin/env node
// Builds the typed client and the /demo page with tsc (tsconfig.build.json, into build/), then
// copies the JavaScript the page loads into server/demo/js/, which the server embeds.
//
//   node tools/build-demo.mjs           build and copy
//   node tools/build-demo.mjs --check   build and compare with the committed copies; exit 1 and
//                                       name each stale file (the drift check CI runs)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(pkg, "..", "..", "server", "demo", "js");
// What the page loads: the client and the page script (src/ is imported type-only).
const FILES = ["client/index.js", "client/backoff.js", "client/sse.js", "demo/app.js"];
const check = process.argv.includes("--check");

execFileSync(process.execPath, [join(pkg, "node_modules", "typescript", "bin", "tsc"), "-p", join(pkg, "tsconfig.build.json")], {
  stdio: "inherit",
});

const stale = [];
for (const file of FILES) {
  const built = readFileSync(join(pkg, "build", file), "utf8");
  const target = join(out, file);
  if (check) {
    if (!existsSync(target) || readFileSync(target, "utf8") !== built) stale.push(relative(process.cwd(), target));
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, built);
  }
}
if (stale.length > 0) {
  console.error(`demo build is stale (run: cd bindings/typescript && npm run build:demo):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log(check ? "demo build: up to date" : `demo build: wrote ${FILES.length} files to ${relative(process.cwd(), out)}`);
