// One WebSocket connection to a realtime node: the handshake (open, offer
// the codec's subprotocol, send connect, wait for connected) and the
// frames after it, handed to whoever serves the connection.
import type { Codec } from "./codec.js";
import { CloseError, DialError, ServerError } from "./errors.js";
import type { Envelope } from "./gen/tandem_pb.js";

/**
 * The part of a WebSocket the SDK uses: the browser's WebSocket and the `ws`
 * package's both fit.
 */
export interface WebSocketLike {
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: any): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: `globalThis.WebSocket` in a browser, `ws`'s default export on Node. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** Who serves a connection after connected: its frames, and why it ended. */
export interface ConnHandler {
  frame(env: Envelope): void;
  end(err: Error): void;
}

/**
 * A connection. Frames that arrive before a handler is set (right behind
 * connected, often in the same read) are kept for it, and so is its end.
 */
export class Conn {
  private handler: ConnHandler | null = null;
  private queued: Envelope[] = [];
  private endErr: Error | null = null;
  private ended = false;
  /** An error frame that answered no request and was the last frame: it explains a close that follows. */
  lastServerError: ServerError | undefined;
  /** Set by the client: the session the connection carries. */
  session: unknown;
  private cleanups: (() => void)[] = [];

  constructor(
    readonly ws: WebSocketLike,
    readonly codec: Codec,
    readonly url: string,
    private readonly log: (msg: string, attrs?: Record<string, unknown>) => void,
  ) {}

  /** Opens url and answers with the connection once it is open on the codec's subprotocol. */
  static open(
    WS: WebSocketConstructor,
    url: string,
    codec: Codec,
    timeoutMs: number,
    log: (msg: string, attrs?: Record<string, unknown>) => void,
  ): Promise<Conn> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new WS(url, [codec.subprotocol]);
      } catch (e) {
        reject(new DialError(url, e));
        return;
      }
      ws.binaryType = "arraybuffer";
      const timer = setTimeout(() => {
        abort(ws);
        reject(new DialError(url, new Error("timeout")));
      }, timeoutMs);
      ws.onerror = () => {};
      ws.onclose = (ev: { code?: number }) => {
        clearTimeout(timer);
        reject(new DialError(url, new Error(`closed before open (${ev?.code ?? 0})`)));
      };
      ws.onopen = () => {
        clearTimeout(timer);
        if (ws.protocol !== codec.subprotocol) {
          abort(ws);
          reject(new DialError(url, new Error(`the server chose subprotocol "${ws.protocol}"`)));
          return;
        }
        resolve(new Conn(ws, codec, url, log));
      };
    }).then((c) => {
      const conn = c as Conn;
      conn.listen();
      return conn;
    });
  }

  private listen(): void {
    this.ws.onmessage = (ev: { data: unknown }) => {
      let env: Envelope;
      try {
        env = this.codec.decode(payloadOf(ev.data));
      } catch (e) {
        this.log("undecodable frame skipped", { err: String(e) });
        return;
      }
      if (this.handler) this.handler.frame(env);
      else this.queued.push(env);
    };
    this.ws.onclose = (ev: { code?: number; reason?: string }) => {
      this.finish(new CloseError(ev?.code ?? 1006, ev?.reason ?? "", this.lastServerError));
    };
    this.ws.onerror = () => {}; // a close event follows
  }

  /** Serves the connection with h: the frames kept so far first. */
  serve(h: ConnHandler | null): void {
    this.handler = h;
    if (!h) return;
    while (this.queued.length > 0 && this.handler === h) h.frame(this.queued.shift()!);
    if (this.endErr && this.handler === h) {
      const err = this.endErr;
      this.endErr = null;
      h.end(err);
    }
  }

  send(payload: Uint8Array | string): void {
    if (this.ended) return;
    try {
      this.ws.send(payload);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Starts a close with code (1000 ends the session on the server, others hold it). */
  close(code: number): void {
    try {
      this.ws.close(code);
    } catch {
      abort(this.ws);
    }
  }

  /** Ends the connection at once, without waiting for a close handshake. */
  fail(err: Error): void {
    if (this.ended) return;
    abort(this.ws);
    this.finish(err);
  }

  /** Runs fn when the connection ends (timers of whoever serves it). */
  onEnd(fn: () => void): void {
    if (this.ended) fn();
    else this.cleanups.push(fn);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private finish(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    for (const fn of this.cleanups.splice(0)) fn();
    if (this.handler) this.handler.end(err);
    else this.endErr = err;
  }
}

/** Ends a socket at once: `ws`'s terminate when there is one, otherwise a close. */
function abort(ws: WebSocketLike): void {
  const t = (ws as { terminate?: () => void }).terminate;
  try {
    if (typeof t === "function") t.call(ws);
    else ws.close(4000);
  } catch {
    // already closed
  }
}

function payloadOf(data: unknown): Uint8Array | string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new Error("tandem: unsupported message data");
}
