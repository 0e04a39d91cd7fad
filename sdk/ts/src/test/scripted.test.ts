// The client against scripted realtime nodes: WebSocket servers that play
// the server's side of conditions a single `tandem dev` cannot produce, such
// as a second node refusing a seat.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import WebSocket, { WebSocketServer } from "ws";
import { codecFor } from "../codec.js";
import { EnvelopeSchema, type Envelope } from "../gen/tandem_pb.js";
import { Client, CloseCode, CloseError, Code, TicketEndedError, type ClientEvents, type ClientOptions, type WebSocketConstructor } from "../index.js";
import { eventually } from "../testing/dev.js";

const codec = codecFor("tandem.v1.json");

type Body = MessageInitShape<typeof EnvelopeSchema>["body"];

/** A scripted node: it answers every connect with connected and hands each frame after it to onFrame. */
class ScriptedNode {
  readonly server: WebSocketServer;
  readonly connects: Envelope[] = [];
  readonly sockets: WebSocket[] = [];
  onConnect: (ws: WebSocket, connect: Envelope) => void = (ws) => this.connected(ws);
  onFrame: (ws: WebSocket, env: Envelope) => void = () => {};

  constructor(readonly id: string) {
    this.server = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => codec.subprotocol });
    this.server.on("connection", (ws) => {
      this.sockets.push(ws);
      ws.on("message", (data, binary) => {
        const env = codec.decode(binary ? new Uint8Array(data as Buffer) : data.toString());
        if (env.body.case === "connect") {
          this.connects.push(env);
          this.onConnect(ws, env);
        } else this.onFrame(ws, env);
      });
    });
  }

  async listening(): Promise<string> {
    if (!this.server.address()) await new Promise((resolve) => this.server.once("listening", resolve));
    const a = this.server.address() as { port: number };
    return `ws://127.0.0.1:${a.port}/ws`;
  }

  connected(ws: WebSocket): void {
    send(ws, { case: "connected", value: { sessionId: `s-${this.id}`, playerId: "p1", resumeToken: "r", heartbeatMs: 60_000, node: this.id } });
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function send(ws: WebSocket, body: Body, cid = 0n): void {
  ws.send(codec.encode(create(EnvelopeSchema, { cid, body })));
}

function connect(url: string, log?: ClientOptions["log"]): Promise<Client> {
  return Client.connect({ url, token: async () => "t", WebSocket: WebSocket as unknown as WebSocketConstructor, minBackoffMs: 1, maxBackoffMs: 5, log });
}

describe("client against scripted nodes", () => {
  const nodes: ScriptedNode[] = [];
  const clients: Client[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.close()));
  });

  async function node(id: string): Promise<{ node: ScriptedNode; url: string }> {
    const n = new ScriptedNode(id);
    nodes.push(n);
    return { node: n, url: await n.listening() };
  }

  async function disconnectAfter(bodies: Body[]): Promise<CloseError> {
    const { node: n, url } = await node("n1");
    n.onConnect = (ws) => {
      n.connected(ws);
      for (const b of bodies) send(ws, b);
      ws.close(CloseCode.serverRestart);
    };
    const c = await connect(url);
    clients.push(c);
    const lost = new Promise<ClientEvents["disconnected"]>((resolve) => c.on("disconnected", resolve));
    const { error } = await lost;
    await c.close();
    assert.ok(error instanceof CloseError);
    return error;
  }

  test("an error frame right before a close explains the close", async () => {
    const err = await disconnectAfter([{ case: "error", value: { code: Code.unavailable, message: "restarting" } }]);
    assert.equal(err.server?.code, Code.unavailable);
  });

  test("an error frame followed by another frame does not explain a later close", async () => {
    const err = await disconnectAfter([
      { case: "error", value: { code: Code.rateLimited, message: "slow down" } },
      { case: "notice", value: { kind: "info", text: "hello" } },
    ]);
    assert.equal(err.code, CloseCode.serverRestart);
    assert.equal(err.server, undefined);
  });

  test("a seat the room's node refuses at connect is gone: matchmake waits for the next status", async () => {
    const { node: a, url: urlA } = await node("a");
    const { node: b, url: urlB } = await node("b");
    // The room's node refuses the seat token as the server does: an error frame, then a rejoin-class close.
    b.onConnect = (ws) => {
      send(ws, { case: "error", value: { code: Code.notFound, message: "seat not found" } });
      ws.close(CloseCode.sessionExpired);
    };
    const status = (state: string, extra: Record<string, unknown> = {}): Body => ({
      case: "ticketStatus",
      value: { ticketId: "t1", queue: "duel", state, ...extra },
    });
    let ticketWs: WebSocket | undefined;
    a.onFrame = (ws, env) => {
      if (env.body.case !== "ticketCreate") return;
      ticketWs = ws;
      send(ws, status("searching"), env.cid);
      const seat = { roomId: "r1", nodeUrl: urlB, seatToken: "seat-1", expiresAtMs: BigInt(Date.now() + 600_000), node: "b" };
      send(ws, status("matched", { seat }));
    };
    const failures: string[] = [];
    const c = await connect(urlA, (msg, attrs) => {
      if (msg === "the seat could not be taken") failures.push(String(attrs?.["err"]));
    });
    clients.push(c);

    const mm = c.matchmake({ queue: "duel" });
    const failure = await eventually("the refused seat", () => failures[0]);
    assert.match(failure, /not_found/);
    // A retry would dial b again within the 5 ms maximum backoff; the ticket ending ends the wait.
    send(ticketWs!, status("expired", { reason: "timeout" }));
    await assert.rejects(mm, (e) => e instanceof TicketEndedError && e.status.state === "expired");
    assert.equal(b.connects.length, 1);
    assert.equal(b.connects[0]!.body.case === "connect" && b.connects[0]!.body.value.seatToken, "seat-1");
    assert.equal(c.node, "a");
  });
});
