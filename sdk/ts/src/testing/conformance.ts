// Test support: the conformance suite's scenario files
// (conformance/README.md): loading, and a strict check of every op, field,
// event kind and event field, as conformance/scenario.go's Load and
// Validate do. A file that does not pass is a failure, never a skip.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

/** One scripted session (conformance/README.md, "Scenarios"). */
export interface Scenario {
  /** The file name without .json. */
  name: string;
  description: string;
  covers: string[];
  nodes: string[]; // default ["a"]
  node: Record<string, number>;
  steps: Step[];
}

/** One step: op and its fields, by their names in the file. */
export interface Step {
  op: string;
  client?: string;
  node?: string;
  player?: string;
  codec?: string;
  token?: string;
  heartbeat_timeout_ms?: number;
  room?: string;
  room_type?: string;
  mode?: string;
  as?: string;
  await_directory?: boolean;
  topic?: string;
  data?: string;
  delivery?: string;
  to?: string[];
  count?: number;
  first?: number;
  size?: number;
  method?: string;
  reply?: string;
  error?: { code?: string; close?: string };
  events?: ScenarioEvent[];
  skip?: string[];
  kinds?: string[];
  body?: string;
  direction?: string;
  after_bytes?: number;
  bytes_per_second?: number;
  code?: string;
  accepted?: number;
  open?: number;
  timeout_ms?: number;
}

/** An expected event: kind and the fields to compare. */
export type ScenarioEvent = { kind: string } & Record<string, unknown>;

/** The event kinds a driver reports, and the fields of each (scenario.go's EventFields). */
export const eventFields: Record<string, string[]> = {
  joined: ["room", "room_type", "players"],
  message: ["room", "from", "topic", "data"],
  room_event: ["room", "player", "event", "reason"],
  left: ["room", "reason", "missed"],
  gap: ["room", "epoch", "state"],
  snapshot: ["room"],
  delta: ["room"],
  error: ["code", "room", "topic"],
  notice: ["notice_kind", "text"],
  disconnected: ["class", "code"],
  resumed: [],
  session_lost: ["rooms", "code"],
  closed: ["class", "code", "error"],
};

/**
 * The fault ops and their fields ("?": optional). The driver forwards each
 * to every proxy of the client with the step's fields: a new fault is one
 * line here.
 */
export const faultOps: Record<string, string[]> = {
  reset: ["client", "direction?", "after_bytes?"],
  silence: ["client", "direction"],
  throttle: ["client", "direction?", "bytes_per_second?"],
  hold_away: ["client"],
  let_back: ["client"],
  inject_close: ["client", "code"],
};

/** Every op and its fields ("?": optional), from the README's op table. */
export const ops: Record<string, string[]> = {
  connect: ["client", "codec?", "node?", "player?", "token?", "heartbeat_timeout_ms?", "error?"],
  join: ["client", "room_type?", "room?", "mode?", "as?", "await_directory?", "error?"],
  leave: ["client", "room"],
  send: ["client", "room", "topic", "data?", "delivery?", "to?", "count?", "first?", "size?"],
  rpc: ["client", "method", "data?", "reply?", "error?"],
  expect: ["client", "events?", "skip?"],
  expect_messages: ["client", "room", "topic", "data", "count", "size?"],
  expect_none: ["client", "kinds"],
  expect_frames: ["client", "body", "count"],
  await_close: ["code", "node?", "count?"],
  connections: ["client", "accepted", "open?", "node?"],
  close: ["client"],
  drain: ["timeout_ms?", "node?"],
  ...faultOps,
};

/** The close code names of docs/protocol.md §12, by code. */
export const closeNames: Record<number, string> = {
  4000: "abnormal",
  4001: "heartbeat_timeout",
  4002: "slow_consumer",
  4003: "server_restart",
  4004: "replaced",
  4300: "session_expired",
  4301: "node_draining",
  4302: "node_gone",
  4500: "bad_token",
  4501: "banned",
  4502: "kicked",
  4503: "protocol_violation",
  4504: "duplicate_session",
  4505: "moved",
  4506: "connect_timeout",
  4507: "too_large",
  4508: "policy_violation",
};

// The type of every field a step may have.
const stepFieldTypes: Record<string, "string" | "int" | "bool" | "strings" | "error" | "events"> = {
  op: "string", client: "string", node: "string", player: "string", codec: "string", token: "string",
  heartbeat_timeout_ms: "int", room: "string", room_type: "string", mode: "string", as: "string",
  await_directory: "bool", topic: "string", data: "string", delivery: "string", to: "strings",
  count: "int", first: "int", size: "int", method: "string", reply: "string", error: "error",
  events: "events", skip: "strings", kinds: "strings", body: "string", direction: "string",
  after_bytes: "int", bytes_per_second: "int", code: "string", accepted: "int", open: "int", timeout_ms: "int",
};

const nodeFields = ["heartbeat_ms", "seat_hold_ms", "send_queue", "replay_count", "replay_bytes", "msg_rate", "msg_burst", "byte_rate", "max_frame_bytes", "flood_refusals"];

/** The scenario files of dir, in name order. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => join(dir, f));
}

/** The name of a scenario file: its base name without .json. */
export function scenarioName(file: string): string {
  return basename(file, ".json");
}

