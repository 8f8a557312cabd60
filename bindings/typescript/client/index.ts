// A thin typed client for the signalbox WebSocket transport. Hand-written (not generated): every
// envelope type comes from the generated unions in ../src, so a protocol change that breaks a
// client using this module is a TypeScript error in that client.
//
// Works in browsers (global WebSocket) and in Node 20+ (pass a constructor, e.g. the `ws`
// package's `WebSocket`; Node 22 also has a global one).

import type { ClientEnvelope, Identify, ServerEnvelope } from "../src/index.js";
import type { CLOSE_CODES, PROTOCOL_MAJOR } from "../src/constants.js";

import { backoffDelay } from "./backoff.js";

export { backoffDelay } from "./backoff.js";
export { SseClient } from "./sse.js";
export type { SseClientOptions, SseEvents, SseState } from "./sse.js";

/** Every `type` the server sends. */
export type ServerEnvelopeType = ServerEnvelope["type"];
/** The server envelope of one `type`, e.g. `ServerEnvelopeOf<"user_left">`. */
export type ServerEnvelopeOf<T extends ServerEnvelopeType> = Extract<ServerEnvelope, { type: T }>;
/** Every `type` a client may send. */
export type ClientEnvelopeType = ClientEnvelope["type"];
/** The client envelope of one `type`, e.g. `ClientEnvelopeOf<"offer">`. */
export type ClientEnvelopeOf<T extends ClientEnvelopeType> = Extract<ClientEnvelope, { type: T }>;
/** A handler for server envelopes of type `T`. */
export type EnvelopeHandler<T extends ServerEnvelopeType> = (envelope: ServerEnvelopeOf<T>) => void;

// Close codes, checked against the generated constants: if the protocol renumbers one, these
// lines stop compiling.
const AUTH_FAILED: (typeof CLOSE_CODES)["AUTH_FAILED"] = 4001;
const UNSUPPORTED_VERSION: (typeof CLOSE_CODES)["UNSUPPORTED_VERSION"] = 4000;
const MAJOR: typeof PROTOCOL_MAJOR = 0;

/** Close codes after which the client does not reconnect: retrying cannot help. */
export const FATAL_CLOSE_CODES: readonly number[] = [AUTH_FAILED, UNSUPPORTED_VERSION];

/**
 * The part of a WebSocket this client uses. The browser's `WebSocket`, Node 22's and the `ws`
 * package's all fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // Event parameters are `any` so that the DOM's and `ws`'s own event types both fit.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket`, or `ws`'s `WebSocket` in Node 20). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Where the connection is. */
export type ConnectionState =
  | { state: "connecting"; attempt: number }
  | { state: "open" }
  | { state: "reconnecting"; code: number; reason: string; delayMs: number; attempt: number }
  | { state: "closed"; code: number; reason: string; willRetry: false };

/** Options of {@link SignalboxClient}. */
export interface SignalboxClientOptions {
  /** The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`. `?v=MAJOR` is added. */
  url: string;
  /** Sent as `identify` after every `connected` (so after each reconnect too). */
  identify: Identify | (() => Identify);
  /** The WebSocket constructor; default `globalThis.WebSocket`. Required in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** First reconnect delay in ms (default 500). Each failed attempt doubles it. */
  backoffBaseMs?: number;
  /** Longest reconnect delay in ms (default 30000). */
  backoffMaxMs?: number;
  /** Interval of client `keepalive` envelopes in ms (default 20000, under the server's 45 s timeout); 0 turns them off. */
  keepaliveMs?: number;
  /**
   * Nothing received for this long (ms) means the link is dead: the socket is closed and the
   * client reconnects. Default 2.5 × keepaliveMs; 0 turns it off.
   */
  deadAfterMs?: number;
  /** The protocol major sent as `?v=` (default: the bindings' `PROTOCOL_MAJOR`). */
  protocolMajor?: number;
  /** Random source for jitter, in [0, 1) (default Math.random); for tests. */
  random?: () => number;
}

/** Whether the client reconnects after a close with `code`. */
export function isRetryable(code: number): boolean {
  return !FATAL_CLOSE_CODES.includes(code);
}

const OPEN = 1;
const MAX_QUEUE = 256;

type AnyHandler = (envelope: ServerEnvelope) => void;

