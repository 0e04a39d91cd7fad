// The /play page: a guest logs in through the player API of this origin,
// connects to the realtime node the login names, and "Quick match" puts it
// in the "quick" queue; the match's arena room (room/arena.go) is drawn on
// a canvas from its snapshots and deltas, and the keys steer. It is the
// TypeScript SDK in a browser with nothing else: plain DOM, and every text
// from the server is set with textContent, never parsed as markup.
import {
  Client,
  LeaveReason,
  TicketEndedError,
  loginGuest,
  newDeviceSecret,
  type Auth,
  type Room,
  type WebSocketConstructor,
} from "../../sdk/ts/src/index.js";

const queue = "quick";
// room/arena.go's ArenaWidth and ArenaHeight.
const arenaWidth = 1000;
const arenaHeight = 1000;
const deviceKey = "tandem.play.device";
const pingEveryMs = 1000;

/** A player's entity in the arena: {"x","y","dx","dy","connected"}. */
interface ArenaPlayer {
  x: number;
  y: number;
  dx: number;
  dy: number;
  connected: boolean;
}

type ConnState = "offline" | "connected" | "reconnecting" | "lost";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`play: the page has no #${id}`);
  return el as T;
}

const ui = {
  conn: byId<HTMLSpanElement>("conn"),
  ping: byId<HTMLSpanElement>("ping"),
  me: byId<HTMLElement>("me"),
  quick: byId<HTMLButtonElement>("quick"),
  status: byId<HTMLParagraphElement>("status"),
  lobby: byId<HTMLElement>("lobby"),
  arena: byId<HTMLElement>("arena"),
  roomId: byId<HTMLElement>("room-id"),
  field: byId<HTMLCanvasElement>("field"),
  players: byId<HTMLUListElement>("players"),
};

function setConn(state: ConnState): void {
  ui.conn.dataset.state = state;
  ui.conn.textContent = state;
}

function setStatus(text: string): void {
  ui.status.textContent = text;
}

/**
 * The device this browser logs in as: an id and a secret made once and
 * kept in localStorage, so a reload is the same guest.
 */
