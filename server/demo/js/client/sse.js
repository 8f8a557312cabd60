// The SSE counterpart of the WebSocket client: `GET /api/connect` (a Server-Sent Events stream),
// `POST /api/signal` and `POST /api/leave`. Reads the stream with `fetch` rather than
// `EventSource`, so it runs unchanged in browsers and in Node 20+ (which has `fetch` but no
// `EventSource`) and can resume its session (`session_id` + `token`) after a dropped stream.
import { backoffDelay } from "./backoff.js";
/** An SSE session that resumes itself after a dropped stream. */
export class SseClient {
    #opts;
    #handlers = {
        joined: new Set(),
        roster: new Set(),
        signal: new Set(),
    };
    #stateHandlers = new Set();
    #session = null;
    #abort = null;
    #stopped = true;
    #attempt = 0;
    #retry = null;
    constructor(options) {
        const f = options.fetch ?? globalThis.fetch;
        if (!f)
            throw new Error("signalbox SSE client: no global fetch; pass one");
        this.#opts = {
            baseUrl: options.baseUrl.replace(/\/+$/, ""),
            room: options.room,
            backoffBaseMs: options.backoffBaseMs ?? 500,
            fetch: f.bind(globalThis),
        };
    }
    /** The session (id, token, ICE servers) once `joined` arrived. */
    get session() {
        return this.#session;
    }
    /** Calls `handler` for every event named `event`. Returns an unsubscribe function. */
    on(event, handler) {
        const set = this.#handlers[event];
        set.add(handler);
        return () => set.delete(handler);
    }
    /** Calls `handler` on every stream state change. */
    onState(handler) {
        this.#stateHandlers.add(handler);
        return () => this.#stateHandlers.delete(handler);
    }
    /** Opens the stream; resolves with the session once `joined` arrived. */
    connect() {
        this.#stopped = false;
        const joined = new Promise((resolve) => {
            const off = this.on("joined", (j) => {
                off();
                resolve(j);
            });
        });
        void this.#run();
        return joined;
    }
    /** Sends `signal` to the session `to` in the same room. */
    async signal(to, signal) {
        const s = this.#need();
        const body = { sender: s.id, to, token: s.token, signal };
        await this.#post("signal", body);
    }
    /** Leaves the room now and closes the stream. */
    async leave() {
        const s = this.#need();
        const body = { sender: s.id, token: s.token };
        this.close();
        await this.#post("leave", body);
    }
    /** Closes the stream without leaving (the session stays resumable until pruned). */
    close() {
        this.#stopped = true;
        if (this.#retry)
            clearTimeout(this.#retry);
        this.#retry = null;
        this.#abort?.abort();
        this.#abort = null;
        this.#setState("closed");
    }
    #need() {
        if (!this.#session)
            throw new Error("signalbox SSE client: not joined yet");
        return this.#session;
    }
    #url(path, extra = {}) {
        const q = new URLSearchParams({ room: this.#opts.room, ...extra });
        return `${this.#opts.baseUrl}/api/${path}?${q}`;
    }
    async #post(path, body) {
        const res = await this.#opts.fetch(this.#url(path), {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
        });
        if (!res.ok) {
            const err = (await res.json().catch(() => ({ error: res.statusText })));
            throw new Error(`signalbox SSE ${path}: ${res.status} ${err.error}`);
        }
    }
    #setState(state) {
        for (const h of this.#stateHandlers)
            h(state);
    }
    #emit(event, data) {
        if (event !== "joined" && event !== "roster" && event !== "signal")
            return;
        let parsed;
        try {
            parsed = JSON.parse(data);
        }
        catch {
            return;
        }
        if (event === "joined") {
            this.#session = parsed;
            this.#attempt = 0;
        }
        for (const h of this.#handlers[event])
            h(parsed);
    }
    async #run() {
        this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
        const abort = new AbortController();
        this.#abort = abort;
        const s = this.#session;
        const extra = s ? { session_id: s.id, token: s.token } : {};
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
            if (!res.ok || !res.body)
                throw new Error(`status ${res.status}`);
            this.#setState("open");
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            let buf = "";
            for (;;) {
                const { value, done } = await reader.read();
                if (done)
                    break;
                buf += value;
                let at;
                while ((at = buf.indexOf("\n\n")) >= 0) {
                    const block = buf.slice(0, at);
                    buf = buf.slice(at + 2);
                    let event = "message";
                    const data = [];
                    for (const line of block.split("\n")) {
                        if (line.startsWith(":"))
                            continue; // `: keepalive`
                        const colon = line.indexOf(":");
                        const field = colon < 0 ? line : line.slice(0, colon);
                        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
                        if (field === "event")
                            event = value;
                        else if (field === "data")
                            data.push(value);
                    }
                    if (data.length > 0)
                        this.#emit(event, data.join("\n"));
                }
            }
        }
        catch {
            // network error or abort: handled below
        }
        if (this.#stopped || this.#abort !== abort)
            return;
        const delayMs = backoffDelay(this.#attempt, this.#opts.backoffBaseMs, 30_000);
        this.#attempt += 1;
        this.#setState("reconnecting");
        this.#retry = setTimeout(() => {
            this.#retry = null;
            if (!this.#stopped)
                void this.#run();
        }, delayMs);
    }
}
