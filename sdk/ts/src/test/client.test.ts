// The client against a real `tandem dev`: login, both codecs, a relay room,
// RPC errors, and a resume after the client's socket is cut.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import {
  Client,
  CloseCode,
  CloseError,
  Code,
  LeaveReason,
  RoomEventKind,
  JoinMode,
  ServerError,
  loginGuest,
  newDeviceSecret,
  type ClientEvents,
  type CodecName,
  type WebSocketConstructor,
} from "../index.js";
import { eventually, startDev, tandemBin, trackedWebSocket, type Dev } from "../testing/dev.js";

const { bin, skip } = tandemBin();
const text = new TextEncoder();
const untext = new TextDecoder();

/** Every event of a client, in order, as [name, event]. */
function record(c: Client): [keyof ClientEvents, unknown][] {
  const seen: [keyof ClientEvents, unknown][] = [];
  const names: (keyof ClientEvents)[] = ["joined", "message", "left", "roomEvent", "gap", "error", "disconnected", "resumed", "sessionLost", "closed"];
  for (const n of names) c.on(n, (ev) => seen.push([n, ev]));
  return seen;
}

describe("client against tandem dev", { skip }, () => {
  let dev: Dev;
  const clients: Client[] = [];

  before(async () => {
    dev = await startDev(bin);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await dev?.stop();
  });

  async function player(codec: CodecName, WS: WebSocketConstructor = WebSocket as unknown as WebSocketConstructor): Promise<Client> {
    const auth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    assert.ok(auth.created);
    assert.equal(auth.realtimeUrl, dev.realtimeUrl);
    const c = await Client.connect({
      url: auth.realtimeUrl,
      token: () => auth.realtimeToken(),
      locate: () => auth.locate(),
      WebSocket: WS,
      codec,
    });
    clients.push(c);
    assert.equal(c.playerId, auth.playerId);
    return c;
  }

  for (const codec of ["tandem.v1.json", "tandem.v1.proto"] as const) {
    test(`guest login and connect with ${codec}`, async () => {
      const c = await player(codec);
      assert.notEqual(c.sessionId, "");
      assert.notEqual(c.node, "");
      const rooms = await c.listRooms("relay");
      assert.ok(Array.isArray(rooms));
    });
  }

  test("two clients in a relay room exchange a message (one per codec)", async () => {
    const a = await player("tandem.v1.json");
    const b = await player("tandem.v1.proto");
    const seenA = record(a);
    const seenB = record(b);
    const room = await a.join({ mode: JoinMode.CREATE, roomType: "relay" });
    assert.equal(room.type, "relay");
    const roomB = await b.join({ roomId: room.id });
    assert.equal(roomB.id, room.id);
    await eventually("a sees b join", () => seenA.some(([n, e]) => n === "roomEvent" && (e as ClientEvents["roomEvent"]).playerId === b.playerId));

    roomB.send("chat", text.encode("hello from b"), { others: true });
    const got = await eventually("a gets b's message", () =>
      seenA.find(([n]) => n === "message")?.[1] as ClientEvents["message"] | undefined,
    );
    assert.equal(got.from, b.playerId);
    assert.equal(got.topic, "chat");
    assert.equal(untext.decode(got.data), "hello from b");
    assert.equal(got.room, room);

    room.send("chat", text.encode("hi b"));
    await eventually("b gets a's message", () =>
      seenB.some(([n, e]) => n === "message" && untext.decode((e as ClientEvents["message"]).data) === "hi b"),
    );

    await roomB.leave();
    assert.ok(seenB.some(([n]) => n === "left"));
    assert.throws(() => roomB.send("chat", text.encode("late")), /room left/);
  });

  test("an unknown RPC fails with unknown_rpc", async () => {
    for (const codec of ["tandem.v1.json", "tandem.v1.proto"] as const) {
      const c = await player(codec);
      await assert.rejects(c.rpc("no.such.method", text.encode("{}")), (e: unknown) => {
        assert.ok(e instanceof ServerError);
        assert.equal(e.code, Code.unknownRpc);
        assert.equal(e.codeName, "unknown_rpc");
        return true;
      });
    }
  });

  test("a client whose socket is cut resumes, and no message is lost or doubled", async () => {
    for (const codec of ["tandem.v1.json", "tandem.v1.proto"] as const) {
      const { WS, sockets } = trackedWebSocket();
      const a = await player(codec, WS);
      const b = await player(codec);
      const seenA = record(a);
      const seenB = record(b);
      const room = await a.join({ mode: JoinMode.CREATE, roomType: "relay" });
      const roomB = await b.join({ roomId: room.id });
      const session = a.sessionId;

      sockets.at(-1)!.terminate(); // the client side drops the TCP connection, no close frame
      // While a is away: b's message waits for a in the room's buffer, and
      // a's own message waits in a's resend buffer.
      roomB.send("chat", text.encode("while away"));
      room.send("chat", text.encode("sent while cut"));

      await eventually("a resumes", () => seenA.some(([n]) => n === "resumed"));
      assert.ok(seenA.some(([n]) => n === "disconnected"));
      assert.equal(a.sessionId, session);
      assert.ok(!seenA.some(([n]) => n === "sessionLost"));

      const msgs = (seen: [keyof ClientEvents, unknown][]) =>
        seen.filter(([n]) => n === "message").map(([, e]) => untext.decode((e as ClientEvents["message"]).data));
      await eventually("a gets b's message", () => msgs(seenA).includes("while away") && msgs(seenA).includes("sent while cut"));
      await eventually("b gets a's message", () => msgs(seenB).includes("sent while cut"));
      // One more round trip, so that a duplicate would have arrived by now.
      roomB.send("chat", text.encode("after"));
      await eventually("a gets the next message", () => msgs(seenA).includes("after"));
      assert.deepEqual(msgs(seenA).sort(), ["after", "sent while cut", "while away"]);
      assert.deepEqual(msgs(seenB).filter((m) => m === "sent while cut"), ["sent while cut"]);
    }
  });
});

