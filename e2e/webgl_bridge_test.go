package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	client "github.com/tandemhq/tandem/sdk/go"
)

// jslibPath is the C# SDK's WebGL plugin: the browser side of
// Tandem.Unity.WebGLTransport.
var jslibPath = filepath.Join("..", "sdk", "csharp", "src", "Tandem.Unity", "Plugins", "WebGL", "TandemWebSocket.jslib")

// bridgeResult is what the page reports of one socket's life.
type bridgeResult struct {
	Opened    bool   `json:"opened"`
	Text      bool   `json:"text"`      // the server's message came as text
	PlayerID  string `json:"playerId"`  // of connected
	ErrorCode int    `json:"errorCode"` // of an error frame
	CloseCode int    `json:"closeCode"`
	Reason    string `json:"reason"`
	CloseMs   int    `json:"closeMs"` // from the close (ours, or the server's error frame) to onclose
	Events    string `json:"events"`  // the callbacks of the socket, in order
}

// TestWebGLBridgeTalksToDevInABrowser runs the C# SDK's WebGL jslib, as
// its text is, in Chromium under a small stand-in for what Emscripten gives
// a Unity plugin (the heap, _malloc, the UTF-8 helpers, the function table
// behind makeDynCall): with each subprotocol it opens a WebSocket to a real
// `tandem dev`, sends connect with a guest's realtime token, gets connected
// (as text or binary) and closes with 1000; a forged token gets the error
// frame and the server's close code 4500. A socket freed before it opened
// calls nothing back, and every buffer the plugin allocated is freed.
func TestWebGLBridgeTalksToDevInABrowser(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	jslib, err := os.ReadFile(jslibPath)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(bridgePage))
	})
	mux.HandleFunc("GET /TandemWebSocket.jslib", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(jslib)
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	// The page is a game's origin: the node lets it open WebSockets.
	dev := startDevArgs(t, bins.tandem, t.TempDir(), "--cors-origins", page.URL)

	tab := newBrowserContext(t, browser)
	do(t, tab, "open the page", chromedp.Navigate(page.URL+"/"))
	get(t, tab, "load the jslib", chromedp.Evaluate[bool](`loaded`, chromedp.EvalAwaitPromise))

	for _, sub := range []string{"tandem.v1.json", "tandem.v1.proto"} {
		auth, err := client.LoginGuest(withDeadline(t), client.AuthConfig{BaseURL: dev.web}, "webgl-"+sub, client.NewDeviceSecret())
		if err != nil {
			t.Fatal(err)
		}
		token, err := auth.RealtimeToken(withDeadline(t))
		if err != nil {
			t.Fatal(err)
		}
		r := get(t, tab, "connect over "+sub, chromedp.Evaluate[bridgeResult](
			fmt.Sprintf(`connectAndClose(%q, %q, %q)`, dev.url, sub, token), chromedp.EvalAwaitPromise))
		t.Logf("%s: %+v", sub, r)
		if !r.Opened || r.PlayerID != auth.PlayerID() {
			t.Errorf("%s: got %+v, want connected as %s", sub, r, auth.PlayerID())
		}
		if r.Text != (sub == "tandem.v1.json") {
			t.Errorf("%s: connected came as text=%v", sub, r.Text)
		}
		// The server echoes a close of the client's 1000.
		if r.CloseCode != 1000 {
			t.Errorf("%s: closed with %d, want 1000 (events %s)", sub, r.CloseCode, r.Events)
		}

		r = get(t, tab, "connect with a forged token over "+sub, chromedp.Evaluate[bridgeResult](
			fmt.Sprintf(`connectAndClose(%q, %q, "forged.token.value")`, dev.url, sub), chromedp.EvalAwaitPromise))
		t.Logf("%s, forged token: %+v", sub, r)
		if r.ErrorCode != 3 || r.CloseCode != 4500 || r.Reason == "" {
			t.Errorf("%s: a forged token got %+v, want error 3 (unauthenticated), then close 4500 with a reason", sub, r)
		}
	}

	if n := get(t, tab, "check the freed socket", chromedp.Evaluate[int](`freedSocketEvents()`)); n != 0 {
		t.Errorf("a freed socket called back %d times", n)
	}
	if n := get(t, tab, "count the plugin's buffers", chromedp.Evaluate[int](`allocated.size`)); n != 0 {
		t.Errorf("%d buffers the plugin allocated were not freed", n)
	}
}

