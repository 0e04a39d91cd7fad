// The TypeScript SDK's conformance driver: it runs every scenario of
// conformance/scenarios (conformance/README.md) against the nodes and
// fault proxies of the harness server (TANDEM_HARNESS_BIN), each client
// dialing through a proxy of its own per node. It ports the Go SDK's
// driver, conformance/driver_test.go: same event mapping, same waits.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import WebSocket from "ws";
import { EnvelopeSchema } from "../gen/tandem_pb.js";
import {
  Client,
  CloseError,
  JoinMode,
  LeaveReason,
  RoomEventKind,
  ServerError,
  codecFor,
  type ClientEvents,
  type Codec,
  type CodecName,
  type JoinOptions,
  type Room,
  type SendOptions,
  type WebSocketConstructor,
} from "../index.js";
import {
  checkScenario,
  closeNames,
  expand,
  faultOps,
  loadScenario,
  scenarioFiles,
  scenarioName,
  type Scenario,
  type ScenarioEvent,
  type Step,
} from "../testing/conformance.js";
import { Harness, harnessBin, type HarnessScenario } from "../testing/harness.js";

// waitLimit bounds every wait of a step: generous, because a loaded
// machine is slow, and the scenarios make no timing claims.
const waitLimit = 30_000;
const pollMs = 5;

const scenarioDir = fileURLToPath(new URL("../../../../conformance/scenarios/", import.meta.url));
const { bin, skip } = harnessBin();
const files = scenarioFiles(scenarioDir);
// The scenarios run to their end, by name.
const completed = new Set<string>();
const text = new TextEncoder();
const untext = new TextDecoder();

// One scenario at a time: every client shares this process's event loop, and
// a scenario that floods (slow_consumer) would stall another's heartbeats.
describe("conformance scenarios", { skip, concurrency: 1 }, () => {
  let harness: Harness;
  before(async () => {
    harness = await Harness.start(bin, scenarioDir);
  });
  after(async () => {
    await harness?.stop();
  });

  for (const file of files) {
    const name = scenarioName(file);
    test(name, { timeout: 120_000 }, async () => {
      const s = loadScenario(file);
      const d = new Driver(s, await harness.startScenario(s.name));
      try {
        await d.run();
      } finally {
        await d.stop();
      }
      completed.add(name);
    });
  }
});

// Runs after the scenarios (top-level tests of a file run in order).
test("every scenario file was run to its end", { skip }, () => {
  assert.ok(files.length > 0, `no scenarios in ${scenarioDir}`);
  if (process.execArgv.some((a) => /^--test-(name|skip)-pattern/.test(a))) return; // a subset was asked for
  const missing = files.map(scenarioName).filter((n) => !completed.has(n));
  assert.deepEqual(missing, [], `scenarios not run to their end: ${missing.join(", ")}`);
});

// The check refuses what the driver could not run faithfully, whatever
// harness there is: a scenario it skipped in part would pass unproved.
test("the scenario check refuses unknown ops, fields, event kinds and event fields", () => {
  const connect = { op: "connect", client: "alice" };
  const scenario = (...steps: object[]) => ({ description: "d", covers: ["c"], steps: [connect, ...steps] });
  assert.doesNotThrow(() => checkScenario("ok", scenario({ op: "expect", client: "alice", events: [{ kind: "closed", code: "kicked" }] })));
  const refused: [string, unknown][] = [
    ["unknown op", scenario({ op: "teleport", client: "alice" })],
    ["has no field", scenario({ op: "leave", client: "alice", room: "r1", topic: "t" })],
    ["has no field", { ...scenario(), nodez: ["a"] }],
    ["has no field", { ...scenario(), node: { heartbeat: 5 } }],
    ["unknown event kind", scenario({ op: "expect", client: "alice", events: [{ kind: "teleported" }] })],
    ["unknown event kind", scenario({ op: "expect", client: "alice", skip: ["teleported"], events: [] })],
    ["has no field", scenario({ op: "expect", client: "alice", events: [{ kind: "resumed", code: "x" }] })],
    ["is required", scenario({ op: "send", client: "alice", room: "r1" })],
    ["not connected", scenario({ op: "close", client: "bob" })],
    ["unknown node", scenario({ op: "drain", node: "z" })],
    ["not a close code name", scenario({ op: "inject_close", client: "alice", code: "teleported" })],
    ["want an integer", scenario({ op: "send", client: "alice", room: "r1", topic: "t", count: "3" })],
  ];
  for (const [why, raw] of refused) assert.throws(() => checkScenario("bad", raw), new RegExp(why), JSON.stringify(raw));
});