describe("client against tandem dev with a small replay buffer", { skip }, () => {
  let dev: Dev;
  const clients: Client[] = [];

  before(async () => {
    dev = await startDev(bin, ["--replay-count", "4"]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await dev?.stop();
  });

  test("a resume past the room's buffer gets a gap with the room's state", async () => {
    const auth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    // The test holds a's reconnect back until b's messages are past the buffer.
    let release = () => {};
    let gate = Promise.resolve();
    const { WS, sockets } = trackedWebSocket();
    const a = await Client.connect({
      url: auth.realtimeUrl,
      token: async () => {
        await gate;
        return auth.realtimeToken();
      },
      WebSocket: WS,
    });
    clients.push(a);
    const bAuth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    const b = await Client.connect({ url: bAuth.realtimeUrl, token: () => bAuth.realtimeToken(), WebSocket: WebSocket as unknown as WebSocketConstructor });
    clients.push(b);
    const seenA = record(a);
    const seenB = record(b);
    const room = await a.join({ mode: JoinMode.CREATE, roomType: "relay" });
    const roomB = await b.join({ roomId: room.id });

    gate = new Promise((resolve) => (release = resolve));
    sockets.at(-1)!.terminate();
    for (let i = 0; i < 10; i++) roomB.send("chat", text.encode(`m${i}`));
    await eventually("b gets its own messages", () => seenB.filter(([n]) => n === "message").length === 10);
    release();

    const gap = await eventually("a gets a gap", () => seenA.find(([n]) => n === "gap")?.[1] as ClientEvents["gap"] | undefined);
    assert.equal(gap.room, room);
    assert.equal(gap.epoch, 2);
    assert.ok(seenA.some(([n]) => n === "resumed"));
    roomB.send("chat", text.encode("after the gap"));
    await eventually("a gets the next message", () =>
      seenA.some(([n, e]) => n === "message" && untext.decode((e as ClientEvents["message"]).data) === "after the gap"),
    );
    // The frames in between are not sent: the gap takes their place.
    assert.ok(!seenA.some(([n, e]) => n === "message" && untext.decode((e as ClientEvents["message"]).data) === "m0"));
  });
});

describe("close classes against tandem dev", { skip }, () => {
  let dev: Dev;
  const clients: Client[] = [];

  before(async () => {
    dev = await startDev(bin, ["--seat-hold", "1s"]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await dev?.stop();
  });

  test("a second login of the player ends the first client with duplicate_session (final)", async () => {
    const auth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    const opts = { url: auth.realtimeUrl, token: () => auth.realtimeToken(), WebSocket: WebSocket as unknown as WebSocketConstructor };
    const first = await Client.connect(opts);
    clients.push(first);
    const seen = record(first);
    const second = await Client.connect(opts);
    clients.push(second);
    const closed = await eventually("closed", () => seen.find(([n]) => n === "closed")?.[1] as ClientEvents["closed"] | undefined);
    assert.ok(closed.error instanceof CloseError);
    assert.equal(closed.error.code, CloseCode.duplicateSession);
    assert.ok(!seen.some(([n]) => n === "disconnected"));
    await assert.rejects(first.rpc("x"), /duplicate|closed/);
    await assert.rejects(second.rpc("no.such"), (e: unknown) => e instanceof ServerError && e.code === Code.unknownRpc);
  });

  test("a client away longer than the seat hold starts a new session (rejoin)", async () => {
    const auth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    let release = () => {};
    let gate = Promise.resolve();
    const { WS, sockets } = trackedWebSocket();
    const a = await Client.connect({
      url: auth.realtimeUrl,
      token: async () => {
        await gate;
        return auth.realtimeToken();
      },
      WebSocket: WS,
    });
    clients.push(a);
    const bAuth = await loginGuest({ baseUrl: dev.webUrl }, `device-${newDeviceSecret()}`, newDeviceSecret());
    const b = await Client.connect({ url: bAuth.realtimeUrl, token: () => bAuth.realtimeToken(), WebSocket: WebSocket as unknown as WebSocketConstructor });
    clients.push(b);
    const seenA = record(a);
    const seenB = record(b);
    const room = await a.join({ mode: JoinMode.CREATE, roomType: "relay" });
    await b.join({ roomId: room.id });
    const session = a.sessionId;

    gate = new Promise((resolve) => (release = resolve));
    sockets.at(-1)!.terminate();
    await eventually("b sees a's seat expire", () =>
      seenB.some(([n, e]) => {
        const ev = e as ClientEvents["roomEvent"];
        return n === "roomEvent" && ev.kind === RoomEventKind.ROOM_EVENT_LEFT && ev.reason === LeaveReason.SEAT_EXPIRED;
      }),
    );
    release();
    const lost = await eventually("a loses its session", () => seenA.find(([n]) => n === "sessionLost")?.[1] as ClientEvents["sessionLost"] | undefined);
    assert.deepEqual(lost.rooms, [room.id]);
    assert.notEqual(a.sessionId, session);
    assert.throws(() => room.send("chat"), /session lost/);
    assert.equal((await a.join({ roomId: room.id })).id, room.id);
  });
});
