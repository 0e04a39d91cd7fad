// The client: one player's connection to a realtime node, reconnecting and
// resuming as docs/protocol.md says (the Go SDK in sdk/go is the reference).
import { codecFor, type Codec, type CodecName } from "./codec.js";
import { Conn, type WebSocketConstructor } from "./conn.js";
import {
  ClientClosedError,
  CloseCode,
  CloseError,
  Code,
  FrameTooLargeError,
  HeartbeatTimeoutError,
  RoomLeftError,
  ServerError,
  SessionLostError,
  classOf,
  isMoved,
  nodeGone,
  type CloseClass,
} from "./errors.js";
import * as frames from "./frames.js";
import {
  Delivery,
  JoinMode,
  LeaveReason,
  type Envelope,
  type RoomEventKind,
  type RoomInfo,
  type SeatReservation,
  type TicketStatus as TicketStatusFrame,
} from "./gen/tandem_pb.js";
import {
  TicketEndedError,
  ticketCreateOf,
  ticketEnded,
  ticketStatusOf,
  type TicketRequest,
  type TicketStatus,
} from "./matchmaking.js";
import { ResendBuffer, Tracker, backoff, type OutFrame } from "./streams.js";

/** Options of Client.connect. url, token and WebSocket are required. */
export interface ClientOptions {
  /** The realtime endpoint, such as ws://127.0.0.1:7701/ws (Auth.realtimeUrl). */
  url: string;
  /** Returns a fresh realtime token; called at every connect and reconnect (Auth.realtimeToken). */
  token: () => Promise<string>;
  /** The WebSocket implementation: `globalThis.WebSocket` in a browser, `ws`'s default export on Node. */
  WebSocket: WebSocketConstructor;
  /** The codec: "tandem.v1.json" (default) or "tandem.v1.proto". */
  codec?: CodecName;
  /**
   * Returns the realtime URL to use now; asked before a reconnect when the
   * node seems gone (a failed dial, node_draining, node_gone). While the
   * session lives on a node it must name that node (Auth.locate does).
   */
  locate?: () => Promise<string>;
  /** Bounds of the delay before each reconnect attempt (full jitter; defaults 100 ms and 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A connection silent this long is treated as lost (default 2.5 × the server's heartbeat_ms). */
  heartbeatTimeoutMs?: number;
  /** How often ack_frame reports positions while frames arrive (default 100 ms). */
  ackIntervalMs?: number;
  /** Sent in connect.sdk (default "tandem-ts"). */
  sdk?: string;
  /** Receives debug logs; never tokens. */
  log?: (msg: string, attrs?: Record<string, unknown>) => void;
}

/** What Client.join asks for. */
export interface JoinOptions {
  /** JOIN (roomId), CREATE (roomType) or JOIN_OR_CREATE (roomType); unset: JOIN when roomId is set. */
  mode?: JoinMode;
  roomId?: string;
  roomType?: string;
  /** Creation options, given to the room's Init. */
  options?: Uint8Array;
  /** Given to the room's JoinAttempt. */
  metadata?: Uint8Array;
}

/** How a room message is delivered by a relaying room (default: every member). */
export interface SendOptions {
  /** Deliver to the listed players only (DELIVERY_LIST). */
  to?: string[];
  /** Deliver to every member but the sender (DELIVERY_OTHERS). */
  others?: boolean;
  /** Give it to the room's handler only (DELIVERY_ROOM). */
  handlerOnly?: boolean;
}

/** The events of a client, by name. Room events come in stream order, exactly once. */
export interface ClientEvents {
  /** The session joined a room; its stream's events follow. */
  joined: { room: Room; players: string[] };
  message: { room: Room; from: string; topic: string; data: Uint8Array; seq: bigint };
  /** The full state of a room for this player; room.state holds it from now on. */
  snapshot: { room: Room; tick: bigint; state: Uint8Array; seq: bigint };
  delta: { room: Room; tick: bigint; patch: Uint8Array; seq: bigint };
  /** A membership change of another player. */
  roomEvent: { room: Room; playerId: string; kind: RoomEventKind; reason: LeaveReason; seq: bigint };
  /** Frames were lost beyond the server's buffer: drop the room's state and take `state`. */
  gap: { room: Room; fromSeq: bigint; seq: bigint; epoch: number; state: Uint8Array };
  /** The session is no longer in the room (the end of its stream). */
  left: { room: Room; reason: LeaveReason; missed: boolean; state: Uint8Array };
  notice: { kind: string; text: string };
  /** An error frame that answers no waiting request (a refused room message: room and topic). */
  error: { room?: string; topic?: string; error: ServerError };
  /** The player's matchmaking ticket changed (the server's push). */
  ticket: { status: TicketStatus };
  /** The connection was lost; the SDK reconnects. resumed, sessionLost or closed follows. */
  disconnected: { error: Error };
  /** The held session was resumed; missed frames follow, in order, exactly once (or a gap per room). */
  resumed: Record<string, never>;
  /** The session could not be resumed; the SDK connected a new one. `rooms` were the old session's. */
  sessionLost: { rooms: string[]; error: Error };
  /** The last event: a final close (not sent for close() or the silent `moved`). */
  closed: { error: Error };
}

type Listener<K extends keyof ClientEvents> = (ev: ClientEvents[K]) => void;

const defaultHeartbeatMs = 10_000;
const closeWaitMs = 1_000;
const maxMoves = 3;
const ticketResyncMs = 30_000;