/** One event of a client, as the SDK gave it. */
interface Logged {
  type: keyof ClientEvents;
  ev: any;
  text?: string; // a message's data, decoded once
}

/** A scenario client: an SDK client, its events, its rooms by alias and the bodies of the frames it read. */
interface Player {
  name: string;
  c: Client;
  log: Logged[];
  cursor: number; // events before it have been checked by an expect step
  rooms: Map<string, Room>;
  bodies: Map<string, number>;
}

// Every event of ClientEvents: a new one breaks the build until it is logged.
const eventTypes: Record<keyof ClientEvents, true> = {
  joined: true, message: true, snapshot: true, delta: true, roomEvent: true, gap: true, left: true,
  notice: true, error: true, ticket: true, disconnected: true, resumed: true, sessionLost: true, closed: true,
};

// The proto names of the envelope's bodies ("room_message"), by their
// names in the JSON codec (proto or JSON name) and in protobuf-es ("roomMessage").
const bodyNames = new Map(
  EnvelopeSchema.oneofs.flatMap((o) => o.fields.flatMap((f) => [f.name, f.jsonName, f.localName].map((n) => [n, f.name] as const))),
);

/** Runs one scenario against its harness scenario. */
class Driver {
  private readonly clients = new Map<string, Player>();
  private readonly aliases = new Map<string, string>(); // room alias → room id
  private readonly names = new Map<string, string>(); // room id → alias

  constructor(
    private readonly s: Scenario,
    private readonly sc: HarnessScenario,
  ) {}