function device(): { id: string; secret: string } {
  try {
    const kept = JSON.parse(localStorage.getItem(deviceKey) ?? "null");
    if (typeof kept?.id === "string" && typeof kept?.secret === "string") return kept;
  } catch {
    // Not JSON: make a new device below.
  }
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  const d = { id: "play-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""), secret: newDeviceSecret() };
  localStorage.setItem(deviceKey, JSON.stringify(d));
  return d;
}

/**
 * The ?realtime=ws://… override of the URL the login names (tests put a
 * fault proxy there). The page's Content-Security-Policy still decides
 * where it may connect.
 */
function realtimeOverride(): string {
  const v = new URLSearchParams(location.search).get("realtime") ?? "";
  if (v === "") return "";
  try {
    const u = new URL(v);
    if (u.protocol === "ws:" || u.protocol === "wss:") return u.href;
  } catch {
    // Not a URL: refused below.
  }
  throw new Error("?realtime= must be a ws:// or wss:// URL");
}

/** The arena's state as this player sees it: entity key → player. */
class ArenaState {
  readonly players = new Map<string, ArenaPlayer>();

  /** Replaces the state with a snapshot: {"tick":N,"entities":{…}}. */
  reset(snapshot: Uint8Array): void {
    this.players.clear();
    const s = decode(snapshot) as { entities?: Record<string, unknown> } | null;
    for (const [key, v] of Object.entries(s?.entities ?? {})) this.put(key, v);
  }

  /** Applies a delta: {"tick":N,"set":{…},"del":[…]}. */
  apply(patch: Uint8Array): void {
    const d = decode(patch) as { set?: Record<string, unknown>; del?: unknown[] } | null;
    for (const [key, v] of Object.entries(d?.set ?? {})) this.put(key, v);
    for (const key of d?.del ?? []) if (typeof key === "string") this.players.delete(key);
  }

  private put(key: string, v: unknown): void {
    const p = v as Partial<ArenaPlayer> | null;
    if (!key.startsWith("p:") || typeof p?.x !== "number" || typeof p?.y !== "number") return;
    this.players.set(key, { x: p.x, y: p.y, dx: p.dx ?? 0, dy: p.dy ?? 0, connected: p.connected !== false });
  }
}

function decode(b: Uint8Array): unknown {
  if (b.length === 0) return null;
  try {
    return JSON.parse(new TextDecoder().decode(b));
  } catch {
    return null;
  }
}

/** A stable colour per player. */
function colourOf(id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 65% 45%)`;
}

/** Draws the arena and lists its players (the list is what tests read). */
function render(state: ArenaState, me: string): void {
  const g = ui.field.getContext("2d");
  if (g) {
    const { width, height } = ui.field;
    g.clearRect(0, 0, width, height);
    for (const [key, p] of state.players) {
      const id = key.slice(2);
      const x = (p.x / arenaWidth) * width;
      const y = (p.y / arenaHeight) * height;
      g.globalAlpha = p.connected ? 1 : 0.35;
      g.fillStyle = colourOf(id);
      g.beginPath();
      g.arc(x, y, 8, 0, 2 * Math.PI);
      g.fill();
      if (id === me) {
        g.lineWidth = 3;
        g.strokeStyle = "#1d2330";
        g.stroke();
      }
    }
    g.globalAlpha = 1;
  }
  const items: HTMLLIElement[] = [];
  for (const [key, p] of [...state.players].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const id = key.slice(2);
    const li = document.createElement("li");
    li.dataset.player = id;
    li.dataset.x = String(p.x);
    li.dataset.y = String(p.y);
    li.dataset.connected = String(p.connected);
    li.dataset.me = String(id === me);
    li.style.color = colourOf(id);
    li.textContent = `${id}${id === me ? " (you)" : ""}: ${p.x}, ${p.y}${p.connected ? "" : " (disconnected)"}`;
    items.push(li);
  }
  ui.players.replaceChildren(...items);
}

/** The direction the held keys ask for. */
class Steering {
  private readonly held = new Set<string>();
  private sent = { dx: 0, dy: 0 };

  constructor(private readonly send: (dx: number, dy: number) => void) {}

  /** Returns whether key steers (the page then keeps it from scrolling). */
  key(key: string, down: boolean): boolean {
    if (!(key in keyDirections)) return false;
    if (down) this.held.add(key);
    else this.held.delete(key);
    this.update();
    return true;
  }

  release(): void {
    this.held.clear();
    this.update();
  }

  private update(): void {
    let dx = 0;
    let dy = 0;
    for (const k of this.held) {
      const [x, y] = keyDirections[k]!;
      dx += x;
      dy += y;
    }
    dx = Math.max(-1, Math.min(1, dx));
    dy = Math.max(-1, Math.min(1, dy));
    // Only changes go out: a held key's repeats send nothing.
    if (dx === this.sent.dx && dy === this.sent.dy) return;
    this.sent = { dx, dy };
    this.send(dx, dy);
  }
}

const keyDirections: Record<string, [number, number]> = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  a: [-1, 0],
  d: [1, 0],
  w: [0, -1],
  s: [0, 1],
  A: [-1, 0],
  D: [1, 0],
  W: [0, -1],
  S: [0, 1],
};

/** The game: one login, one client, at most one arena room at a time. */
class Game {
  private room: Room | null = null;
  private readonly state = new ArenaState();
  private readonly steering: Steering;

  constructor(
    private readonly client: Client,
    private readonly me: string,
  ) {
    this.steering = new Steering((dx, dy) => this.move(dx, dy));
    this.listen();
  }

  private listen(): void {
    const c = this.client;
    c.on("joined", (e) => {
      if (e.room.type !== "arena") return;
      this.room = e.room;
      this.state.reset(e.room.state);
      this.show();
    });
    c.on("snapshot", (e) => this.ifCurrent(e.room, () => this.state.reset(e.state)));
    c.on("gap", (e) => this.ifCurrent(e.room, () => this.state.reset(e.state)));
    c.on("delta", (e) => this.ifCurrent(e.room, () => this.state.apply(e.patch)));
    c.on("left", (e) => {
      if (e.room !== this.room) return;
      this.leaveArena(`You left the room (${LeaveReason[e.reason] ?? e.reason}).`);
    });
    c.on("disconnected", () => setConn("reconnecting"));
    c.on("resumed", () => setConn("connected"));
    c.on("sessionLost", () => {
      setConn("connected");
      if (this.room) this.leaveArena("The connection was lost for too long: the match is over.");
    });
    c.on("closed", (e) => {
      setConn("lost");
      ui.quick.disabled = true;
      this.leaveArena(`Disconnected: ${e.error.message}`);
    });
    window.addEventListener("keydown", (e) => {
      if (this.room && !e.altKey && !e.ctrlKey && !e.metaKey && this.steering.key(e.key, true)) e.preventDefault();
    });
    window.addEventListener("keyup", (e) => {
      if (this.steering.key(e.key, false)) e.preventDefault();
    });
    window.addEventListener("blur", () => this.steering.release());
    setInterval(() => {
      const rtt = c.rttMillis;
      ui.ping.textContent = rtt > 0 ? `ping ${Math.round(rtt)} ms` : "ping —";
    }, pingEveryMs);
  }

  private ifCurrent(r: Room, apply: () => void): void {
    if (r !== this.room) return;
    apply();
    render(this.state, this.me);
  }

  /** Looks for a match in the quick queue; the arena shows once joined. */
  async quickMatch(): Promise<void> {
    ui.quick.disabled = true;
    setStatus("Looking for players…");
    try {
      const room = await this.client.matchmake({ queue }, { onProgress: (s) => setStatus(`Ticket ${s.state}…`) });
      if (room.type !== "arena") setStatus(`Matched into a ${room.type} room, not an arena.`);
    } catch (e) {
      const why = e instanceof TicketEndedError ? `the ticket ended (${e.status.reason || e.status.state})` : String(e);
      setStatus(`No match: ${why}`);
      ui.quick.disabled = false;
    }
  }

  private move(dx: number, dy: number): void {
    try {
      this.room?.send("move", new TextEncoder().encode(JSON.stringify({ dx, dy })), { handlerOnly: true });
    } catch (e) {
      setStatus(`Move not sent: ${String(e)}`);
    }
  }

  private show(): void {
    if (!this.room) return;
    ui.roomId.textContent = this.room.id;
    ui.lobby.hidden = true;
    ui.arena.hidden = false;
    setStatus("");
    render(this.state, this.me);
  }

  private leaveArena(why: string): void {
    this.room = null;
    this.steering.release();
    this.state.players.clear();
    render(this.state, this.me);
    ui.arena.hidden = true;
    ui.lobby.hidden = false;
    ui.quick.disabled = ui.conn.dataset.state === "lost";
    setStatus(why);
  }
}

async function main(): Promise<void> {
  setConn("offline");
  let auth: Auth;
  let override: string;
  try {
    override = realtimeOverride();
    const d = device();
    auth = await loginGuest({ baseUrl: location.origin }, d.id, d.secret);
  } catch (e) {
    setStatus(`Login failed: ${String(e)}`);
    return;
  }
  ui.me.textContent = auth.playerId;
  let client: Client;
  try {
    client = await Client.connect({
      url: override || auth.realtimeUrl,
      token: () => auth.realtimeToken(),
      // With an override the page stays where it was told to go.
      locate: override ? () => Promise.resolve(override) : () => auth.locate(),
      WebSocket: globalThis.WebSocket as unknown as WebSocketConstructor,
    });
  } catch (e) {
    setConn("lost");
    setStatus(`Cannot connect: ${String(e)}`);
    return;
  }
  setConn("connected");
  const game = new Game(client, auth.playerId);
  ui.quick.addEventListener("click", () => void game.quickMatch());
  ui.quick.disabled = false;
}

void main();
