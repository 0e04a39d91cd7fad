// Player login at the web server's player API (/api/v1, docs/api.md):
// guest, email and password, refresh, realtime tokens. An Auth keeps the
// tokens of one login session fresh, as the Go SDK's Auth does.
import { Code, HttpError, LoggedOutError, ServerError, type FieldError } from "./errors.js";

/** Where and how an Auth talks to the web server. */
export interface AuthOptions {
  /** The web server, such as http://127.0.0.1:7700. */
  baseUrl: string;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** A token valid for less than this is renewed first (default 30 s; half its lifetime when shorter). */
  refreshMarginMs?: number;
  /** Sent with register and loginEmail, so the server knows the device. */
  deviceId?: string;
  /** How long one request to the web server may take, answer included (default 30 s, as the Go and C# SDKs). */
  requestTimeoutMs?: number;
}

/** The answer of every login-type call. */
interface AuthResult {
  player_id: string;
  created?: boolean;
  session_id?: string;
  access_token: string;
  access_expires_at: string;
  refresh_token: string;
  realtime_token: string;
  realtime_expires_at: string;
  realtime_url?: string;
}

interface RealtimeResult {
  realtime_token: string;
  realtime_expires_at: string;
  realtime_url?: string;
}

/** A token and when it expires by the local clock. */
interface Expiring {
  token: string;
  expires: number;
  lifetime: number;
}

const defaultMarginMs = 30_000;
const defaultRequestTimeoutMs = 30_000;

/**
 * A new random device secret for loginGuest: 128 random bits, base64url
 * without padding. Generate it once per device and keep it with the device id.
 */
