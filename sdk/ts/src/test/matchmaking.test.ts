// Matchmaking against a real `tandem dev`: a queue made through the admin
// API, and two clients matched into one room.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { Client, Code, ServerError, loginGuest, newDeviceSecret, type TicketStatus, type WebSocketConstructor } from "../index.js";
import { eventually, operatorSession, putQueue, startDev, tandemBin, type Dev } from "../testing/dev.js";

const { bin, skip } = tandemBin();

describe("matchmaking against tandem dev", { skip }, () => {
  let dev: Dev;
  const clients: Client[] = [];

  before(async () => {
    dev = await startDev(bin, ["--match-tick", "100ms"]);
    const cookie = await operatorSession(dev);
    await putQueue(dev, cookie, "duel", { room_type: "relay", teams: 2, team_size: 1 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await dev?.stop();
  });

  async function player(codec: "tandem.v1.json" | "tandem.v1.proto"): Promise<Client> {
    const auth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    const c = await Client.connect({
      url: auth.realtimeUrl,
      token: () => auth.realtimeToken(),
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      codec,
    });
    clients.push(c);
    return c;
  }

  test("two clients are matched into one room", async () => {
    const a = await player("tandem.v1.json");
    const b = await player("tandem.v1.proto");
    // The queue reaches the node through the bus within moments.
    await eventually("the queue on the node", async () => {
      try {
        await a.createTicket({ queue: "duel" });
      } catch (e) {
        if (e instanceof ServerError && e.code === Code.notFound) return false;
        throw e;
      }
      const s = await a.cancelTicket("duel");
      assert.equal(s.state, "cancelled");
      return true;
    });

    const progressA: TicketStatus[] = [];
    const [roomA, roomB] = await Promise.all([
      a.matchmake({ queue: "duel" }, { onProgress: (s) => progressA.push(s) }),
      b.matchmake({ queue: "duel" }),
    ]);
    assert.equal(roomA.id, roomB.id);
    assert.equal(roomA.type, "relay");
    assert.equal(progressA[0]?.state, "searching");
    assert.ok(progressA.some((s) => s.state === "matched"));

    const got = new Promise<string>((resolve) => b.on("message", (e) => resolve(new TextDecoder().decode(e.data))));
    roomA.send("hello", new TextEncoder().encode("matched"));
    assert.equal(await got, "matched");
  });

  test("matchmake ends when its signal is aborted", async () => {
    const c = await player("tandem.v1.json");
    const ac = new AbortController();
    const p = c.matchmake({ queue: "duel" }, { signal: ac.signal, onProgress: (s) => s.state === "searching" && ac.abort(new Error("stop")) });
    await assert.rejects(p, /stop/);
    await eventually("the ticket cancelled", async () => (await c.ticket("duel")).state === "cancelled");
  });
});