/** The client's state of one server session. */
class Session {
  id = "";
  playerId = "";
  node = "";
  resumeToken = "";
  seatHoldMs = 0;
  maxFrame = 0;
  seq = 0n;
  resend = new ResendBuffer();
  pending = new Map<bigint, Pending>();
  streams = new Tracker();
  rooms = new Map<string, Room>();
}

interface Reply {
  env?: Envelope;
  room?: Room;
  err?: Error;
  /** The session the request was sent on. */
  session?: Session;
}

/** A request waiting for its reply by cid in the session it was sent on. */
interface Pending {
  session: Session;
  settle(r: Reply): void;
}

/** A Matchmake waiting for its ticket's pushed statuses. */
interface TicketWait {
  queue: string;
  id: string;
  statuses: TicketStatusFrame[];
  /** The session the ticket's changes go to was lost or moved: ask for the ticket. */
  resync: boolean;
  onProgress?: (s: TicketStatus) => void;
  wake?: () => void;
}

/** A room the session joined. Its stream's events arrive as client events. */
export class Room {
  /** The room's last full state for this player: from joined, the last snapshot or gap. */
  state: Uint8Array;
  /** Why the room is no longer joined, once it is not. */
  error: Error | undefined;
  private leftWaiters: (() => void)[] = [];

  /** @internal */
  constructor(
    private readonly client: Client,
    /** @internal */ readonly session: unknown,
    readonly id: string,
    readonly type: string,
    state: Uint8Array,
  ) {
    this.state = state;
  }

  /**
   * Sends a reliable room_message (to every member by default). It returns
   * once the frame is queued; a refusal arrives later as an error event.
   * Throws RoomLeftError, SessionLostError, ClientClosedError or FrameTooLargeError.
   */
  send(topic: string, data: Uint8Array = new Uint8Array(), opts: SendOptions = {}): void {
    let delivery = Delivery.ALL;
    if (opts.to) delivery = Delivery.LIST;
    else if (opts.others) delivery = Delivery.OTHERS;
    else if (opts.handlerOnly) delivery = Delivery.ROOM;
    this.client._send(frames.roomMessageFrame(this.id, topic, data, delivery, opts.to ?? []), undefined, this);
  }

  /** Leaves the room and waits until its stream ends (the left event). Leaving a room left is a no-op. */
  async leave(): Promise<void> {
    if (this.error) return;
    const gone = new Promise<void>((resolve) => this.leftWaiters.push(resolve));
    let settle!: (r: Reply) => void;
    const answer = new Promise<Reply>((resolve) => (settle = resolve));
    const p: Pending = { session: this.session as Session, settle };
    let cid: bigint;
    try {
      cid = this.client._send(frames.leaveFrame(this.id), p, this);
    } catch (e) {
      if (e instanceof RoomLeftError) return;
      throw e;
    }
    // The leave answering a leave carries no cid: the room's end answers it.
    const r = await Promise.race([gone.then(() => null), answer]);
    p.session.pending.delete(cid);
    if (r?.err) throw r.err;
    const err = this.error as Error | undefined;
    if (r === null && err && !(err instanceof RoomLeftError)) throw err;
  }

  /** @internal Marks the room as no longer joined. */
  _gone(err: Error): void {
    if (this.error) return;
    this.error = err;
    for (const w of this.leftWaiters.splice(0)) w();
  }
}

/**
 * One player's connection to a realtime node. It resumes a held session
 * after a cut, starts a new one when the session is gone, and stops on a
 * final close. Create it with Client.connect.
 */
export class Client {
  private readonly codec: Codec;
  private readonly listeners = new Map<keyof ClientEvents, Set<(ev: never) => void>>();
  private readonly start = performance.now();
  private conn: Conn | null = null;
  private sess = new Session();
  private url: string;
  private nextCid = 0n;
  private stopErr: Error | null = null;
  private heartbeatMs = defaultHeartbeatMs;
  private rttMs = 0;
  private serverRttMs = 0;
  /** A move (a seat on another node) is under way; its end wakes moveDone. */
  private moving = false;
  private moveDone: (() => void)[] = [];
  /** The old node closed with `moved` while a move was under way: the move decides. */
  private movedAway: Error | null = null;
  private reconnecting = false;
  private wakeLoop: (() => void) | null = null;
  private readonly tickets = new Map<string, TicketWait>();
  private readonly log: (msg: string, attrs?: Record<string, unknown>) => void;
  private readonly opts: Required<Omit<ClientOptions, "locate" | "heartbeatTimeoutMs" | "log">> &
    Pick<ClientOptions, "locate" | "heartbeatTimeoutMs">;

  private constructor(opts: ClientOptions) {
    this.opts = {
      url: opts.url,
      token: opts.token,
      WebSocket: opts.WebSocket,
      codec: opts.codec ?? "tandem.v1.json",
      locate: opts.locate,
      minBackoffMs: opts.minBackoffMs ?? 100,
      maxBackoffMs: Math.max(opts.maxBackoffMs ?? 5_000, opts.minBackoffMs ?? 100),
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      ackIntervalMs: opts.ackIntervalMs ?? 100,
      sdk: opts.sdk ?? "tandem-ts",
    };
    this.codec = codecFor(this.opts.codec);
    this.url = opts.url;
    this.log = opts.log ?? (() => {});
  }