export function newDeviceSecret(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Logs in as the guest of a device; the first login of a device creates the player (auth.created). */
export function loginGuest(o: AuthOptions, deviceId: string, secret: string, displayName?: string): Promise<Auth> {
  return login(o, "/api/v1/auth/guest", { device_id: deviceId, secret, display_name: displayName });
}

/** Creates a player with an email and a password and logs in. */
export function register(o: AuthOptions, email: string, password: string, displayName?: string): Promise<Auth> {
  return login(o, "/api/v1/auth/register", { email, password, display_name: displayName || undefined, device_id: o.deviceId });
}

/** Logs in with an email and a password. */
export function loginEmail(o: AuthOptions, email: string, password: string): Promise<Auth> {
  return login(o, "/api/v1/auth/login", { email, password, device_id: o.deviceId });
}

async function login(o: AuthOptions, path: string, body: Record<string, unknown>): Promise<Auth> {
  const api = new PlayerApi(o);
  const sent = Date.now();
  const { data, date } = await api.call<AuthResult>("POST", path, "", body);
  if (!complete(data)) throw new Error(`tandem: POST ${path}: the answer lacks the player id or a token`);
  return new Auth(api, o.refreshMarginMs ?? defaultMarginMs, data, sent, date);
}

function complete(r: AuthResult): boolean {
  return !!(r.player_id && r.access_token && r.refresh_token && r.realtime_token && r.access_expires_at && r.realtime_expires_at);
}

/**
 * A logged-in player: the tokens of one login session, kept fresh. A
 * realtime token is renewed through the realtime-token route while the
 * access token is fresh; only a stale access token makes it use the
 * (single-use, rotated) refresh token. Concurrent callers share one request.
 */
export class Auth {
  readonly playerId: string;
  readonly created: boolean;
  readonly sessionId: string;
  // #private, not TypeScript's private: util.inspect (console.log on Node)
  // shows TypeScript's private fields, and these hold the tokens.
  #access: Expiring;
  #refreshToken: string;
  #realtime: Expiring;
  private url: string;
  private inflight: { done: Promise<void>; refreshed: boolean } | null = null;
  private ended: Error | null = null;

  /** @internal */
  constructor(
    private readonly api: PlayerApi,
    private readonly marginMs: number,
    r: AuthResult,
    sent: number,
    date: number | undefined,
  ) {
    this.playerId = r.player_id;
    this.created = !!r.created;
    this.sessionId = r.session_id ?? "";
    const exp = localExpiry(sent, date);
    this.#access = exp(r.access_token, r.access_expires_at);
    this.#refreshToken = r.refresh_token;
    this.#realtime = exp(r.realtime_token, r.realtime_expires_at);
    this.url = r.realtime_url ?? "";
  }

  /** The realtime endpoint the web server named last, such as ws://127.0.0.1:7701/ws. */
  get realtimeUrl(): string {
    return this.url;
  }

  /** The bearer token for the player API, refreshed first when it is about to expire. */
  accessToken(): Promise<string> {
    return this.token("access");
  }

  /** A token for connecting to a realtime node (give `() => auth.realtimeToken()` as ClientOptions.token). */
  realtimeToken(): Promise<string> {
    return this.token("realtime");
  }

  /**
   * Asks the web server for a new realtime token now and returns the
   * realtime URL of its answer: the node holding the player's session while
   * it is registered, otherwise a live one (give it as ClientOptions.locate).
   */
  async locate(): Promise<string> {
    if (this.ended) throw this.ended;
    const call = this.inflight ?? this.startCall(!this.fresh(this.#access), this.fresh(this.#access) ? () => this.renewRealtime() : () => this.doRefresh());
    await call.done;
    if (this.ended) throw this.ended;
    if (!this.url) throw new Error("tandem: the web server named no realtime URL");
    return this.url;
  }

  /** Gets new tokens now with the refresh token (joining a refresh in flight). */
  async refresh(): Promise<void> {
    for (;;) {
      if (this.ended) throw this.ended;
      const call = this.inflight ?? this.startCall(true, () => this.doRefresh());
      await call.done;
      if (call.refreshed) return;
    }
  }

  /**
   * Ends the login session on the server and forgets the tokens; later
   * token calls fail with LoggedOutError. Close the Client first.
   */
  async logout(): Promise<void> {
    try {
      const access = await this.accessToken();
      await this.api.call("POST", "/api/v1/auth/logout", access);
    } catch (e) {
      const gone = e instanceof LoggedOutError || (e instanceof ServerError && e.code === Code.unauthenticated);
      if (!gone) throw e;
    }
    this.end(new LoggedOutError());
  }

  private fresh(e: Expiring): boolean {
    const margin = Math.min(this.marginMs, e.lifetime / 2);
    return e.token !== "" && Date.now() < e.expires - margin;
  }

  private async token(kind: "access" | "realtime"): Promise<string> {
    for (;;) {
      if (this.ended) throw this.ended;
      let call = this.inflight;
      if (!call) {
        const e = kind === "access" ? this.#access : this.#realtime;
        if (this.fresh(e)) return e.token;
        call =
          kind === "realtime" && this.fresh(this.#access)
            ? this.startCall(false, () => this.renewRealtime())
            : this.startCall(true, () => this.doRefresh());
      }
      await call.done;
      if (this.ended) throw this.ended;
      // What the call just got is fresh for as long as the server allows.
      if (kind === "realtime") return this.#realtime.token;
      if (call.refreshed) return this.#access.token;
    }
  }

  /**
   * Runs work as the one request in flight. It runs to its end even when
   * nobody waits any more: a refresh uses up the refresh token on the
   * server as soon as it answers.
   */
  private startCall(refresh: boolean, work: () => Promise<void>): { done: Promise<void>; refreshed: boolean } {
    const call = { done: Promise.resolve(), refreshed: refresh };
    call.done = (async () => {
      try {
        await work();
      } finally {
        if (this.inflight === call) this.inflight = null;
      }
    })();
    this.inflight = call;
    return call;
  }

  private async doRefresh(): Promise<void> {
    if (this.ended) throw this.ended;
    const sent = Date.now();
    let res: { data: AuthResult; date: number | undefined };
    try {
      res = await this.api.call<AuthResult>("POST", "/api/v1/auth/refresh", "", { refresh_token: this.#refreshToken });
      if (!complete(res.data)) throw new Error("tandem: POST /api/v1/auth/refresh: the answer lacks the player id or a token");
    } catch (e) {
      if (this.ended) throw this.ended;
      if (e instanceof ServerError && (e.code === Code.unauthenticated || e.code === Code.tokenExpired || e.code === Code.banned)) {
        const err = new LoggedOutError(e);
        this.end(err);
        throw err;
      }
      throw e;
    }
    if (this.ended) throw this.ended;
    const exp = localExpiry(sent, res.date);
    this.#access = exp(res.data.access_token, res.data.access_expires_at);
    this.#refreshToken = res.data.refresh_token;
    this.#realtime = exp(res.data.realtime_token, res.data.realtime_expires_at);
    if (res.data.realtime_url) this.url = res.data.realtime_url;
  }

  /**
   * Gets a realtime token through the realtime-token route. A ban is final;
   * a temporary refusal is returned as is; any other refusal falls back to
   * one refresh, which gets new tokens or says the session is over.
   */
  private async renewRealtime(): Promise<void> {
    if (this.ended) throw this.ended;
    const path = `/api/v1/players/${encodeURIComponent(this.playerId)}/realtime-token`;
    const sent = Date.now();
    let res: { data: RealtimeResult; date: number | undefined };
    try {
      res = await this.api.call<RealtimeResult>("POST", path, this.#access.token);
      if (!res.data.realtime_token || !res.data.realtime_expires_at) throw new Error(`tandem: POST ${path}: the answer lacks the token`);
    } catch (e) {
      if (this.ended) throw this.ended;
      if (e instanceof ServerError && e.code === Code.banned) {
        const err = new LoggedOutError(e);
        this.end(err);
        throw err;
      }
      if (e instanceof ServerError && !e.temporary) {
        if (this.inflight) this.inflight.refreshed = true;
        return this.doRefresh();
      }
      throw e;
    }
    if (this.ended) throw this.ended;
    this.#realtime = localExpiry(sent, res.date)(res.data.realtime_token, res.data.realtime_expires_at);
    if (res.data.realtime_url) this.url = res.data.realtime_url;
  }

  private end(err: Error): void {
    this.ended = err;
    this.#access = this.#realtime = { token: "", expires: 0, lifetime: 0 };
    this.#refreshToken = "";
  }

  /** Describes the Auth without its tokens, so that logging it leaks none. */
  toString(): string {
    return `Auth{player ${this.playerId}}`;
  }

  toJSON(): unknown {
    return { playerId: this.playerId };
  }
}

/**
 * Moves the server's expiry times to the local clock, which may be off by
 * minutes: the Date header says when the server answered (to the second,
 * rounded down), so expires_at − (Date + 1 s), counted from when the
 * request was sent, errs on the early side. Without a Date header (a
 * browser does not expose it across origins) the local clock is trusted.
 */
function localExpiry(sent: number, date: number | undefined): (token: string, expiresAt: string) => Expiring {
  return (token, expiresAt) => {
    const at = Date.parse(expiresAt);
    const expires = date !== undefined ? sent + (at - (date + 1000)) : at;
    return { token, expires, lifetime: Math.max(expires - sent, 0) };
  };
}

/** The HTTP calls of the player API. */
class PlayerApi {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  constructor(o: AuthOptions) {
    const u = new URL(o.baseUrl);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`tandem: baseUrl ${o.baseUrl} is not an http(s) URL`);
    this.base = o.baseUrl.replace(/\/+$/, "");
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = o.requestTimeoutMs ?? defaultRequestTimeoutMs;
  }

  /**
   * Sends body (unless undefined) as JSON with bearer (unless empty) and
   * decodes a 2xx answer. Any other status is a ServerError (problem+json)
   * or an HttpError. Errors never hold a token: none is in a URL. A web
   * server that does not answer within the timeout fails the call (a
   * TimeoutError): the reconnect loop waits for the token it asks for.
   */
  async call<T>(method: string, path: string, bearer: string, body?: unknown): Promise<{ data: T; date: number | undefined }> {
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers["Authorization"] = `Bearer ${bearer}`;
    const resp = await this.fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "error",
      // It bounds reading the body too.
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await resp.text();
    if (!resp.ok) throw answerError(resp, text);
    const d = resp.headers.get("Date");
    const date = d ? Date.parse(d) : NaN;
    return { data: (text ? JSON.parse(text) : {}) as T, date: Number.isNaN(date) ? undefined : date };
  }
}

function answerError(resp: Response, body: string): Error {
  const retry = retryAfterMs(resp.headers.get("Retry-After"));
  const type = (resp.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
  let doc: { code?: number; detail?: string; temporary?: boolean; errors?: FieldError[]; retry_after?: number; until?: string } = {};
  try {
    doc = JSON.parse(body);
  } catch {
    // not JSON
  }
  if (type !== "application/problem+json" || !doc.code) return new HttpError(resp.status, retry);
  const until = doc.until ? new Date(doc.until) : undefined;
  return new ServerError(doc.code, doc.detail ?? "", !!doc.temporary, doc.errors ?? [], doc.retry_after ? doc.retry_after * 1000 : retry, until);
}

function retryAfterMs(h: string | null): number {
  if (!h) return 0;
  const secs = Number(h);
  if (Number.isInteger(secs) && secs > 0) return secs * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? 0 : Math.max(at - Date.now(), 0);
}
