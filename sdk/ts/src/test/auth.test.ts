// Auth against a real `tandem dev`: register and email login, refresh
// (shared by concurrent callers, rotated, reuse ending the session), tokens
// kept out of inspect; and against a web server that never answers.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import WebSocket from "ws";
import { Client, Code, LoggedOutError, ServerError, loginEmail, loginGuest, newDeviceSecret, register, type WebSocketConstructor } from "../index.js";
import { startDev, tandemBin, type Dev } from "../testing/dev.js";

const { bin, skip } = tandemBin();

test("a web server that never answers fails the call within the request timeout", async () => {
  const held: IncomingMessage[] = [];
  const server = createServer((req) => held.push(req)); // accepts, reads, never answers
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as { port: number };
    // Long enough for the request to reach the server on a loaded machine: the test is about what follows.
    const login = loginGuest({ baseUrl: `http://127.0.0.1:${port}`, requestTimeoutMs: 1000 }, "device-1", newDeviceSecret());
    await assert.rejects(login, (e) => e instanceof Error && e.name === "TimeoutError");
    assert.equal(held.length, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("auth against tandem dev", { skip }, () => {
  test("inspecting an Auth (console.log on Node) shows none of its tokens", async () => {
    const dev = await startDev(bin);
    try {
      // Every token the web server hands out, the refresh token included, as the Auth got it.
      const tokens: string[] = [];
      const recording: typeof fetch = async (input, init) => {
        const resp = await fetch(input, init);
        const body = (await resp.clone().json().catch(() => ({}))) as Record<string, unknown>;
        for (const k of ["access_token", "refresh_token", "realtime_token"]) if (typeof body[k] === "string") tokens.push(body[k] as string);
        return resp;
      };
      const auth = await loginGuest({ baseUrl: dev.webUrl, fetch: recording }, `device-${newDeviceSecret()}`, newDeviceSecret());
      await auth.refresh(); // the tokens the Auth holds now came from a refresh
      assert.equal(tokens.length, 6);
      const shown = inspect(auth, { depth: Infinity, showHidden: true }) + String(auth) + JSON.stringify(auth);
      for (const t of tokens) {
        assert.ok(!shown.includes(t), `inspect shows a token: ${shown}`);
      }
      assert.match(shown, new RegExp(auth.playerId));
    } finally {
      await dev.stop();
    }
  });
});

/** A refusal of the server with this code. */
function refused(code: number): (e: unknown) => boolean {
  return (e) => e instanceof ServerError && e.code === code;
}

/** A LoggedOutError caused by a refusal with this code. */
function loggedOut(code: number): (e: unknown) => boolean {
  return (e) => e instanceof LoggedOutError && e.cause instanceof ServerError && e.cause.code === code;
}

/** The error p fails with (the test fails if p succeeds). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("it succeeded");
}

const newEmail = () => `ann-${newDeviceSecret().slice(0, 12).toLowerCase()}@example.com`;

describe("email login against tandem dev", { skip }, () => {
  let dev: Dev;
  before(async () => {
    dev = await startDev(bin);
  });
  after(async () => {
    await dev?.stop();
  });

  test("register, then log in with the email and connect", async () => {
    const email = newEmail();
    const reg = await register({ baseUrl: dev.webUrl, deviceId: "device-ann" }, email, "correct horse", "Ann");
    assert.ok(reg.created);
    assert.notEqual(reg.playerId, "");
    assert.notEqual(reg.sessionId, "");

    const again = await loginEmail({ baseUrl: dev.webUrl, deviceId: "device-ann" }, email.toUpperCase(), "correct horse");
    assert.equal(again.playerId, reg.playerId, "the login is the registered player (the email's case does not matter)");
    assert.equal(again.created, false);
    assert.notEqual(again.sessionId, reg.sessionId, "each login is a session of its own");

    // The tokens of the login work: a realtime connection as the player.
    const c = await Client.connect({ url: again.realtimeUrl, token: () => again.realtimeToken(), WebSocket: WebSocket as unknown as WebSocketConstructor });
    try {
      assert.equal(c.playerId, reg.playerId);
    } finally {
      await c.close();
    }
  });

  test("a wrong password is unauthenticated, as an unknown email", async () => {
    const email = newEmail();
    await register({ baseUrl: dev.webUrl }, email, "correct horse");
    const wrong = await failure(loginEmail({ baseUrl: dev.webUrl }, email, "wrong horse"));
    assert.ok(refused(Code.unauthenticated)(wrong), String(wrong));
    assert.equal((wrong as ServerError).codeName, "unauthenticated");
    assert.equal((wrong as ServerError).temporary, false);
    // An unknown email gets the same answer: a login tells nothing about which emails have accounts.
    const unknown = await failure(loginEmail({ baseUrl: dev.webUrl }, newEmail(), "correct horse"));
    assert.ok(refused(Code.unauthenticated)(unknown), String(unknown));
    assert.ok(!String(wrong).includes("wrong horse"), "the error shows the password");
  });

  test("a taken email is a validation error naming it", async () => {
    const email = newEmail();
    await register({ baseUrl: dev.webUrl }, email, "correct horse");
    await assert.rejects(register({ baseUrl: dev.webUrl }, email, "another horse"), (e) =>
      refused(Code.validationFailed)(e) && (e as ServerError).fields.some((f) => f.field === "email"));
  });

  test("a short password is a validation error naming it", async () => {
    await assert.rejects(register({ baseUrl: dev.webUrl }, newEmail(), "short"), (e) =>
      refused(Code.validationFailed)(e) && (e as ServerError).fields.map((f) => f.field).join() === "password");
  });
});

/** One call of an Auth: its path, the refresh token sent, the answer's status and refresh token. */
interface Call {
  path: string;
  sent?: string;
  status: number;
  got?: string;
}

/** A fetch recording every call into calls. */
function recording(calls: Call[]): typeof fetch {
  return async (input, init) => {
    const resp = await fetch(input, init);
    const sent = init?.body ? (JSON.parse(String(init.body)) as { refresh_token?: string }).refresh_token : undefined;
    const got = ((await resp.clone().json().catch(() => ({}))) as { refresh_token?: string }).refresh_token;
    calls.push({ path: new URL(String(input)).pathname, sent, status: resp.status, got });
    return resp;
  };
}

describe("refresh against tandem dev", { skip }, () => {
  // Tokens stale as they arrive, without waiting: access tokens live 1 ns; realtime tokens expire at the
  // next whole second, and the Auth counts from the Date header (whole seconds) + 1 s, so it sees them
  // expired already. Every token wanted therefore takes a request.
  let dev: Dev;
  before(async () => {
    dev = await startDev(bin, ["--player-access-ttl", "1ns", "--realtime-token-ttl", "1s"]);
  });
  after(async () => {
    await dev?.stop();
  });

  const login = (calls: Call[]) => loginGuest({ baseUrl: dev.webUrl, fetch: recording(calls) }, `device-${newDeviceSecret()}`, newDeviceSecret());
  const paths = (calls: Call[]) => calls.map((c) => `${c.path} ${c.status}`);

  test("a realtime token wanted while the access token is stale: one refresh for two callers, rotated; the used token ends the session", async () => {
    const calls: Call[] = [];
    const auth = await login(calls);
    const first = calls[0]!.got!;

    // Two callers at once share one refresh, which uses the login's refresh token.
    const [a, b] = await Promise.all([auth.realtimeToken(), auth.realtimeToken()]);
    assert.equal(a, b);
    assert.deepEqual(paths(calls), ["/api/v1/auth/guest 200", "/api/v1/auth/refresh 200"]);
    assert.equal(calls[1]!.sent, first);
    const rotated = calls[1]!.got!;
    assert.ok(rotated.startsWith("tpr_") && rotated !== first, "the refresh rotated the refresh token");

    // The rotated token works.
    await auth.refresh();
    assert.equal(calls.length, 3);
    assert.deepEqual([calls[2]!.sent, calls[2]!.status], [rotated, 200]);
    const current = calls[2]!.got!;

    // The login's token again: a reuse. (Not the token used up last, which the server honours once within
    // 30 s, for a client whose answer was lost: docs/players.md.) It is refused and the whole session ends.
    const reuse = await fetch(`${dev.webUrl}/api/v1/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: first }),
    });
    assert.equal(reuse.status, 401);
    assert.equal(((await reuse.json()) as { code: number }).code, Code.unauthenticated);

    // So the Auth's own refresh token is refused too: it is logged out, and stays so without asking again.
    await assert.rejects(auth.realtimeToken(), loggedOut(Code.unauthenticated));
    assert.equal(calls.length, 4);
    assert.deepEqual([calls[3]!.path, calls[3]!.sent, calls[3]!.status], ["/api/v1/auth/refresh", current, 401]);
    await assert.rejects(auth.accessToken(), (e) => e instanceof LoggedOutError);
    await assert.rejects(auth.refresh(), (e) => e instanceof LoggedOutError);
    assert.equal(calls.length, 4);
  });

  test("two refreshes at once share one request", async () => {
    const calls: Call[] = [];
    const auth = await login(calls);
    // Two requests would present one refresh token twice: the server honours the second as a retry and
    // takes the pair the first got as used, so the Auth could keep a dead token.
    await Promise.all([auth.refresh(), auth.refresh()]);
    assert.deepEqual(paths(calls), ["/api/v1/auth/guest 200", "/api/v1/auth/refresh 200"]);
    // The Auth holds the token that refresh got, and it works.
    await auth.refresh();
    assert.deepEqual([calls[2]!.sent, calls[2]!.status], [calls[1]!.got, 200]);
  });

  test("an access token wanted while stale takes one refresh", async () => {
    const calls: Call[] = [];
    const auth = await login(calls);
    // The new access token is as fresh as the server allows: the Auth does not ask again.
    assert.match(await auth.accessToken(), /^tpa_/);
    assert.deepEqual(paths(calls), ["/api/v1/auth/guest 200", "/api/v1/auth/refresh 200"]);
  });
});