/**
 * A signalbox WebSocket connection that reconnects by itself.
 *
 * - After each `connected` it sends `identify`, then `join_server` again for every server joined
 *   through {@link send} (and not left), then what was queued while disconnected.
 * - Reconnects with exponential backoff and jitter on any close except 4001 (authentication
 *   failed) and 4000 (unsupported protocol version), or {@link close}.
 * - Sends `keepalive` periodically and treats a silent link as dead.
 */
export class SignalboxClient {
  readonly #opts: Required<Omit<SignalboxClientOptions, "WebSocket" | "identify">> & {
    identify: SignalboxClientOptions["identify"];
  };
  readonly #WebSocket: WebSocketConstructor;
  readonly #handlers = new Map<string, Set<AnyHandler>>();
  readonly #stateHandlers = new Set<(s: ConnectionState) => void>();
  readonly #joined = new Set<string>();
  #queue: string[] = [];
  #ws: WebSocketLike | null = null;
  #identified = false;
  #attempt = 0;
  #stopped = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #keepaliveTimer: ReturnType<typeof setInterval> | null = null;
  #lastHeard = 0;
  #state: ConnectionState = { state: "connecting", attempt: 0 };

  constructor(options: SignalboxClientOptions) {
    const keepaliveMs = options.keepaliveMs ?? 20_000;
    this.#opts = {
      url: options.url,
      identify: options.identify,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      keepaliveMs,
      deadAfterMs: options.deadAfterMs ?? Math.round(keepaliveMs * 2.5),
      protocolMajor: options.protocolMajor ?? MAJOR,
      random: options.random ?? Math.random,
    };
    const ctor =
      options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new Error(
        "signalbox client: no global WebSocket; pass one (Node 20: `import { WebSocket } from \"ws\"`)",
      );
    }
    this.#WebSocket = ctor;
  }

  /** Opens the connection (once; reconnects happen by themselves). */
  connect(): this {
    this.#stopped = false;
    if (!this.#ws && !this.#retryTimer) this.#open();
    return this;
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Whether `identify` has been sent on the current socket (envelopes go straight out). */
  get ready(): boolean {
    return this.#identified && this.#ws?.readyState === OPEN;
  }

  /**
   * Sends one envelope. Before the connection is ready it is queued (at most 256) and sent after
   * `identify`; `join_server` and `leave_server` are remembered so joins survive reconnects.
   * Returns whether it went out now.
   */
  send(envelope: ClientEnvelope): boolean {
    if (envelope.type === "join_server") this.#joined.add(envelope.serverId);
    if (envelope.type === "leave_server") this.#joined.delete(envelope.serverId);
    const text = JSON.stringify(envelope);
    if (this.ready && this.#ws) {
      this.#ws.send(text);
      return true;
    }
    // Joins are replayed from #joined on connect; do not send them twice.
    if (envelope.type !== "join_server" && envelope.type !== "identify") {
      if (this.#queue.length >= MAX_QUEUE) this.#queue.shift();
      this.#queue.push(text);
    }
    return false;
  }

  /** Calls `handler` for every server envelope of type `type`. Returns an unsubscribe function. */
  on<T extends ServerEnvelopeType>(type: T, handler: EnvelopeHandler<T>): () => void {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    const h = handler as unknown as AnyHandler;
    set.add(h);
    return () => set.delete(h);
  }

  /** Calls `handler` for every server envelope, whatever its type. */
  onAny(handler: (envelope: ServerEnvelope) => void): () => void {
    return this.on("*" as ServerEnvelopeType, handler as EnvelopeHandler<ServerEnvelopeType>);
  }

  /** Resolves with the next envelope of `type` (optionally matching `filter`), or rejects after `timeoutMs`. */
  next<T extends ServerEnvelopeType>(
    type: T,
    filter: (envelope: ServerEnvelopeOf<T>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ServerEnvelopeOf<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`signalbox client: no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (e) => {
        if (!filter(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }

  /** Calls `handler` on every state change. */
  onState(handler: (state: ConnectionState) => void): () => void {
    this.#stateHandlers.add(handler);
    return () => this.#stateHandlers.delete(handler);
  }

  /** Closes for good (no reconnect). */
  close(code = 1000, reason = "client closed"): void {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#stopKeepalive();
    const ws = this.#ws;
    this.#ws = null;
    this.#identified = false;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      ws.onopen = null;
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
    this.#setState({ state: "closed", code, reason, willRetry: false });
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    for (const h of this.#stateHandlers) h(state);
  }

  #open(): void {
    this.#setState({ state: "connecting", attempt: this.#attempt });
    const sep = this.#opts.url.includes("?") ? "&" : "?";
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(`${this.#opts.url}${sep}v=${this.#opts.protocolMajor}`);
    } catch (e) {
      this.#scheduleRetry(1006, String(e));
      return;
    }
    this.#ws = ws;
    this.#identified = false;
    ws.onopen = () => {
      this.#lastHeard = Date.now();
      this.#startKeepalive();
    };
    ws.onmessage = (event: { data: unknown }) => {
      this.#lastHeard = Date.now();
      const text = typeof event.data === "string" ? event.data : String(event.data);
      let envelope: unknown;
      try {
        envelope = JSON.parse(text);
      } catch {
        return;
      }
      if (
        typeof envelope !== "object" ||
        envelope === null ||
        typeof (envelope as { type?: unknown }).type !== "string"
      ) {
        return;
      }
      this.#dispatch(envelope as ServerEnvelope);
    };
    ws.onerror = () => {
      // A close event always follows; reconnect is decided there.
    };
    ws.onclose = (event: { code?: number; reason?: string }) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#identified = false;
      this.#stopKeepalive();
      const code = event.code ?? 1006;
      const reason = event.reason ?? "";
      if (this.#stopped) return;
      if (!isRetryable(code)) {
        this.#stopped = true;
        this.#setState({ state: "closed", code, reason, willRetry: false });
        return;
      }
      this.#scheduleRetry(code, reason);
    };
  }

  #dispatch(envelope: ServerEnvelope): void {
    if (envelope.type === "connected") {
      this.#attempt = 0;
      this.#onConnected();
    }
    for (const key of [envelope.type, "*"]) {
      const set = this.#handlers.get(key);
      if (!set) continue;
      for (const h of [...set]) {
        try {
          h(envelope);
        } catch (e) {
          // A throwing handler must not break the others or the connection.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
  }

  #onConnected(): void {
    const ws = this.#ws;
    if (!ws) return;
    const id = this.#opts.identify;
    const identify: ClientEnvelope = { type: "identify", ...(typeof id === "function" ? id() : id) };
    ws.send(JSON.stringify(identify));
    this.#identified = true;
    for (const serverId of this.#joined) {
      const join: ClientEnvelope = { type: "join_server", serverId };
      ws.send(JSON.stringify(join));
    }
    const queued = this.#queue;
    this.#queue = [];
    for (const text of queued) ws.send(text);
    this.#setState({ state: "open" });
  }

  #scheduleRetry(code: number, reason: string): void {
    const delayMs = backoffDelay(
      this.#attempt,
      this.#opts.backoffBaseMs,
      this.#opts.backoffMaxMs,
      this.#opts.random,
    );
    this.#attempt += 1;
    this.#setState({ state: "reconnecting", code, reason, delayMs, attempt: this.#attempt });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#stopped) this.#open();
    }, delayMs);
  }

  #startKeepalive(): void {
    this.#stopKeepalive();
    const every = this.#opts.keepaliveMs;
    if (every <= 0) return;
    this.#keepaliveTimer = setInterval(() => {
      const ws = this.#ws;
      if (!ws) return;
      const dead = this.#opts.deadAfterMs;
      if (dead > 0 && Date.now() - this.#lastHeard > dead) {
        // Silent link: drop it; onclose reconnects (4002 is the server's heartbeat timeout).
        ws.onclose?.({ code: 4002, reason: "no frame from the server" });
        ws.onclose = null;
        try {
          ws.close(4002, "heartbeat timeout");
        } catch {
          // ignore
        }
        return;
      }
      if (this.#identified && ws.readyState === OPEN) {
        const keepalive: ClientEnvelope = { type: "keepalive" };
        ws.send(JSON.stringify(keepalive));
      }
    }, every);
  }

  #stopKeepalive(): void {
    if (this.#keepaliveTimer) clearInterval(this.#keepaliveTimer);
    this.#keepaliveTimer = null;
  }
}