/** Reads and checks one scenario file; throws on anything a driver could not run faithfully. */
export function loadScenario(file: string): Scenario {
  const raw = JSON.parse(readFileSync(file, "utf8")) as unknown;
  try {
    return checkScenario(scenarioName(file), raw);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** Checks a decoded scenario file, as loadScenario does. */
export function checkScenario(name: string, raw: unknown): Scenario {
  const top = object(raw, "the scenario");
  only(top, ["description", "covers", "nodes", "node", "steps"], "the scenario");
  const s: Scenario = {
    name,
    description: typeof top["description"] === "string" ? top["description"] : fail("description: want a string"),
    covers: strings(top["covers"] ?? [], "covers"),
    nodes: top["nodes"] === undefined ? ["a"] : strings(top["nodes"], "nodes"),
    node: {},
    steps: [],
  };
  if (s.nodes.length === 0) s.nodes = ["a"];
  if (top["node"] !== undefined) {
    const n = object(top["node"], "node");
    only(n, nodeFields, "node");
    for (const [k, v] of Object.entries(n)) s.node[k] = int(v, `node.${k}`);
  }
  if (!Array.isArray(top["steps"]) || top["steps"].length === 0) fail("no steps");
  if (s.covers.length === 0) fail("covers is empty: say what the scenario proves");
  const clients = new Set<string>();
  (top["steps"] as unknown[]).forEach((v, i) => {
    const st = object(v, `step ${i + 1}`);
    try {
      s.steps.push(checkStep(st, s.nodes, clients));
    } catch (e) {
      fail(`step ${i + 1} (${String(st["op"])}): ${(e as Error).message}`);
    }
  });
  return s;
}

function checkStep(raw: Record<string, unknown>, nodes: string[], clients: Set<string>): Step {
  const op = raw["op"];
  if (typeof op !== "string" || !Object.hasOwn(ops, op)) fail(`unknown op ${JSON.stringify(op)}`);
  const fields = ops[op as string]!;
  const allowed = fields.map((f) => f.replace(/\?$/, ""));
  for (const [k, v] of Object.entries(raw)) {
    if (k === "op") continue;
    if (!allowed.includes(k)) fail(`${op} has no field "${k}"`);
    checkType(k, v);
  }
  const st = raw as unknown as Step;
  for (const f of fields) {
    if (!f.endsWith("?") && !given(raw[f])) fail(`${f} is required`);
  }
  if (st.node && !nodes.includes(st.node)) fail(`unknown node "${st.node}"`);
  if (st.client && op !== "connect" && !clients.has(st.client)) fail(`client "${st.client}" is not connected by an earlier step`);
  const oneOf = (field: keyof Step, values: string[]) => {
    const v = (st[field] as string | undefined) ?? "";
    if (!values.includes(v)) fail(`${field} "${v}": want one of ${values.filter((x) => x).join(", ")}`);
  };
  switch (op) {
    case "connect":
      oneOf("codec", ["", "json", "proto"]);
      oneOf("token", ["", "forged", "expired"]);
      if (!st.error) clients.add(st.client!);
      break;
    case "join":
      if (!st.room === !st.room_type) fail("give exactly one of room and room_type");
      oneOf("mode", ["", "join", "create", "join_or_create"]);
      break;
    case "send":
      oneOf("delivery", ["", "all", "others", "list", "room"]);
      break;
    case "reset":
    case "silence":
    case "throttle":
      oneOf("direction", ["", "up", "down", "both"]);
      break;
    case "expect":
    case "expect_none":
      for (const k of [...(st.skip ?? []), ...(st.kinds ?? [])]) {
        if (!Object.hasOwn(eventFields, k)) fail(`unknown event kind "${k}"`);
      }
      (st.events ?? []).forEach((ev, j) => {
        const kind = ev.kind;
        if (typeof kind !== "string" || !Object.hasOwn(eventFields, kind)) fail(`event ${j + 1}: unknown event kind ${JSON.stringify(kind)}`);
        for (const k of Object.keys(ev)) {
          if (k !== "kind" && !eventFields[kind]!.includes(k)) fail(`event ${j + 1}: ${kind} has no field "${k}"`);
        }
      });
      break;
  }
  if (st.code !== undefined && !Object.values(closeNames).includes(st.code)) fail(`code "${st.code}": not a close code name`);
  return st;
}

// Whether a required field is given: as scenario.go's has (non-empty, positive).
function given(v: unknown): boolean {
  if (typeof v === "string") return v !== "";
  if (typeof v === "number") return v > 0;
  if (Array.isArray(v)) return v.length > 0;
  return v !== undefined && v !== null;
}

function checkType(k: string, v: unknown): void {
  switch (stepFieldTypes[k]) {
    case "string":
      if (typeof v !== "string") fail(`${k}: want a string`);
      return;
    case "int":
      int(v, k);
      return;
    case "bool":
      if (typeof v !== "boolean") fail(`${k}: want true or false`);
      return;
    case "strings":
      strings(v, k);
      return;
    case "error": {
      const e = object(v, k);
      only(e, ["code", "close"], k);
      for (const [f, x] of Object.entries(e)) if (typeof x !== "string") fail(`${k}.${f}: want a string`);
      return;
    }
    case "events":
      if (!Array.isArray(v)) fail(`${k}: want a list`);
      (v as unknown[]).forEach((e, i) => object(e, `event ${i + 1}`));
      return;
    default:
      fail(`unknown field "${k}"`);
  }
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`${what}: want an object`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, fields: string[], what: string): void {
  for (const k of Object.keys(o)) if (!fields.includes(k)) fail(`${what} has no field "${k}"`);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(`${what}: want a list of strings`);
  return v as string[];
}

function int(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(`${what}: want an integer`);
  return v as number;
}

function fail(msg: string): never {
  throw new Error(msg);
}

/**
 * The data of the i-th (1-based) message of a numbered series: "{i}" in
 * template replaced by i, then padded with spaces to size bytes (0: none).
 */
export function expand(template: string, i: number, size = 0): string {
  const s = template.replaceAll("{i}", String(i));
  const n = Buffer.byteLength(s);
  return n < size ? s + " ".repeat(size - n) : s;
}