  async run(): Promise<void> {
    for (const [i, st] of this.s.steps.entries()) {
      const where = `step ${i + 1} (${st.op}${st.client ? " " + st.client : ""})`;
      const deadline = Date.now() + waitLimit;
      let timer: NodeJS.Timeout | undefined;
      // The waits poll until the deadline; this bounds the other awaits (a join, a leave) too.
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${waitLimit + 5000} ms`)), waitLimit + 5000);
      });
      try {
        await Promise.race([this.step(st, deadline), late]);
      } catch (e) {
        throw new Error(`${this.s.name}: ${where}: ${(e as Error).message}`, { cause: e });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Closes the clients and stops the scenario's nodes and proxies. */
  async stop(): Promise<void> {
    await Promise.all([...this.clients.values()].map((p) => p.c.close()));
    await this.sc.stop();
  }

  private async step(st: Step, deadline: number): Promise<void> {
    const p = this.clients.get(st.client ?? "")!;
    const first = this.s.nodes[0]!;
    if (Object.hasOwn(faultOps, st.op)) {
      // A fault acts on every connection of the client, to any node.
      const { client: _, node: __, ...fault } = st;
      for (const nid of this.s.nodes) await this.sc.fault(p.name, nid, fault);
      return;
    }
    switch (st.op) {
      case "connect":
        return this.connect(st);
      case "join":
        return this.join(p, st, deadline);
      case "leave":
        return this.room(p, st.room!).leave();
      case "send":
        return this.send(p, st);
      case "rpc": {
        let reply: Uint8Array;
        try {
          reply = await p.c.rpc(st.method!, text.encode(st.data ?? ""));
        } catch (e) {
          if (!st.error) throw new Error(`rpc: ${String(e)}`);
          checkServerError(e, st.error.code);
          return;
        }
        if (st.error) throw new Error(`rpc replied ${JSON.stringify(untext.decode(reply))}, want the error ${st.error.code}`);
        if (st.reply !== undefined && untext.decode(reply) !== st.reply) {
          throw new Error(`reply ${JSON.stringify(untext.decode(reply))}, want ${JSON.stringify(st.reply)}`);
        }
        return;
      }
      case "expect":
        return this.expect(p, st, deadline);
      case "expect_messages":
        return this.expectMessages(p, st, deadline);
      case "expect_none":
        for (const l of p.log) {
          const e = this.normalize(l);
          if (st.kinds!.includes(e.kind)) throw new Error(`got ${show([e])}`);
        }
        return;
      case "expect_frames":
        return waitFor(deadline, () => `${st.count} ${st.body} frames (${p.bodies.get(st.body!) ?? 0} so far)`, () => (p.bodies.get(st.body!) ?? 0) >= st.count!);
      case "await_close": {
        const node = st.node || first;
        const want = Math.max(st.count ?? 0, 1);
        let got = 0;
        return waitFor(deadline, () => `node ${node} to close ${want} connections with ${st.code} (${got} so far)`, async () => {
          got = (await this.sc.closes(node))[st.code!] ?? 0;
          return got >= want;
        });
      }
      case "connections": {
        const node = st.node || first;
        let got = { accepted: 0, open: 0 };
        return waitFor(deadline, () => `${st.accepted} connections accepted, ${st.open ?? "any"} open (now ${JSON.stringify(got)})`, async () => {
          got = await this.sc.connections(p.name, node);
          if (got.accepted > st.accepted!) throw new Error(`the client opened ${got.accepted} connections, want ${st.accepted}`);
          return got.accepted === st.accepted && (st.open === undefined || got.open === st.open);
        });
      }
      case "close":
        return p.c.close();
      case "drain":
        return this.sc.drain(st.node || first, st.timeout_ms ?? 0, waitLimit);
      default:
        throw new Error("unknown op"); // loadScenario refuses it first
    }
  }

  private async connect(st: Step): Promise<void> {
    const name = st.client!;
    const player = st.player || name;
    const codec: CodecName = st.codec === "proto" ? "tandem.v1.proto" : "tandem.v1.json";
    // The client's proxy per node, by the node's host:port: every URL the
    // client dials (a seat reservation names another node's) goes through it.
    const route = new Map<string, string>();
    for (const nid of this.s.nodes) {
      const px = await this.sc.proxy(name, nid);
      route.set(new URL(this.sc.nodes[nid]!.url).host, new URL(px).host);
    }
    const bodies = new Map<string, number>();
    let c: Client;
    try {
      c = await Client.connect({
        url: this.sc.nodes[st.node || this.s.nodes[0]!]!.url,
        codec,
        token: () => this.sc.token(player, st.token ?? ""), // a fresh one at every dial
        WebSocket: proxied(route, codecFor(codec), bodies),
        minBackoffMs: 1,
        maxBackoffMs: 5,
        ackIntervalMs: 10,
        // The SDK's default (2.5 × the node's heartbeat) unless the step sets one.
        heartbeatTimeoutMs: st.heartbeat_timeout_ms || undefined,
      });
    } catch (e) {
      if (!st.error) throw new Error(`connect: ${String(e)}`);
      if (!(e instanceof CloseError)) throw new Error(`connect failed with ${String(e)}, want a close`);
      const got = closeName(e.code);
      if (st.error.close && got !== st.error.close) throw new Error(`connect closed with ${got}, want ${st.error.close}`);
      checkServerError(e, st.error.code);
      return;
    }
    if (st.error) {
      await c.close();
      throw new Error("connected; want the connect refused");
    }
    const p: Player = { name, c, log: [], cursor: 0, rooms: new Map(), bodies };
    for (const type of Object.keys(eventTypes) as (keyof ClientEvents)[]) {
      c.on(type, (ev) => {
        const l: Logged = { type, ev };
        if (type === "message") l.text = untext.decode((ev as ClientEvents["message"]).data);
        p.log.push(l);
      });
    }
    this.clients.set(name, p);
  }

  private async join(p: Player, st: Step, deadline: number): Promise<void> {
    const o: JoinOptions = {};
    if (st.room_type) o.roomType = st.room_type;
    if (st.room) o.roomId = this.roomId(st.room);
    if (st.mode) o.mode = { join: JoinMode.JOIN, create: JoinMode.CREATE, join_or_create: JoinMode.JOIN_OR_CREATE }[st.mode];
    let r: Room | undefined;
    let err: unknown;
    const attempt = async () => {
      try {
        [r, err] = [await p.c.join(o), undefined];
      } catch (e) {
        [r, err] = [undefined, e];
      }
    };
    if (st.await_directory) {
      // The directory learns of a room on another node a moment after the
      // room starts: until then the join is not_found.
      await waitFor(deadline, () => `the room directory to know ${st.room} (last: ${String(err)})`, async () => {
        await attempt();
        const code = serverErrorOf(err)?.codeName;
        return code !== "not_found" && code !== "unavailable";
      });
    } else {
      await attempt();
    }
    if (st.error) {
      if (!err) throw new Error(`joined ${r!.id}, want the error ${st.error.code}`);
      checkServerError(err, st.error.code);
      return;
    }
    if (err) throw new Error(`join: ${String(err)}`);
    const alias = st.as || st.room;
    if (alias) {
      this.aliases.set(alias, r!.id);
      this.names.set(r!.id, alias);
      p.rooms.set(alias, r!);
    }
  }

  private async send(p: Player, st: Step): Promise<void> {
    const r = this.room(p, st.room!);
    const o: SendOptions = {};
    if (st.delivery === "others") o.others = true;
    if (st.delivery === "list") o.to = st.to ?? [];
    if (st.delivery === "room") o.handlerOnly = true;
    if (!st.count) {
      r.send(st.topic!, text.encode(expand(st.data ?? "", 0, st.size)), o);
      return;
    }
    const firstNo = Math.max(st.first ?? 0, 1);
    for (let i = firstNo; i < firstNo + st.count; i++) {
      try {
        r.send(st.topic!, text.encode(expand(st.data ?? "", i, st.size)), o);
      } catch (e) {
        // The server closed the client mid-series: the next steps check how.
        if (p.log.some((l) => l.type === "closed")) return;
        throw e;
      }
      // Every client of the scenario shares this event loop: let the others
      // read between two sends, as if they ran elsewhere (a flood sent in one
      // go would stall them, the fast readers of slow_consumer too).
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private room(p: Player, alias: string): Room {
    const r = p.rooms.get(alias);
    if (!r) throw new Error(`${p.name} has not joined room "${alias}"`);
    return r;
  }

  private roomId(alias: string): string {
    return this.aliases.get(alias) ?? alias; // a room id of no room: the scenario expects not_found
  }

  private roomAlias(id: string): string {
    return this.names.get(id) ?? id;
  }

  /**
   * Checks that the client's next events, those of the kinds in st.skip
   * passed over, are exactly st.events, in order.
   */
  private async expect(p: Player, st: Step, deadline: number): Promise<void> {
    const want = st.events ?? [];
    const skipKinds = st.skip ?? [];
    let pos = p.cursor;
    const since = (end: number) => show(p.log.slice(p.cursor, end).map((l) => this.normalize(l)));
    await waitFor(deadline, () => `${JSON.stringify(want)}; the events since the last expect: ${since(p.log.length)}`, () => {
      let k = 0;
      for (pos = p.cursor; pos < p.log.length && k < want.length; pos++) {
        const got = this.normalize(p.log[pos]!);
        if (skipKinds.includes(got.kind)) continue;
        if (!matches(want[k]!, got)) {
          throw new Error(`event ${k + 1}: got ${show([got])}, want ${JSON.stringify(want[k])} (events since the last expect: ${since(pos + 1)})`);
        }
        k++;
      }
      return k === want.length;
    });
    p.cursor = pos;
  }

  /** Checks the client's room messages of a room and topic: exactly the numbered series, in order, each once. */
  private async expectMessages(p: Player, st: Step, deadline: number): Promise<void> {
    const want = Array.from({ length: st.count! }, (_, i) => expand(st.data!, i + 1, st.size));
    let got: string[] = [];
    const lastOthers = () => show(p.log.filter((l) => l.type !== "message").slice(-8).map((l) => this.normalize(l)));
    await waitFor(deadline, () => `${st.count} messages "${st.topic}" in ${st.room} (${got.length} so far; the last events: ${lastOthers()})`, () => {
      got = p.log
        .filter((l) => l.type === "message" && l.ev.topic === st.topic && this.roomAlias(l.ev.room.id) === st.room)
        .map((l) => l.text!);
      return got.length >= st.count!;
    });
    if (!isDeepStrictEqual(got, want)) {
      throw new Error(`got ${got.length} messages, not the ${st.count} of the series exactly once in order: ${JSON.stringify(short(got))}`);
    }
  }

  /** An SDK event in the scenario's event form (conformance/README.md, "Events"). */
  private normalize(l: Logged): ScenarioEvent {
    const ev = l.ev;
    const room = () => this.roomAlias(ev.room.id);
    switch (l.type) {
      case "joined":
        return { kind: "joined", room: room(), room_type: ev.room.type, players: ev.players };
      case "message":
        return { kind: "message", room: room(), from: ev.from, topic: ev.topic, data: l.text };
      case "roomEvent": {
        const e: ScenarioEvent = { kind: "room_event", room: room(), player: ev.playerId, event: enumName(RoomEventKind, ev.kind, "ROOM_EVENT_") };
        if (ev.reason !== LeaveReason.UNSPECIFIED) e["reason"] = enumName(LeaveReason, ev.reason);
        return e;
      }
      case "left":
        return { kind: "left", room: room(), reason: enumName(LeaveReason, ev.reason), missed: ev.missed };
      case "gap":
        return { kind: "gap", room: room(), epoch: ev.epoch, state: untext.decode(ev.state) };
      case "snapshot":
      case "delta":
        return { kind: l.type, room: room() };
      case "error":
        return { kind: "error", code: (ev.error as ServerError).codeName, room: this.roomAlias(ev.room ?? ""), topic: ev.topic ?? "" };
      case "notice":
        return { kind: "notice", notice_kind: ev.kind, text: ev.text };
      case "disconnected":
        return { kind: "disconnected", ...closeFields(ev.error) };
      case "resumed":
        return { kind: "resumed" };
      case "sessionLost": {
        const rooms = (ev.rooms as string[]).map((id) => this.roomAlias(id)).sort();
        const { class: _, ...code } = closeFields(ev.error);
        return { kind: "session_lost", rooms, ...code };
      }
      case "closed": {
        const e: ScenarioEvent = { kind: "closed", ...closeFields(ev.error) };
        const se = serverErrorOf(ev.error);
        if (se) e["error"] = se.codeName;
        return e;
      }
      default:
        return { kind: l.type }; // not an event of the scenarios (ticket)
    }
  }
}

/**
 * The `ws` WebSocket dialing through the client's proxies (a URL's
 * host:port replaced by the proxy's) and counting the bodies of the frames
 * it reads, for expect_frames. It reads the frames the SDK reads, and
 * changes nothing of them.
 */
function proxied(route: Map<string, string>, codec: Codec, bodies: Map<string, number>): WebSocketConstructor {
  const count = (name: string) => bodies.set(name, (bodies.get(name) ?? 0) + 1);
  class Proxied extends WebSocket {
    constructor(url: string, protocols: string[]) {
      const u = new URL(url);
      const px = route.get(u.host);
      if (!px) throw new Error(`no proxy for ${u.host}`);
      u.host = px;
      super(u.toString(), protocols);
      this.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
        const b = Array.isArray(data) ? Buffer.concat(data) : new Uint8Array(data as ArrayBuffer);
        try {
          if (isBinary) {
            const c = codec.decode(b).body.case;
            count(c === undefined ? "none" : (bodyNames.get(c) ?? c));
          } else {
            // The body is the JSON object's one key that names a body: a
            // full decode would cost the SDK's time again (its bytes are base64).
            const env = JSON.parse(untext.decode(b)) as Record<string, unknown>;
            count(bodyNames.get(Object.keys(env).find((k) => bodyNames.has(k)) ?? "") ?? "none");
          }
        } catch {
          // the SDK skips it too
        }
      });
    }
  }
  return Proxied as unknown as WebSocketConstructor;
}

/** class and, for a close from the server, code; a reset, EOF or the SDK's own silence timeout is resume class, without code. */
function closeFields(err: unknown): { class: string; code?: string } {
  if (err instanceof CloseError && err.code !== 1005 && err.code !== 1006) {
    return { class: err.closeClass, code: closeName(err.code) };
  }
  return { class: "resume" };
}

function closeName(code: number): string {
  return closeNames[code] ?? "unknown";
}

/** The server error an SDK error carries: itself, or the error frame sent with a close. */
function serverErrorOf(e: unknown): ServerError | undefined {
  if (e instanceof ServerError) return e;
  if (e instanceof CloseError) return e.server;
  return undefined;
}

function checkServerError(e: unknown, code: string | undefined): void {
  const se = serverErrorOf(e);
  if (!se) throw new Error(`got ${String(e)}, want a server error ${code ?? ""}`);
  if (code && se.codeName !== code) throw new Error(`got error ${se.codeName} (${se.code}), want ${code}`);
}

/** Whether got has every field of want, equal as JSON values. */
function matches(want: ScenarioEvent, got: ScenarioEvent): boolean {
  for (const [k, v] of Object.entries(want)) {
    if (!Object.hasOwn(got, k) || !isDeepStrictEqual(jsonValue(v), jsonValue(got[k]))) return false;
  }
  return true;
}

function jsonValue(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** The lower-case name of an enum value without its prefix (LeaveReason.REQUESTED: "requested"). */
function enumName(e: Record<number, string>, v: number, prefix = ""): string {
  const n = e[v] ?? String(v);
  return (n.startsWith(prefix) ? n.slice(prefix.length) : n).toLowerCase();
}

/**
 * Polls cond until it holds, throwing after the deadline; what is made only
 * then (it shows the state at the time). A cond that throws fails at once.
 */
async function waitFor(deadline: number, what: () => string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${waitLimit} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The first and last 10 of a long list, long strings cut: for a failure's message. */
function short<T>(s: T[]): (T | string)[] {
  const cut = (x: T) => (typeof x === "string" && x.length > 40 ? x.slice(0, 40) + "…" : x);
  if (s.length <= 20) return s.map(cut);
  return [...s.slice(0, 10).map(cut), "…", ...s.slice(-10).map(cut)];
}

/** Events for a failure's message: long data cut, long lists shortened. */
function show(evs: ScenarioEvent[]): string {
  return JSON.stringify(short(evs.map((e) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, short([v])[0]])))));
}
