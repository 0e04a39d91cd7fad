// Test support: the conformance harness server (conformance/cmd/harness,
// API in conformance/README.md, "Harness"), which starts a scenario's
// realtime nodes and a fault proxy per client and node, mints tokens and
// applies faults for the TypeScript driver.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

/**
 * The harness binary, or a reason to skip. Under CI=true a missing binary
 * throws: the suite must fail, never skip.
 */
export function harnessBin(): { bin: string; skip: false } | { bin: ""; skip: string } {
  const bin = process.env.TANDEM_HARNESS_BIN ?? "";
  if (bin && existsSync(bin)) return { bin, skip: false };
  const why = bin
    ? `TANDEM_HARNESS_BIN=${bin} does not exist`
    : "TANDEM_HARNESS_BIN is not set (go build -o /tmp/tandem-harness ./conformance/cmd/harness)";
  if (process.env.CI === "true") throw new Error(`tandem sdk/ts conformance: ${why}`);
  return { bin: "", skip: why };
}

/** An error answer of the harness: its code name (invalid, not_found, rate_limited…). */
export class HarnessError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`harness: ${status} ${code}: ${message}`);
  }
}

/** A node of a running scenario. */
export interface HarnessNode {
  url: string; // ws://127.0.0.1:PORT/ws, also the node's advertised URL
  metrics_url: string;
}

/** A running harness server. */
export class Harness {
  private stderr = "";

  private constructor(
    private readonly proc: ChildProcess,
    private readonly exited: Promise<void>,
    readonly url: string,
  ) {
    proc.stderr!.on("data", (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-16384);
    });
  }

  /**
   * Starts the binary with stdin a pipe (it stops at the end of its stdin,
   * so it dies with this process) and waits for its `harness: URL` line.
   */
  static async start(bin: string, scenarios: string): Promise<Harness> {
    const proc = spawn(bin, ["--scenarios", scenarios], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    const onErr = (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192));
    proc.stderr!.on("data", onErr);
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    const lines = createInterface({ input: proc.stdout! });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`the harness printed no URL within 60s; stderr:\n${stderr}`)), 60_000);
        lines.on("line", (line) => {
          const m = /^harness: (http:\/\/\S+)$/.exec(line.trim());
          if (!m) return;
          clearTimeout(t);
          resolve(m[1]!);
        });
        proc.once("error", (e) => {
          clearTimeout(t);
          reject(e);
        });
        proc.once("exit", (code) => {
          clearTimeout(t);
          reject(new Error(`the harness exited (${code}); stderr:\n${stderr}`));
        });
      });
      proc.stderr!.off("data", onErr);
      const h = new Harness(proc, exited, url);
      h.stderr = stderr;
      return h;
    } catch (e) {
      proc.kill("SIGKILL");
      throw e;
    }
  }

  /** The end of the harness's log (stderr), for a failure's message. */
  get log(): string {
    return this.stderr;
  }

  /** Stops the harness: the end of its stdin, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(t);
  }

  /** Sends a request; answers the decoded JSON body (undefined for 204), or throws a HarnessError. */
  async call<T = unknown>(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const resp = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await resp.text();
    if (!resp.ok) {
      let code = "unknown";
      let message = text;
      try {
        const e = JSON.parse(text) as { code?: string; message?: string };
        code = e.code ?? code;
        message = e.message ?? message;
      } catch {
        // not JSON: keep the text
      }
      throw new HarnessError(resp.status, code, `${method} ${path}: ${message}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Starts a scenario's nodes. While the harness runs as many scenarios as
   * it allows (rate_limited), it asks again until the deadline.
   */
  async startScenario(name: string, timeoutMs = 60_000): Promise<HarnessScenario> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await this.call<{ id: string; nodes: Record<string, HarnessNode> }>("POST", "/scenarios", { name }, timeoutMs);
        return new HarnessScenario(this, r.id, r.nodes);
      } catch (e) {
        if (!(e instanceof HarnessError && e.code === "rate_limited") || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** A running scenario of the harness: its nodes, tokens, proxies and faults. */
export class HarnessScenario {
  constructor(
    private readonly h: Harness,
    readonly id: string,
    readonly nodes: Record<string, HarnessNode>,
  ) {}

  private get base(): string {
    return `/scenarios/${encodeURIComponent(this.id)}`;
  }

  /** Stops the scenario's proxies and nodes. */
  async stop(): Promise<void> {
    await this.h.call("DELETE", this.base);
  }

  /** A fresh realtime token for player (kind: forged, expired, or "" for a good one). */
  async token(player: string, kind = ""): Promise<string> {
    const body: Record<string, string> = { player };
    if (kind) body["kind"] = kind;
    return (await this.h.call<{ token: string }>("POST", `${this.base}/tokens`, body)).token;
  }

  /** The fault proxy of client in front of node: its ws:// URL (the same proxy when asked again). */
  async proxy(client: string, node: string): Promise<string> {
    return (await this.h.call<{ url: string }>("POST", `${this.base}/proxies`, { client, node })).url;
  }

  /** Applies a fault step (op and its fields) to the proxy of client in front of node. */
  async fault(client: string, node: string, fault: Record<string, unknown>): Promise<void> {
    await this.h.call("POST", `${this.proxyPath(client, node)}/fault`, fault);
  }

  /** The connections the client has opened through its proxy in front of node, and those still open. */
  async connections(client: string, node: string): Promise<{ accepted: number; open: number }> {
    return this.h.call("GET", this.proxyPath(client, node));
  }

  /** The node's closes so far, by close code name (absent: 0). */
  async closes(node: string): Promise<Record<string, number>> {
    return this.h.call("GET", `${this.base}/closes?node=${encodeURIComponent(node)}`);
  }

  /** Drains the node; answers once its sessions are closed with node_draining. */
  async drain(node: string, timeoutMs: number, deadlineMs: number): Promise<void> {
    const body: Record<string, unknown> = { node };
    if (timeoutMs > 0) body["timeout_ms"] = timeoutMs;
    await this.h.call("POST", `${this.base}/drain`, body, deadlineMs);
  }

  private proxyPath(client: string, node: string): string {
    return `${this.base}/proxies/${encodeURIComponent(client)}/${encodeURIComponent(node)}`;
  }
}
