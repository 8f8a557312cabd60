// Type-level drift: a client written with the typed client (examples/typed-client.ts) stops
// compiling when a field it uses is renamed in the protocol, and tsc's error names the field.
// The protocol crate's rename is simulated on a copy of its generated bindings (src/), which is
// exactly what `scripts/generate` would write after a rename in the crate.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TSC = join(PKG, "node_modules", "typescript", "bin", "tsc");

/** Copies src/, client/ and the example to a temp dir, applies `rename` to one generated file, runs tsc. */
function typecheck(file, from, to) {
  const dir = mkdtempSync(join(tmpdir(), "signalbox-drift-"));
  try {
    for (const d of ["src", "client", "examples"]) cpSync(join(PKG, d), join(dir, d), { recursive: true });
    if (file) {
      const path = join(dir, "src", file);
      const text = readFileSync(path, "utf8");
      assert.ok(text.includes(`${from}:`), `${file} has no field ${from}`);
      writeFileSync(path, text.replace(`${from}:`, `${to}:`));
    }
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(PKG, "tsconfig.build.json"),
        compilerOptions: { noEmit: true, rootDir: "." },
        include: ["client/**/*.ts", "examples/**/*.ts"],
      }),
    );
    const r = spawnSync(process.execPath, [TSC, "-p", join(dir, "tsconfig.json")], { encoding: "utf8" });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the example client type-checks against the bindings as generated", () => {
  const r = typecheck(null);
  assert.equal(r.status, 0, r.out);
});

test("renaming a field the client reads (chat_message.senderName) is a compile error naming it", (t) => {
  const r = typecheck("ChatMessageBroadcast.ts", "senderName", "authorName");
  assert.notEqual(r.status, 0);
  t.diagnostic(r.out.split("\n").find((l) => l.includes("error TS")) ?? r.out);
  assert.match(r.out, /examples\/typed-client\.ts.*error TS\d+: Property 'senderName' does not exist/);
});

test("renaming a field the client sends (chat_message.serverId) is a compile error naming it", (t) => {
  const r = typecheck("ChatMessage.ts", "serverId", "roomId");
  assert.notEqual(r.status, 0);
  t.diagnostic(r.out.split("\n").find((l) => l.includes("error TS")) ?? r.out);
  assert.match(r.out, /examples\/typed-client\.ts.*error TS\d+:[^\n]*'serverId'/);
});

test("renaming a field the client library itself uses (join_server.serverId) is caught too", (t) => {
  const r = typecheck("JoinServer.ts", "serverId", "server");
  assert.notEqual(r.status, 0);
  t.diagnostic(r.out.split("\n").find((l) => l.includes("error TS")) ?? r.out);
  assert.match(r.out, /client\/index\.ts.*error TS\d+:[^\n]*'serverId'/);
});
