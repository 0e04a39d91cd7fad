// Auth against a real `tandem dev`, and against a web server that never answers.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import { inspect } from "node:util";
import { loginGuest, newDeviceSecret } from "../index.js";
import { startDev, tandemBin } from "../testing/dev.js";

const { bin, skip } = tandemBin();

test("a web server that never answers fails the call within the request timeout", async () => {
  const held: IncomingMessage[] = [];
  const server = createServer((req) => held.push(req)); // accepts, reads, never answers
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as { port: number };
    const login = loginGuest({ baseUrl: `http://127.0.0.1:${port}`, requestTimeoutMs: 50 }, "device-1", newDeviceSecret());
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
