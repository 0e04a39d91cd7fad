// Test support: a real `tandem dev` (the binary TANDEM_BIN names) on random
// ports in a temporary data directory, and polling with a deadline.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import type { WebSocketConstructor } from "../conn.js";

/**
 * The tandem binary, or a reason to skip. Under CI=true a missing binary
 * throws: the suite must fail, never skip.
 */
export function tandemBin(): { bin: string; skip: false } | { bin: ""; skip: string } {
  const bin = process.env.TANDEM_BIN ?? "";
  if (bin && existsSync(bin)) return { bin, skip: false };
  const why = bin ? `TANDEM_BIN=${bin} does not exist` : "TANDEM_BIN is not set (go build -o /tmp/tandem-ts ./cmd/tandem)";
  if (process.env.CI === "true") throw new Error(`tandem sdk/ts tests: ${why}`);
  return { bin: "", skip: why };
}

/** A running `tandem dev`. */
export interface Dev {
  bin: string;
  dataDir: string;
  webUrl: string; // http://127.0.0.1:PORT
  realtimeUrl: string; // ws://127.0.0.1:PORT/ws
  stop(): Promise<void>;
}

/** Starts `tandem dev` on random ports and waits until it prints its URLs. */
export async function startDev(bin: string, extraArgs: string[] = []): Promise<Dev> {
  const dataDir = await mkdtemp(join(tmpdir(), "tandem-ts-"));
  const proc = spawn(bin, ["dev", "--data-dir", dataDir, "--web-listen", "127.0.0.1:0", "--realtime-listen", "127.0.0.1:0",
    // Rooms left open by a test must not hold the shutdown up.
    "--drain-timeout", "200ms", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const urls = await new Promise<{ web: string; rt: string }>((resolve, reject) => {
    let web = "";
    let rt = "";
    const t = setTimeout(() => reject(new Error(`tandem dev printed no URLs within 60s; stderr:\n${stderr}`)), 60_000);
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      const m = /^\s*(web|realtime):\s+(\S+)/.exec(line);
      if (m?.[1] === "web") web = new URL(m[2]!).origin;
      if (m?.[1] === "realtime") rt = m[2]!;
      if (web && rt) {
        clearTimeout(t);
        resolve({ web, rt });
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`tandem dev exited (${code}); stderr:\n${stderr}`));
    });
  }).catch(async (e) => {
    proc.kill("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  });
  return {
    bin,
    dataDir,
    webUrl: urls.web,
    realtimeUrl: urls.rt,
    async stop() {
      await stopProcess(proc, exited);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(t);
}

/** Creates an operator admin with `tandem admin create` and logs it in; answers the session cookie. */
export async function operatorSession(dev: Dev, name = "op", password = "operator-password-1"): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(
      dev.bin,
      ["admin", "create", "--db", `sqlite:${join(dev.dataDir, "tandem.db")}`, "--audit-key", join(dev.dataDir, "audit-key.pem"),
        "--admin-name", name, "--role", "operator", "--password-stdin"],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    let err = "";
    p.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    p.stdin!.end(password + "\n");
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`admin create: ${code}: ${err}`))));
  });
  const resp = await fetch(`${dev.webUrl}/api/admin/v1/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name, password }),
  });
  if (!resp.ok) throw new Error(`admin login: ${resp.status} ${await resp.text()}`);
  return resp.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
}

/** PUTs a matchmaking queue through the admin API. */
export async function putQueue(dev: Dev, cookie: string, name: string, queue: Record<string, unknown>): Promise<void> {
  const resp = await fetch(`${dev.webUrl}/api/admin/v1/matchmaking/queues/${name}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", Cookie: cookie },
    body: JSON.stringify(queue),
  });
  if (!resp.ok) throw new Error(`PUT queue: ${resp.status} ${await resp.text()}`);
}

/** The `ws` WebSocket, remembering every socket it opens (tests cut them). */
export function trackedWebSocket(): { WS: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WS: Tracked as unknown as WebSocketConstructor, sockets };
}

/** Polls fn until it returns a value other than undefined/false, or the deadline passes. */
export async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
