// The SSE counterpart of the WebSocket client: `GET /api/connect` (a Server-Sent Events stream),
// `POST /api/signal` and `POST /api/leave`. Reads the stream with `fetch` rather than
// `EventSource`, so it runs unchanged in browsers and in Node 20+ (which has `fetch` but no
// `EventSource`) and can resume its session (`session_id` + `token`) after a dropped stream.

import type {
  JsonValue,
  LeaveRequest,
  SignalRequest,
  SseErrorBody,
  SseJoined,
  SseRoster,
  SseSignal,
} from "../src/index.js";
import { backoffDelay } from "./backoff.js";

/** The events of an SSE session, by event name. */
export interface SseEvents {
  joined: SseJoined;
  roster: SseRoster;
  signal: SseSignal;
}

/** Where the session's stream is. */
export type SseState = "connecting" | "open" | "reconnecting" | "closed";

/** Options of {@link SseClient}. */
export interface SseClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** The room (trimmed and upper-cased by the server). */
  room: string;
  /** First reconnect delay in ms (default 500), doubled per failed attempt, capped at 30 s. */
  backoffBaseMs?: number;
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
}

type Handler<K extends keyof SseEvents> = (data: SseEvents[K]) => void;

/** An SSE session that resumes itself after a dropped stream. */
export class SseClient {
  readonly #opts: Required<SseClientOptions>;
  readonly #handlers: { [K in keyof SseEvents]: Set<Handler<K>> } = {
    joined: new Set(),
    roster: new Set(),
    signal: new Set(),
  };
  readonly #stateHandlers = new Set<(state: SseState) => void>();
  #session: SseJoined | null = null;
  #abort: AbortController | null = null;
  #stopped = true;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | null = null;

  constructor(options: SseClientOptions) {
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error("signalbox SSE client: no global fetch; pass one");
    this.#opts = {
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      room: options.room,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      fetch: f.bind(globalThis),
    };
  }

  /** The session (id, token, ICE servers) once `joined` arrived. */
  get session(): SseJoined | null {
    return this.#session;
  }

  /** Calls `handler` for every event named `event`. Returns an unsubscribe function. */
  on<K extends keyof SseEvents>(event: K, handler: Handler<K>): () => void {
    const set = this.#handlers[event] as Set<Handler<K>>;
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Calls `handler` on every stream state change. */
  onState(handler: (state: SseState) => void): () => void {
    this.#stateHandlers.add(handler);
    return () => this.#stateHandlers.delete(handler);
  }

  /** Opens the stream; resolves with the session once `joined` arrived. */
  connect(): Promise<SseJoined> {
    this.#stopped = false;
    const joined = new Promise<SseJoined>((resolve) => {
      const off = this.on("joined", (j) => {
        off();
        resolve(j);
      });
    });
    void this.#run();
    return joined;
  }

  /** Sends `signal` to the session `to` in the same room. */
  async signal(to: string, signal: JsonValue): Promise<void> {
    const s = this.#need();
    const body: SignalRequest = { sender: s.id, to, token: s.token, signal };
    await this.#post("signal", body);
  }

  /** Leaves the room now and closes the stream. */
  async leave(): Promise<void> {
    const s = this.#need();
    const body: LeaveRequest = { sender: s.id, token: s.token };
    this.close();
    await this.#post("leave", body);
  }

  /** Closes the stream without leaving (the session stays resumable until pruned). */
  close(): void {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#abort?.abort();
    this.#abort = null;
    this.#setState("closed");
  }

  #need(): SseJoined {
    if (!this.#session) throw new Error("signalbox SSE client: not joined yet");
    return this.#session;
  }

  #url(path: string, extra: Record<string, string> = {}): string {
    const q = new URLSearchParams({ room: this.#opts.room, ...extra });
    return `${this.#opts.baseUrl}/api/${path}?${q}`;
  }

  async #post(path: "signal" | "leave", body: SignalRequest | LeaveRequest): Promise<void> {
    const res = await this.#opts.fetch(this.#url(path), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) {
      const err = (await res.json().catch(() => ({ error: res.statusText }))) as SseErrorBody;
      throw new Error(`signalbox SSE ${path}: ${res.status} ${err.error}`);
    }
  }

  #setState(state: SseState): void {
    for (const h of this.#stateHandlers) h(state);
  }

  #emit(event: string, data: string): void {
    if (event !== "joined" && event !== "roster" && event !== "signal") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (event === "joined") {
      this.#session = parsed as SseJoined;
      this.#attempt = 0;
    }
    for (const h of this.#handlers[event] as Set<(d: unknown) => void>) h(parsed);
  }

  async #run(): Promise<void> {
    this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
    const abort = new AbortController();
    this.#abort = abort;
    const s = this.#session;
    const extra: Record<string, string> = s ? { session_id: s.id, token: s.token } : {};
    try {
      const res = await this.#opts.fetch(this.#url("connect", extra), {
        headers: { accept: "text/event-stream" },
        signal: abort.signal,
      });
      if (res.status === 403 || res.status === 400) {
        // A wrong token or a bad room: retrying cannot help.
        this.close();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
      this.#setState("open");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let at: number;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue; // `: keepalive`
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event = value;
            else if (field === "data") data.push(value);
          }
          if (data.length > 0) this.#emit(event, data.join("\n"));
        }
      }
    } catch {
      // network error or abort: handled below
    }
    if (this.#stopped || this.#abort !== abort) return;
    const delayMs = backoffDelay(this.#attempt, this.#opts.backoffBaseMs, 30_000);
    this.#attempt += 1;
    this.#setState("reconnecting");
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (!this.#stopped) void this.#run();
    }, delayMs);
  }
}