// bridgePage loads the jslib into a stand-in for the Emscripten module of a
// Unity WebGL build and plays the C# side: its callbacks log what they get.
const bridgePage = `<!doctype html>
<meta charset="utf-8">
<title>Tandem WebGL bridge</title>
<script>
"use strict";
// --- What Emscripten provides a library: the heap, malloc and free, the
// UTF-8 helpers, and C function pointers (the wasm function table).
var HEAPU8 = new Uint8Array(1 << 20);
var allocated = new Map(); // pointer → size, of the blocks not yet freed
var heapTop = 8;
function _malloc(n) {
  var p = heapTop;
  heapTop += (n + 7) & ~7;
  if (heapTop > HEAPU8.length) throw new Error("out of heap");
  allocated.set(p, n);
  return p;
}
function _free(p) {
  if (!allocated.delete(p)) throw new Error("_free(" + p + "): not allocated");
}
function lengthBytesUTF8(s) { return new TextEncoder().encode(s).length; }
function stringToUTF8(s, p, maxBytes) {
  var b = new TextEncoder().encode(s);
  if (b.length + 1 > maxBytes) throw new Error("stringToUTF8: " + (b.length + 1) + " bytes into " + maxBytes);
  HEAPU8.set(b, p);
  HEAPU8[p + b.length] = 0;
}
function UTF8ToString(p, maxBytes) {
  var end = p;
  while (HEAPU8[end] !== 0 && (maxBytes === undefined || end - p < maxBytes)) end++;
  return new TextDecoder().decode(HEAPU8.subarray(p, end));
}
var wasmTable = [null];
function getWasmTableEntry(i) {
  if (!wasmTable[i]) throw new Error("no function at " + i);
  return wasmTable[i];
}
// addFunction makes f a C function pointer of signature sig: a call with
// other than sig's integer arguments throws, as a wrong dyncall would trap.
function addFunction(f, sig) {
  wasmTable.push(function () {
    if (arguments.length !== sig.length - 1) throw new Error("a " + sig + " function called with " + arguments.length + " arguments");
    for (var i = 0; i < arguments.length; i++)
      if (!Number.isInteger(arguments[i])) throw new Error("argument " + i + " is not an integer: " + arguments[i]);
    f.apply(null, arguments);
  });
  return wasmTable.length - 1;
}

// --- Emscripten's handling of a .jslib: the macros expanded (makeDynCall
// as in a build without DYNCALLS, Unity 6), the file run, then each entry
// emitted from its source text at the top level — $x as var x, f as _f —
// so that entries share only globals, as in a build.
var LibraryManager = { library: {} };
function mergeInto(lib, entries) { Object.assign(lib, entries); }
function autoAddDeps(entries, dep) {
  for (var k in entries)
    if (k[0] !== "$" && !k.endsWith("__deps")) (entries[k + "__deps"] = entries[k + "__deps"] || []).push(dep);
}
var loaded = fetch("/TandemWebSocket.jslib").then(r => r.text()).then(function (src) {
  src = src.replace(/\{\{\{ makeDynCall\('(\w+)', '([\w.]+)'\) \}\}\}/g, (_, sig, ptr) => "getWasmTableEntry(" + ptr + ")");
  if (src.includes("{{{")) throw new Error("a macro the stand-in does not expand");
  (0, eval)(src);
  var lib = LibraryManager.library, deps = new Set();
  for (var k in lib) if (k.endsWith("__deps")) lib[k].forEach(d => deps.add(d));
  for (var k in lib) {
    if (k.endsWith("__deps")) continue;
    if (k[0] === "$") {
      if (deps.has(k)) window[k.slice(1)] = (0, eval)("(" + JSON.stringify(lib[k]) + ")");
    } else {
      window["_" + k] = (0, eval)("(" + lib[k].toString() + ")");
    }
  }
  deps.forEach(d => { if (!(d in lib)) throw new Error("unknown dependency " + d); });
  _TandemWebSocketInit(addFunction(onOpen, "vi"), addFunction(onMessage, "viiii"), addFunction(onError, "vi"), addFunction(onClose, "viiii"));
  return true;
});

// --- The C# side: WebGLTransport's callbacks, logging.
var events = [], waiters = [];
function record(ev) {
  events.push(ev);
  waiters = waiters.filter(w => !w(ev));
}
function onOpen(id) { record({ id: id, type: "open" }); }
function onMessage(id, p, n, text) { record({ id: id, type: "message", text: !!text, bytes: HEAPU8.slice(p, p + n) }); }
function onError(id) { record({ id: id, type: "error" }); }
function onClose(id, code, p, n) {
  record({ id: id, type: "close", code: code, reason: new TextDecoder().decode(HEAPU8.slice(p, p + n)) });
}
// next resolves with socket id's next event of type, failing after 15 s.
function next(id, type) {
  var seen = events.find(e => e.id === id && e.type === type && !e.taken);
  if (seen) { seen.taken = true; return Promise.resolve(seen); }
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(() => reject(new Error("no " + type + " on socket " + id + "; events: " + log(id))), 15000);
    waiters.push(function (e) {
      if (e.id !== id || e.type !== type) return false;
      e.taken = true;
      clearTimeout(timer);
      resolve(e);
      return true;
    });
  });
}
function log(id) { return events.filter(e => e.id === id).map(e => e.type + (e.code ? " " + e.code : "")).join(", "); }

function withString(s, f) {
  var n = lengthBytesUTF8(s) + 1, p = _malloc(n);
  stringToUTF8(s, p, n);
  try { return f(p); } finally { _free(p); }
}
function withBytes(b, f) {
  var p = _malloc(b.length || 1);
  HEAPU8.set(b, p);
  try { return f(p, b.length); } finally { _free(p); }
}

// --- tandem.v1.proto by hand: the few fields the test writes and reads.
function varint(n) { var out = []; while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); } out.push(n); return out; }
function lengthDelimited(field, bytes) { return [].concat(varint(field << 3 | 2), varint(bytes.length), Array.from(bytes)); }
function protoFields(b) {
  var fields = {}, i = 0;
  function read() { var n = 0, m = 1, c; do { c = b[i++]; n += (c & 127) * m; m *= 128; } while (c & 128); return n; }
  while (i < b.length) {
    var tag = read(), field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 0) fields[field] = read();
    else if (wire === 2) { var n = read(); fields[field] = b.subarray(i, i + n); i += n; }
    else throw new Error("wire type " + wire);
  }
  return fields;
}

var lastId = 0, freedId = 0;
// connectAndClose opens a socket with subprotocol sub, sends connect with
// token and reads the answer: connected is closed by us with 1000; an error
// frame is followed by the server's close.
async function connectAndClose(url, sub, token) {
  var id = ++lastId, json = sub === "tandem.v1.json";
  if (!freedId) { // once: a socket freed at once, which must never call back
    freedId = ++lastId;
    withString(url, u => withString(sub, s => _TandemWebSocketOpen(freedId, u, s)));
    _TandemWebSocketFree(freedId);
  }
  var rc = withString(url, u => withString(sub, s => _TandemWebSocketOpen(id, u, s)));
  if (rc !== 0) throw new Error("open: " + rc);
  var result = { opened: false, text: false, playerId: "", errorCode: 0, closeCode: 0, reason: "", closeMs: 0, events: "" };
  await next(id, "open");
  result.opened = true;
  var enc = new TextEncoder(), frame;
  if (json) frame = enc.encode(JSON.stringify({ cid: "1", connect: { token: token, sdk: "webgl-bridge-test ☃" } }));
  else frame = new Uint8Array([8, 1].concat(lengthDelimited(10, [].concat(lengthDelimited(1, enc.encode(token)), lengthDelimited(4, enc.encode("webgl-bridge-test ☃"))))));
  rc = withBytes(frame, (p, n) => _TandemWebSocketSend(id, p, n, json ? 1 : 0));
  if (rc !== 0) throw new Error("send: " + rc);
  var m = await next(id, "message"), started = performance.now();
  result.text = m.text;
  if (json) {
    var env = JSON.parse(new TextDecoder().decode(m.bytes));
    if (env.connected) result.playerId = env.connected.player_id;
    if (env.error) result.errorCode = env.error.code;
  } else {
    var f = protoFields(m.bytes);
    if (f[11]) result.playerId = new TextDecoder().decode(protoFields(f[11])[2]);
    if (f[23]) result.errorCode = protoFields(f[23])[1];
  }
  if (result.playerId) {
    withString("bye", r => _TandemWebSocketClose(id, 1000, r));
    rc = withBytes([1], (p, n) => _TandemWebSocketSend(id, p, n, 0));
    if (rc !== -1) throw new Error("a send after the close: " + rc + ", want -1");
  }
  var c = await next(id, "close");
  result.closeMs = Math.round(performance.now() - started);
  result.closeCode = c.code;
  result.reason = c.reason;
  result.events = log(id);
  _TandemWebSocketFree(id); // nothing left to free: no effect
  return result;
}

// freedSocketEvents counts the callbacks of the freed socket. It was freed
// before four sockets to the same server opened, talked and closed, so its
// own open or close would have come by now.
function freedSocketEvents() { return events.filter(e => e.id === freedId).length; }
</script>
<p>Tandem WebGL bridge test</p>
`