  /**
   * Connects, sends connect and waits for connected. A refused connect
   * throws a CloseError (its `server` is the ServerError sent with it, such
   * as unauthenticated for a bad token); a failed dial throws a DialError.
   */
  static async connect(opts: ClientOptions): Promise<Client> {
    if (!opts.url || !opts.token || !opts.WebSocket) throw new Error("tandem: url, token and WebSocket are required");
    const c = new Client(opts);
    const { conn, env } = await c.handshake(c.url, false, "");
    c.attach(conn, env);
    return c;
  }

  /** The id of the current session. */
  get sessionId(): string {
    return this.sess.id;
  }

  /** The player id of the session (the token's subject). */
  get playerId(): string {
    return this.sess.playerId;
  }

  /** The id of the node holding the session. */
  get node(): string {
    return this.sess.node;
  }

  /** The rooms the current session is in. */
  get rooms(): Room[] {
    return [...this.sess.rooms.values()];
  }

  /** The last round trip measured with the client's pings (or the server's measurement), in ms; 0 before any. */
  get rttMillis(): number {
    return this.rttMs || this.serverRttMs;
  }

  /** Listens to an event; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn as (ev: never) => void);
    return () => set.delete(fn as (ev: never) => void);
  }

  private emit<K extends keyof ClientEvents>(type: K, ev: ClientEvents[K]): void {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        (fn as Listener<K>)(ev);
      } catch (e) {
        this.log("listener threw", { event: type, err: String(e) });
      }
    }
  }

  /**
   * Joins a room and waits for the answer: the room, or a ServerError
   * (not_found, room_full, join_rejected, quota_exceeded…). A room on
   * another node is answered with a seat reservation, which join follows:
   * it connects there with the seat token (a new session) and joins.
   */
  async join(o: JoinOptions): Promise<Room> {
    let env = frames.joinFrame(o);
    for (let moves = 0; ; moves++) {
      let rep: Reply;
      try {
        rep = await this._request(env);
      } catch (e) {
        if (e instanceof SessionLostError && isMoved(e.cause) && moves < maxMoves) continue;
        throw e;
      }
      if (rep.room) return rep.room;
      if (rep.env?.body.case !== "seatReservation") throw unexpectedReply(rep.env);
      if (moves === maxMoves) throw new Error("tandem: too many seat reservations for one join");
      const sr = rep.env.body.value;
      if (await this.follow(sr, rep.session ?? null)) {
        env = frames.joinFrame({ mode: JoinMode.JOIN, roomId: sr.roomId, metadata: o.metadata });
      }
    }
  }

  /** Calls a server function and waits for its reply data, or a ServerError (unknown_rpc, or the function's). */
  async rpc(method: string, data: Uint8Array = new Uint8Array()): Promise<Uint8Array> {
    const rep = await this._request(frames.rpcFrame(method, data));
    if (rep.env?.body.case !== "rpcReply") throw unexpectedReply(rep.env);
    return rep.env.body.value.data;
  }

  /** The open rooms of a type ("" = every type). */
  async listRooms(roomType = ""): Promise<RoomInfo[]> {
    const rep = await this._request(frames.listRoomsFrame(roomType));
    if (rep.env?.body.case !== "roomList") throw unexpectedReply(rep.env);
    return rep.env.body.value.rooms;
  }

  /**
   * Puts the player in r.queue and returns the ticket's status (searching),
   * or a ServerError: validation_failed, not_found, conflict, banned,
   * unavailable. The ticket's changes arrive as `ticket` events.
   */
  async createTicket(r: TicketRequest): Promise<TicketStatus> {
    return ticketStatusOf(await this.ticketRequest(frames.ticketCreateFrame(ticketCreateOf(r))));
  }

  /** Takes the player's ticket out of queue (conflict while it is being matched; not_found without one). */
  async cancelTicket(queue: string): Promise<TicketStatus> {
    return ticketStatusOf(await this.ticketRequest(frames.ticketCancelFrame(queue)));
  }

  /** The status of the player's ticket in queue (not_found when there is none). */
  async ticket(queue: string): Promise<TicketStatus> {
    return ticketStatusOf(await this.ticketRequest(frames.ticketStatusFrame(queue)));
  }

  private async ticketRequest(env: Envelope): Promise<TicketStatusFrame> {
    const rep = await this._request(env);
    if (rep.env?.body.case !== "ticketStatus") throw unexpectedReply(rep.env);
    return rep.env.body.value;
  }

