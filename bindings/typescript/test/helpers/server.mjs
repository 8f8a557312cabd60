// Starts a real signalbox server for a test: the built binary (target/debug/signalbox, built by
// `cargo build -p signalbox`), a temporary data directory, a free port on 127.0.0.1 and no STUN
// servers (so WebRTC peers use host candidates on loopback). Killed by PID in `stop()`.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const BINARY = process.env.SIGNALBOX_BIN ?? join(ROOT, "target", "debug", "signalbox");

/** A port that was free a moment ago. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = netServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitReady(base, child, output, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`signalbox exited (${child.exitCode}):\n${output()}`);
    try {
      const res = await fetch(`${base}/api/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`signalbox did not answer within ${timeoutMs} ms:\n${output()}`);
}

/**
 * Starts a server. `variables` is merged into the variables file; `port` and `dataDir` let a
 * test restart a server in place.
 */
export async function startServer({ variables = {}, port, dataDir } = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: run \`cargo build -p signalbox\` first`);
  }
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "signalbox-ts-"));
  writeFileSync(join(dir, "variables.json"), JSON.stringify({ stunUrls: [], ...variables }));
  const p = port ?? (await freePort());
  const child = spawn(BINARY, ["serve", "--data-dir", dir, "--port", String(p), "--bind", "127.0.0.1"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${p}`;
  try {
    await waitReady(base, child, () => log);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    port: p,
    dir,
    base,
    ws: `ws://127.0.0.1:${p}/ws`,
    log: () => log,
    /** Stops the server (SIGTERM: graceful, clients get 1001) and waits for it to exit. */
    async stop({ keepDir = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
        await exited;
        clearTimeout(timer);
      }
      if (!keepDir && !dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A guest token, for REST writes. */
export async function guest(base, displayName) {
  const res = await fetch(`${base}/api/auth/guest`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ displayName }),
  });
  if (!res.ok) throw new Error(`guest: ${res.status}`);
  return res.json();
}

/** Creates a server in the directory (`join_server` needs it to exist). */
export async function createServer(base, token, id) {
  const res = await fetch(`${base}/api/servers`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ id, name: id }),
  });
  if (!res.ok) throw new Error(`create server: ${res.status} ${await res.text()}`);
  return res.json();
}
