// A thin typed client for the signalbox WebSocket transport. Hand-written (not generated): every
// envelope type comes from the generated unions in ../src, so a protocol change that breaks a
// client using this module is a TypeScript error in that client.
//
// Works in browsers (global WebSocket) and in Node 20+ (pass a constructor, e.g. the `ws`
// package's `WebSocket`; Node 22 also has a global one).
import { backoffDelay } from "./backoff.js";
export { backoffDelay } from "./backoff.js";
export { SseClient } from "./sse.js";
// Close codes, checked against the generated constants: if the protocol renumbers one, these
// lines stop compiling.
const AUTH_FAILED = 4001;
const UNSUPPORTED_VERSION = 4000;
const MAJOR = 0;
/** Close codes after which the client does not reconnect: retrying cannot help. */
export const FATAL_CLOSE_CODES = [AUTH_FAILED, UNSUPPORTED_VERSION];
/** Whether the client reconnects after a close with `code`. */
export function isRetryable(code) {
    return !FATAL_CLOSE_CODES.includes(code);
}
const OPEN = 1;
const MAX_QUEUE = 256;
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
    #opts;
    #WebSocket;
    #handlers = new Map();
    #stateHandlers = new Set();
    #joined = new Set();
    #queue = [];
    #ws = null;
    #identified = false;
    #attempt = 0;
    #stopped = false;
    #retryTimer = null;
    #keepaliveTimer = null;
    #lastHeard = 0;
    #state = { state: "connecting", attempt: 0 };
    constructor(options) {
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
        const ctor = options.WebSocket ??
            globalThis.WebSocket;
        if (!ctor) {
            throw new Error("signalbox client: no global WebSocket; pass one (Node 20: `import { WebSocket } from \"ws\"`)");
        }
        this.#WebSocket = ctor;
    }
    /** Opens the connection (once; reconnects happen by themselves). */
    connect() {
        this.#stopped = false;
        if (!this.#ws && !this.#retryTimer)
            this.#open();
        return this;
    }
    /** The current connection state. */
    get state() {
        return this.#state;
    }
    /** Whether `identify` has been sent on the current socket (envelopes go straight out). */
    get ready() {
        return this.#identified && this.#ws?.readyState === OPEN;
    }
    /**
     * Sends one envelope. Before the connection is ready it is queued (at most 256) and sent after
     * `identify`; `join_server` and `leave_server` are remembered so joins survive reconnects.
     * Returns whether it went out now.
     */
    send(envelope) {
        if (envelope.type === "join_server")
            this.#joined.add(envelope.serverId);
        if (envelope.type === "leave_server")
            this.#joined.delete(envelope.serverId);
        const text = JSON.stringify(envelope);
        if (this.ready && this.#ws) {
            this.#ws.send(text);
            return true;
        }
        // Joins are replayed from #joined on connect; do not send them twice.
        if (envelope.type !== "join_server" && envelope.type !== "identify") {
            if (this.#queue.length >= MAX_QUEUE)
                this.#queue.shift();
            this.#queue.push(text);
        }
        return false;
    }
    /** Calls `handler` for every server envelope of type `type`. Returns an unsubscribe function. */
    on(type, handler) {
        let set = this.#handlers.get(type);
        if (!set)
            this.#handlers.set(type, (set = new Set()));
        const h = handler;
        set.add(h);
        return () => set.delete(h);
    }
    /** Calls `handler` for every server envelope, whatever its type. */
    onAny(handler) {
        return this.on("*", handler);
    }
    /** Resolves with the next envelope of `type` (optionally matching `filter`), or rejects after `timeoutMs`. */
    next(type, filter = () => true, timeoutMs = 10_000) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                off();
                reject(new Error(`signalbox client: no ${type} within ${timeoutMs} ms`));
            }, timeoutMs);
            const off = this.on(type, (e) => {
                if (!filter(e))
                    return;
                clearTimeout(timer);
                off();
                resolve(e);
            });
        });
    }
    /** Calls `handler` on every state change. */
    onState(handler) {
        this.#stateHandlers.add(handler);
        return () => this.#stateHandlers.delete(handler);
    }
    /** Closes for good (no reconnect). */
    close(code = 1000, reason = "client closed") {
        this.#stopped = true;
        if (this.#retryTimer)
            clearTimeout(this.#retryTimer);
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
            }
            catch {
                // already closing
            }
        }
        this.#setState({ state: "closed", code, reason, willRetry: false });
    }
    #setState(state) {
        this.#state = state;
        for (const h of this.#stateHandlers)
            h(state);
    }
    #open() {
        this.#setState({ state: "connecting", attempt: this.#attempt });
        const sep = this.#opts.url.includes("?") ? "&" : "?";
        let ws;
        try {
            ws = new this.#WebSocket(`${this.#opts.url}${sep}v=${this.#opts.protocolMajor}`);
        }
        catch (e) {
            this.#scheduleRetry(1006, String(e));
            return;
        }
        this.#ws = ws;
        this.#identified = false;
        ws.onopen = () => {
            this.#lastHeard = Date.now();
            this.#startKeepalive();
        };
        ws.onmessage = (event) => {
            this.#lastHeard = Date.now();
            const text = typeof event.data === "string" ? event.data : String(event.data);
            let envelope;
            try {
                envelope = JSON.parse(text);
            }
            catch {
                return;
            }
            if (typeof envelope !== "object" ||
                envelope === null ||
                typeof envelope.type !== "string") {
                return;
            }
            this.#dispatch(envelope);
        };
        ws.onerror = () => {
            // A close event always follows; reconnect is decided there.
        };
        ws.onclose = (event) => {
            if (this.#ws !== ws)
                return;
            this.#ws = null;
            this.#identified = false;
            this.#stopKeepalive();
            const code = event.code ?? 1006;
            const reason = event.reason ?? "";
            if (this.#stopped)
                return;
            if (!isRetryable(code)) {
                this.#stopped = true;
                this.#setState({ state: "closed", code, reason, willRetry: false });
                return;
            }
            this.#scheduleRetry(code, reason);
        };
    }
    #dispatch(envelope) {
        if (envelope.type === "connected") {
            this.#attempt = 0;
            this.#onConnected();
        }
        for (const key of [envelope.type, "*"]) {
            const set = this.#handlers.get(key);
            if (!set)
                continue;
            for (const h of [...set]) {
                try {
                    h(envelope);
                }
                catch (e) {
                    // A throwing handler must not break the others or the connection.
                    queueMicrotask(() => {
                        throw e;
                    });
                }
            }
        }
    }
    #onConnected() {
        const ws = this.#ws;
        if (!ws)
            return;
        const id = this.#opts.identify;
        const identify = { type: "identify", ...(typeof id === "function" ? id() : id) };
        ws.send(JSON.stringify(identify));
        this.#identified = true;
        for (const serverId of this.#joined) {
            const join = { type: "join_server", serverId };
            ws.send(JSON.stringify(join));
        }
        const queued = this.#queue;
        this.#queue = [];
        for (const text of queued)
            ws.send(text);
        this.#setState({ state: "open" });
    }
    #scheduleRetry(code, reason) {
        const delayMs = backoffDelay(this.#attempt, this.#opts.backoffBaseMs, this.#opts.backoffMaxMs, this.#opts.random);
        this.#attempt += 1;
        this.#setState({ state: "reconnecting", code, reason, delayMs, attempt: this.#attempt });
        this.#retryTimer = setTimeout(() => {
            this.#retryTimer = null;
            if (!this.#stopped)
                this.#open();
        }, delayMs);
    }
    #startKeepalive() {
        this.#stopKeepalive();
        const every = this.#opts.keepaliveMs;
        if (every <= 0)
            return;
        this.#keepaliveTimer = setInterval(() => {
            const ws = this.#ws;
            if (!ws)
                return;
            const dead = this.#opts.deadAfterMs;
            if (dead > 0 && Date.now() - this.#lastHeard > dead) {
                // Silent link: drop it; onclose reconnects (4002 is the server's heartbeat timeout).
                ws.onclose?.({ code: 4002, reason: "no frame from the server" });
                ws.onclose = null;
                try {
                    ws.close(4002, "heartbeat timeout");
                }
                catch {
                    // ignore
                }
                return;
            }
            if (this.#identified && ws.readyState === OPEN) {
                const keepalive = { type: "keepalive" };
                ws.send(JSON.stringify(keepalive));
            }
        }, every);
    }
    #stopKeepalive() {
        if (this.#keepaliveTimer)
            clearInterval(this.#keepaliveTimer);
        this.#keepaliveTimer = null;
    }
}