  /**
   * Creates the ticket, reports its statuses to onProgress, and on a match
   * takes the seat: on the session's own node it joins with the seat token;
   * on another node it moves the session there and joins. Returns the
   * joined room. An ended ticket throws TicketEndedError; an aborted signal
   * cancels the ticket and throws the signal's reason. A seat that cannot
   * be taken for a transient reason is tried again until it expires; one
   * that is gone is left to the server (back in the queue, or ended).
   */
  async matchmake(
    r: TicketRequest,
    o: { signal?: AbortSignal; onProgress?: (s: TicketStatus) => void; metadata?: Uint8Array } = {},
  ): Promise<Room> {
    if (this.tickets.has(r.queue)) throw new Error(`tandem: a matchmake in queue "${r.queue}" is already waiting`);
    this.checkStopped();
    const w: TicketWait = { queue: r.queue, id: "", statuses: [], resync: false, onProgress: o.onProgress };
    this.tickets.set(r.queue, w);
    const aborted = () => o.signal?.aborted ?? false;
    let retryAt = 0;
    let retryStatus: TicketStatusFrame | null = null;
    let attempts = 0;
    let retrySeat = "";
    try {
      let ts: TicketStatusFrame | null;
      try {
        ts = await this.ticketRequest(frames.ticketCreateFrame(ticketCreateOf(r)));
      } catch (e) {
        if (!(e instanceof SessionLostError)) throw e;
        ts = null; // the server may have made it before the session ended: ask
        w.resync = true;
      }
      if (ts) {
        w.id = ts.ticketId;
        this.progress(w, ts);
      }
      for (;;) {
        if (aborted()) throw o.signal!.reason;
        if (ts) {
          const s = ticketStatusOf(ts);
          if (ticketEnded(s)) throw new TicketEndedError(s);
          if (s.state === "matched" && s.seat) {
            try {
              return await this.takeSeat(s.seat, o.metadata);
            } catch (e) {
              this.checkStopped();
              this.log("the seat could not be taken", { queue: r.queue, err: String(e) });
              if (e instanceof SessionLostError) w.resync = true;
              else if (!seatGone(e)) {
                if (s.seat.seatToken !== retrySeat) [retrySeat, attempts] = [s.seat.seatToken, 0];
                const d = backoff(attempts++, this.opts.minBackoffMs, this.opts.maxBackoffMs);
                if (Date.now() + d < Number(s.seat.expiresAtMs)) [retryAt, retryStatus] = [Date.now() + d, ts];
              }
            }
          }
        }
        // A newer status replaces a seat waiting to be tried again.
        ts = (await this.nextTicketStatus(w, r.queue, o.signal, retryAt)) ?? retryStatus;
        [retryAt, retryStatus] = [0, null];
      }
    } catch (e) {
      if (aborted() && !this.stopErr) this.cancelInBackground(r.queue);
      throw e;
    } finally {
      this.tickets.delete(r.queue);
    }
  }

  /**
   * The next status to act on: a pushed one, the answer when the client
   * asks for the ticket (after a lost session, and every 30 s), or null
   * when the seat retry time came.
   */
  private async nextTicketStatus(w: TicketWait, queue: string, signal: AbortSignal | undefined, retryAt: number): Promise<TicketStatusFrame | null> {
    const deadline = Date.now() + ticketResyncMs;
    for (;;) {
      this.checkStopped();
      if (signal?.aborted) throw signal.reason;
      if (w.resync) {
        w.resync = false;
        try {
          const ts = await this.ticketRequest(frames.ticketStatusFrame(queue));
          if (w.id && ts.ticketId && ts.ticketId !== w.id) throw new Error(`tandem: ticket ${w.id} was replaced by ${ts.ticketId}`);
          if (!w.id) w.id = ts.ticketId;
          this.progress(w, ts);
          return ts;
        } catch (e) {
          if (e instanceof SessionLostError) w.resync = true;
          else if (e instanceof ServerError && e.code === Code.notFound) throw e;
          else if (!(e instanceof ServerError)) throw e;
        }
      }
      while (w.statuses.length > 0) {
        const ts = w.statuses.shift()!;
        // A status of an earlier ticket, pushed before the answer named this one.
        if (!concerns(w, ts)) continue;
        this.progress(w, ts);
        // A match followed by a newer status already: its seat is gone.
        if (ts.state === "matched" && w.statuses.length > 0) continue;
        return ts;
      }
      const now = Date.now();
      if (retryAt && now >= retryAt) return null;
      if (now >= deadline) {
        w.resync = true;
        continue;
      }
      const until = retryAt ? Math.min(retryAt, deadline) : deadline;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal?.removeEventListener("abort", done);
          w.wake = undefined;
          resolve();
        };
        const t = setTimeout(done, until - now);
        signal?.addEventListener("abort", done);
        w.wake = done;
      });
    }
  }

  private progress(w: TicketWait, ts: TicketStatusFrame): void {
    if (!w.onProgress || this.tickets.get(w.queue) !== w) return;
    try {
      w.onProgress(ticketStatusOf(ts));
    } catch (e) {
      this.log("onProgress threw", { err: String(e) });
    }
  }

  /** Cancels a ticket after matchmake was aborted, asking again a few times while it is being claimed. */
  private cancelInBackground(queue: string): void {
    void (async () => {
      for (let attempt = 0; attempt < 5 && !this.stopErr; attempt++) {
        try {
          await this.cancelTicket(queue);
          return;
        } catch (e) {
          const again = (e instanceof ServerError && e.code === Code.conflict) || e instanceof SessionLostError;
          if (!again) return;
          await sleep(backoff(attempt, this.opts.minBackoffMs, this.opts.maxBackoffMs));
        }
      }
    })();
  }

  /**
   * Joins the room of a seat reservation: with its seat token on the
   * session's own node, otherwise by moving the session to the room's node
   * and joining there.
   */
  private async takeSeat(sr: SeatReservation, metadata?: Uint8Array): Promise<Room> {
    for (let moves = 0; moves <= maxMoves; moves++) {
      const here = sr.node !== "" && sr.node === this.sess.node;
      if (!here) {
        if (!(await this.follow(sr, this.sess))) continue;
        return this.join({ mode: JoinMode.JOIN, roomId: sr.roomId, metadata });
      }
      let rep: Reply;
      try {
        rep = await this._request(frames.seatJoinFrame(sr, metadata));
      } catch (e) {
        if (e instanceof SessionLostError && isMoved(e.cause)) continue;
        throw e;
      }
      if (rep.room) return rep.room;
      if (rep.env?.body.case !== "seatReservation") throw unexpectedReply(rep.env);
      sr = rep.env.body.value;
    }
    throw new Error("tandem: too many seat reservations for one join");
  }

  /**
   * Closes the connection normally (1000: the session ends), stops
   * reconnecting and fails pending requests with ClientClosedError. No
   * `closed` event is sent.
   */
  async close(): Promise<void> {
    if (this.stopErr) return;
    this.stop(new ClientClosedError());
    this.wakeLoop?.();
    const conn = this.conn;
    if (!conn) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        conn.fail(new ClientClosedError());
        resolve();
      }, closeWaitMs);
      conn.serve({
        frame: () => {},
        end: () => {
          clearTimeout(t);
          resolve();
        },
      });
      conn.close(1000);
    });
  }

  // ---- sending ----

  /** @internal Sends a reliable frame and waits for its reply by cid. */
  _request(env: Envelope, room?: Room): Promise<Reply> {
    let settle!: (r: Reply) => void;
    const done = new Promise<Reply>((resolve) => (settle = resolve));
    const p: Pending = { session: this.sess, settle };
    this._send(env, p, room);
    return done.then((r) => {
      if (r.err) throw r.err;
      return { ...r, session: p.session };
    });
  }

  /**
   * @internal Queues a reliable frame: it gets the next cid and client seq,
   * goes to the resend buffer, and is written at once when connected
   * (otherwise after the next connected).
   */
  _send(env: Envelope, p: Pending | undefined, room: Room | undefined): bigint {
    this.checkStopped();
    if (room?.error) throw room.error;
    const s = this.sess;
    if (room && room.session !== s) throw new RoomLeftError();
    env.cid = this.nextCid + 1n;
    env.seq = s.seq + 1n;
    const payload = this.codec.encode(env);
    if (s.maxFrame > 0 && payloadSize(payload) > s.maxFrame) throw new FrameTooLargeError();
    this.nextCid = env.cid;
    s.seq = env.seq;
    const f: OutFrame = { seq: env.seq, cid: env.cid, payload };
    if (env.body.case === "roomMessage") [f.room, f.topic] = [env.body.value.roomId, env.body.value.topic];
    s.resend.add(f);
    if (p) {
      p.session = s;
      s.pending.set(env.cid, p);
    }
    this.conn?.send(payload);
    return env.cid;
  }

  private sendUnreliable(conn: Conn, env: Envelope): void {
    conn.send(this.codec.encode(env));
  }

  private checkStopped(): void {
    if (this.stopErr) throw this.stopErr;
  }

  // ---- connecting ----

  private hbTimeoutMs(): number {
    return this.opts.heartbeatTimeoutMs ?? (this.heartbeatMs * 5) / 2;
  }

  /**
   * Opens a connection to url and sends connect: with the resume token and
   * positions when resume is set, as a new session otherwise (with
   * seatToken when following a seat reservation). Answers with the
   * connection and its connected envelope.
   */
  private async handshake(url: string, resume: boolean, seatToken: string): Promise<{ conn: Conn; env: Envelope }> {
    const token = await this.opts.token();
    const hello = resume
      ? frames.connectFrame(token, this.sess.resumeToken, this.sess.streams.positions(), "", this.opts.sdk)
      : frames.connectFrame(token, "", [], seatToken, this.opts.sdk);
    const timeout = this.hbTimeoutMs();
    const conn = await Conn.open(this.opts.WebSocket, url, this.codec, timeout, this.log);
    conn.send(this.codec.encode(hello));
    return new Promise((resolve, reject) => {
      let serverErr: ServerError | undefined;
      const t = setTimeout(() => conn.fail(new Error("tandem: no connected within the timeout")), timeout);
      conn.serve({
        frame: (env) => {
          if (env.body.case === "connected") {
            clearTimeout(t);
            conn.serve(null); // later frames wait for attach
            resolve({ conn, env });
          } else {
            serverErr = env.body.case === "error" ? ServerError.fromFrame(env.body.value) : undefined;
          }
        },
        end: (err) => {
          clearTimeout(t);
          if (err instanceof CloseError && !err.server && serverErr) err = new CloseError(err.code, err.reason, serverErr);
          reject(err);
        },
      });
    });
  }

  /**
   * Makes conn the client's connection after connected: records the
   * session, drops what the server acknowledged, sends ack_frame with the
   * positions (which confirms the new resume token) and resends the
   * unacknowledged reliable frames in order. beforeFrames runs before the
   * frames that came behind connected are dispatched: a reconnect's
   * resumed or sessionLost comes before them.
   */
  private attach(conn: Conn, env: Envelope, beforeFrames?: () => void): void {
    if (env.body.case !== "connected") throw unexpectedReply(env);
    const cd = env.body.value;
    if (this.stopErr) {
      conn.close(1000);
      throw this.stopErr;
    }
    const s = this.sess;
    s.id = cd.sessionId;
    s.playerId = cd.playerId;
    s.resumeToken = cd.resumeToken;
    s.node = cd.node;
    if (cd.heartbeatMs > 0) this.heartbeatMs = cd.heartbeatMs;
    s.seatHoldMs = cd.seatHoldMs;
    s.maxFrame = cd.maxFrameBytes;
    s.resend.trim(env.ack);
    // Rooms the session left while it was held are gone (§9.3).
    if (cd.resumed) {
      const kept = new Set(cd.rooms);
      for (const [id, r] of s.rooms) {
        if (!kept.has(id)) {
          s.rooms.delete(id);
          s.streams.leave(id);
          r._gone(new RoomLeftError());
        }
      }
    }
    conn.session = s;
    this.conn = conn;
    s.streams.dirty = false;
    this.sendUnreliable(conn, frames.ackFrame(s.streams.positions()));
    for (const f of s.resend.frames) conn.send(f.payload);
    beforeFrames?.();
    if (this.stopErr || this.conn !== conn) return; // a listener closed the client
    this.serveCurrent(conn);
  }

  /** Serves the client's connection: dispatches its frames, pings, acks, and watches for silence. */
  private serveCurrent(conn: Conn): void {
    let silence = setTimeout(() => conn.fail(new HeartbeatTimeoutError()), this.hbTimeoutMs());
    const ack = setInterval(() => this.sendAck(conn), this.opts.ackIntervalMs);
    const ping = setInterval(() => this.sendUnreliable(conn, frames.pingFrame(this.nowUs())), this.heartbeatMs);
    conn.onEnd(() => {
      clearTimeout(silence);
      clearInterval(ack);
      clearInterval(ping);
    });
    conn.serve({
      frame: (env) => {
        clearTimeout(silence);
        silence = setTimeout(() => conn.fail(new HeartbeatTimeoutError()), this.hbTimeoutMs());
        this.dispatch(conn, env);
      },
      end: (err) => this.connLost(conn, err),
    });
  }

  private sendAck(conn: Conn): void {
    const s = conn.session as Session;
    if (!s.streams.dirty || this.conn !== conn) return;
    s.streams.dirty = false;
    this.sendUnreliable(conn, frames.ackFrame(s.streams.positions()));
  }

  private nowUs(): bigint {
    return BigInt(Math.floor((performance.now() - this.start) * 1000)) + 1n;
  }

  /** The client's connection ended: reconnect (resume or a new session), or stop. */
  private connLost(conn: Conn, err: Error): void {
    if (this.conn !== conn) return; // a moved session's old connection: its drain handles it
    this.conn = null;
    if (this.stopErr) return;
    this.log("connection lost", { err: String(err), class: classAfter(err) });
    if (isMoved(err) && this.moving) {
      this.movedAway = err; // the move under way decides what follows
      return;
    }
    this.afterLoss(err);
  }

  private afterLoss(err: Error): void {
    const cls = classAfter(err);
    if (cls === "final") {
      this.finish(err);
      return;
    }
    this.emit("disconnected", { error: err });
    const lost = cls === "rejoin" ? this.loseSession(err) : null;
    void this.reconnect(lost, nodeGone(err));
  }

  /** The reconnect loop: backoff, then resume the session, or start a new one when it is gone. */
  private async reconnect(lost: ClientEvents["sessionLost"] | null, relocate: boolean): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const endedAt = Date.now();
    let lastLocate = 0;
    try {
      for (let attempt = 0; ; attempt++) {
        const delay = backoff(attempt, this.opts.minBackoffMs, this.opts.maxBackoffMs);
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            this.wakeLoop = null;
            resolve();
          }, delay);
          this.wakeLoop = () => {
            clearTimeout(t);
            this.wakeLoop = null;
            resolve();
          };
        });
        if (this.stopErr) return;
        if (this.conn) {
          // A move adopted a connection while this one was down.
          this.endDisconnection(lost);
          return;
        }
        let resume = lost === null;
        if (resume && this.sess.seatHoldMs > 0 && Date.now() - endedAt > this.sess.seatHoldMs) {
          lost = this.loseSession(new Error("tandem: disconnected longer than the seat hold"));
          resume = false;
        }
        if (relocate && this.opts.locate && Date.now() - lastLocate >= Math.max(1000, delay)) {
          lastLocate = Date.now();
          relocate = false;
          try {
            const u = await this.opts.locate();
            if (u) this.url = u;
          } catch (e) {
            if (classOf(e) === "final") {
              this.finish(e as Error);
              return;
            }
            this.log("locate failed; keeping the URL", { err: String(e) });
          }
        }
        let got: { conn: Conn; env: Envelope };
        try {
          got = await this.handshake(this.url, resume, "");
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          if (this.stopErr) return;
          this.log("reconnect failed", { err: String(err), resume, attempt });
          if (this.conn) {
            this.endDisconnection(lost);
            return;
          }
          relocate ||= nodeGone(err);
          const cls = classAfter(err);
          if (cls === "final") {
            this.finish(err);
            return;
          }
          if (cls === "rejoin" && lost === null) lost = this.loseSession(err);
          continue;
        }
        if (this.stopErr || this.conn) {
          got.conn.close(1000);
          if (this.conn && !this.stopErr) this.endDisconnection(lost);
          return;
        }
        if (resume && got.env.body.case === "connected" && !got.env.body.value.resumed) {
          lost = this.loseSession(new Error("tandem: the server started a new session instead of resuming"));
        }
        this.attach(got.conn, got.env, () => this.endDisconnection(lost));
        return;
      }
    } finally {
      this.reconnecting = false;
    }
  }

  private endDisconnection(lost: ClientEvents["sessionLost"] | null): void {
    if (lost) this.emit("sessionLost", lost);
    else this.emit("resumed", {});
  }

  /**
   * Forgets the session: rooms, positions, client seq, resend buffer and
   * resume token; pending requests fail with SessionLostError.
   */
  private loseSession(cause: Error): ClientEvents["sessionLost"] {
    const s = this.sess;
    const err = new SessionLostError(cause);
    const rooms = [...s.rooms.keys()].sort();
    for (const r of s.rooms.values()) r._gone(err);
    this.sess = new Session();
    for (const p of s.pending.values()) p.settle({ err });
    s.pending.clear();
    this.rewatchTickets();
    return { rooms, error: cause };
  }

  /** Ends the client: requests and sends fail with err from now on. */
  private stop(err: Error): void {
    if (this.stopErr) return;
    this.stopErr = err;
    const s = this.sess;
    for (const r of s.rooms.values()) r._gone(err);
    s.rooms.clear();
    s.resend.reset();
    for (const p of s.pending.values()) p.settle({ err });
    s.pending.clear();
    for (const w of this.tickets.values()) w.wake?.();
  }

  /** Ends the client after a final close: `closed`, except for the silent `moved`. */
  private finish(err: Error): void {
    this.stop(err);
    if (!isMoved(err)) this.emit("closed", { error: err });
  }

  private rewatchTickets(): void {
    for (const w of this.tickets.values()) {
      w.resync = true;
      w.wake?.();
    }
  }

  // ---- moving to another node ----

  /**
   * Connects to the node a seat reservation names with its seat token and
   * makes that connection the client's. Answers false, without moving, when
   * the reservation is stale (another move is under way or moved the
   * session since sentOn); the caller then asks again on the current
   * session. A refusal by the node changes nothing: the old connection goes on.
   */
  private async follow(sr: SeatReservation, sentOn: unknown): Promise<boolean> {
    if (!sr.nodeUrl) throw new Error("tandem: seat reservation without a node URL");
    if (this.moving) {
      await new Promise<void>((resolve) => this.moveDone.push(resolve));
      return false;
    }
    this.checkStopped();
    if (sentOn !== null && sentOn !== this.sess) return false;
    this.moving = true;
    this.movedAway = null;
    let got: { conn: Conn; env: Envelope };
    try {
      got = await this.handshake(sr.nodeUrl, false, sr.seatToken);
    } catch (e) {
      this.endMove();
      const away = this.movedAway;
      this.movedAway = null;
      if (away && !this.stopErr) this.afterLoss(away); // the old node moved the session anyway
      throw e;
    }
    if (this.stopErr) {
      got.conn.close(1000);
      this.endMove();
      throw this.stopErr;
    }
    const prev = this.sess;
    const old = this.conn;
    this.sess = new Session();
    this.url = sr.nodeUrl;
    this.conn = null;
    this.movedAway = null;
    this.attach(got.conn, got.env);
    this.endMove();
    if (old && !old.isEnded) this.drain(old, prev);
    else this.endMoved(prev);
    this.wakeLoop?.(); // a reconnect loop under way ends: the move reconnected
    this.rewatchTickets();
    return true;
  }

  private endMove(): void {
    this.moving = false;
    for (const w of this.moveDone.splice(0)) w();
  }

  /**
   * Serves the old connection of a session that moved until the old node
   * closes it (with `moved`, silent). A node that does not end the session
   * within the heartbeat timeout is sent a normal close, which ends it.
   */
  private drain(conn: Conn, s: Session): void {
    const limit = setTimeout(() => {
      conn.close(1000);
      setTimeout(() => conn.fail(new Error("tandem: no close echo")), closeWaitMs);
    }, this.hbTimeoutMs());
    conn.serve({
      frame: (env) => this.dispatch(conn, env),
      end: () => {
        clearTimeout(limit);
        this.endMoved(s);
      },
    });
  }

  /**
   * Ends a session that moved: a room the old node did not leave before
   * its connection ended is left with MOVED all the same (missed), and its
   * pending requests fail.
   */
  private endMoved(s: Session): void {
    const err = new SessionLostError(new CloseError(CloseCode.moved, "moved"));
    const rooms = [...s.rooms.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    s.rooms.clear();
    for (const p of s.pending.values()) p.settle({ err: this.stopErr ?? err });
    s.pending.clear();
    s.resend.reset();
    for (const r of rooms) {
      r._gone(new RoomLeftError());
      if (!this.stopErr) this.emit("left", { room: r, reason: LeaveReason.MOVED, missed: true, state: r.state });
    }
  }

  // ---- receiving ----

  /** Handles one frame from the server on conn, for the session conn carries. */
  private dispatch(conn: Conn, env: Envelope): void {
    const s = conn.session as Session;
    // An error frame explains a close only when the close comes right behind
    // it: any later frame (an answered error too) ends that.
    conn.lastServerError = undefined;
    if (env.ack > 0n) s.resend.trim(env.ack);
    switch (env.body.case) {
      case "ping": {
        const p = env.body.value;
        if (p.rttUs > 0) this.serverRttMs = p.rttUs / 1000;
        this.sendUnreliable(conn, frames.pongFrame(p.timeUs));
        return;
      }
      case "pong": {
        const t = env.body.value.timeUs;
        if (t > 0n) {
          const rtt = Number(this.nowUs() - t) / 1000;
          if (rtt > 0) this.rttMs = rtt;
        }
        return;
      }
      case "ackFrame":
        return;
      case "connected":
        this.log("unexpected connected frame ignored");
        return;
    }
    if (env.room !== "") this.dispatchRoom(s, env);
    else this.dispatchSession(conn, s, env);
  }

  /** A session-stream frame: replies by cid, notices, errors, leaves, ticket statuses. */
  private dispatchSession(conn: Conn, s: Session, env: Envelope): void {
    if (!s.streams.acceptSession(env.seq)) return;
    const body = env.body;
    switch (body.case) {
      case "joined": {
        const j = body.value;
        let r = s.rooms.get(j.roomId);
        if (!r) {
          r = new Room(this, s, j.roomId, j.roomType, j.state);
          s.rooms.set(r.id, r);
        }
        r.state = j.state;
        s.streams.join(r.id, j.epoch, j.seq);
        this.takePending(s, env.cid)?.settle({ env, room: r });
        this.emit("joined", { room: r, players: j.players });
        return;
      }
      case "error": {
        const err = ServerError.fromFrame(body.value);
        const p = this.takePending(s, env.cid);
        if (p) {
          p.settle({ err });
          return;
        }
        const f = env.cid !== 0n ? s.resend.byCid(env.cid) : undefined;
        conn.lastServerError = err;
        this.emit("error", { room: f?.room, topic: f?.topic, error: err });
        return;
      }
      case "notice":
        this.emit("notice", { kind: body.value.kind, text: body.value.text });
        return;
      case "leave": {
        // A room's final leave comes on the session stream, after every frame of the room's stream.
        const r = s.rooms.get(body.value.roomId);
        if (!r) return;
        this.leftRoom(s, r);
        this.emit("left", { room: r, reason: body.value.reason, missed: body.value.missed, state: body.value.state });
        return;
      }
      case "ticketStatus": {
        const ts = body.value;
        const p = this.takePending(s, env.cid);
        if (p) {
          p.settle({ env });
          return;
        }
        if (env.cid !== 0n) return;
        const w = this.tickets.get(ts.queue);
        if (w && concerns(w, ts)) {
          // matchmake reports it to onProgress when it takes it: by then it
          // knows its ticket's id, and the order is the stream's.
          w.statuses.push(ts);
          w.wake?.();
        }
        this.emit("ticket", { status: ticketStatusOf(ts) });
        return;
      }
      default: {
        const p = this.takePending(s, env.cid);
        if (p) p.settle({ env });
        else this.log("session frame ignored", { body: body.case, cid: String(env.cid) });
      }
    }
  }

  /** A room-stream frame: dropped when it is a duplicate or for a room the session is not in. */
  private dispatchRoom(s: Session, env: Envelope): void {
    const id = env.room;
    const r = s.rooms.get(id);
    const body = env.body;
    const { known, fresh } =
      body.case === "gap" ? s.streams.gap(id, body.value.epoch, body.value.seq) : s.streams.acceptRoom(id, env.seq);
    if (!known || !r || !fresh) return;
    switch (body.case) {
      case "roomMessage": {
        const m = body.value;
        this.emit("message", { room: r, from: m.from, topic: m.topic, data: m.data, seq: env.seq });
        return;
      }
      case "snapshot":
        r.state = body.value.state;
        this.emit("snapshot", { room: r, tick: body.value.tick, state: body.value.state, seq: env.seq });
        return;
      case "delta":
        this.emit("delta", { room: r, tick: body.value.tick, patch: body.value.patch, seq: env.seq });
        return;
      case "roomEvent": {
        const e = body.value;
        this.emit("roomEvent", { room: r, playerId: e.playerId, kind: e.kind, reason: e.reason, seq: env.seq });
        return;
      }
      case "gap": {
        const g = body.value;
        r.state = g.state;
        this.emit("gap", { room: r, fromSeq: g.fromSeq, seq: g.seq, epoch: g.epoch, state: g.state });
        return;
      }
      case "leave":
        this.leftRoom(s, r);
        this.emit("left", { room: r, reason: body.value.reason, missed: body.value.missed, state: body.value.state });
        return;
      default:
        this.log("room frame ignored", { room: id, body: body.case });
    }
  }

  private takePending(s: Session, cid: bigint): Pending | undefined {
    if (cid === 0n) return undefined;
    const p = s.pending.get(cid);
    s.pending.delete(cid);
    return p;
  }

  private leftRoom(s: Session, r: Room): void {
    s.rooms.delete(r.id);
    s.streams.leave(r.id);
    r._gone(new RoomLeftError());
  }
}

/**
 * The class of what ended a connection, for the reconnect loop: a `moved`
 * close no move of this client awaits is rejoin class (the session is lost).
 */
function classAfter(err: unknown): CloseClass {
  return isMoved(err) ? "rejoin" : classOf(err);
}

/** Whether ts is a status of w's ticket: any of the queue until the ticket's id is known. */
function concerns(w: TicketWait, ts: TicketStatusFrame): boolean {
  return w.id === "" || ts.ticketId === "" || ts.ticketId === w.id;
}

/**
 * Whether a failure to take a seat says the seat is gone: retrying cannot
 * help. The room's node refuses a seat token at connect with the error
 * frame and a close, so the error may come inside a CloseError.
 */
function seatGone(err: unknown): boolean {
  const server = err instanceof CloseError ? err.server : err;
  return server instanceof ServerError && (server.code === Code.notFound || server.code === Code.joinRejected || server.code === Code.invalid);
}

function unexpectedReply(env: Envelope | undefined): Error {
  return new Error(`tandem: unexpected reply ${env?.body.case ?? "none"}`);
}

function payloadSize(p: Uint8Array | string): number {
  return typeof p === "string" ? new TextEncoder().encode(p).length : p.length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
