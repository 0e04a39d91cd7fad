// WebGLTransport against a real `tandem dev` (TANDEM_BIN), with a stand-in
// for the browser: BrowserStandIn does what TandemWebSocket.jslib does, on
// ClientWebSocket, and calls the same static callbacks the jslib calls. The
// jslib itself runs in a real browser in e2e/webgl_bridge_test.go; here a
// test checks that its functions and callbacks match the C# declarations.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.WebSockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;
using Tandem.Unity;

namespace Tandem.Tests
{
    /// <summary>
    /// The browser's WebSocket as the jslib uses it, on ClientWebSocket: the callbacks of one socket come from
    /// one task, in order (open, messages, close) with the bytes in unmanaged memory; the close of the server's
    /// is answered at once with its code; sends are buffered; a close with a code the browser would refuse
    /// goes as 4000; Free closes an open socket with 4000 and silences it.
    /// </summary>
    sealed class BrowserStandIn : IWebSocketBridge
    {
        sealed class Socket
        {
            public readonly ClientWebSocket Ws = new ClientWebSocket();
            public readonly object Mu = new object(); // held while calling back, so Free silences for good
            public Task Sends = Task.CompletedTask;  // guarded by Mu: the buffered sends, in order
            public bool Open, Closing, Freed;        // guarded by Mu
        }

        readonly Dictionary<int, Socket> sockets = new Dictionary<int, Socket>();
        int opened;

        /// <summary>How many sockets were opened.</summary>
        public int Opened { get { return Volatile.Read(ref opened); } }

        public bool Open(int id, string url, string subprotocol)
        {
            Uri u;
            if (!Uri.TryCreate(url, UriKind.Absolute, out u) || (u.Scheme != "ws" && u.Scheme != "wss")) return false;
            var s = new Socket();
            s.Ws.Options.AddSubProtocol(subprotocol);
            lock (sockets) sockets[id] = s;
            Interlocked.Increment(ref opened);
            Task.Run(() => RunAsync(id, s, u, subprotocol));
            return true;
        }

        async Task RunAsync(int id, Socket s, Uri url, string subprotocol)
        {
            try
            {
                await s.Ws.ConnectAsync(url, CancellationToken.None);
                if (s.Ws.SubProtocol != subprotocol) throw new WebSocketException("another subprotocol"); // the browser fails it
            }
            catch (Exception)
            {
                s.Ws.Abort();
                Failed(id, s);
                return;
            }
            Callback(s, () => { s.Open = !s.Closing; WebGLTransport.OnOpen(id); });
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var msg = new MemoryStream();
                WebSocketReceiveResult r;
                try
                {
                    do
                    {
                        r = await s.Ws.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None);
                        msg.Write(buffer, 0, r.Count);
                    } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                }
                catch (Exception)
                {
                    Failed(id, s);
                    return;
                }
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    int code = r.CloseStatus.HasValue ? (int)r.CloseStatus.Value : 1005;
                    if (s.Ws.State == WebSocketState.CloseReceived)
                        await Buffer(s, () => s.Ws.CloseOutputAsync((WebSocketCloseStatus)code, "", CancellationToken.None));
                    Callback(s, () =>
                    {
                        s.Open = false;
                        WithBytes(Encoding.UTF8.GetBytes(r.CloseStatusDescription ?? ""), (p, n) => WebGLTransport.OnClose(id, code, p, n));
                    });
                    Forget(id, s);
                    s.Ws.Dispose(); // the browser drops the TCP connection once the handshake is over
                    return;
                }
                var data = msg.ToArray();
                bool text = r.MessageType == WebSocketMessageType.Text;
                Callback(s, () => WithBytes(data, (p, n) => WebGLTransport.OnMessage(id, p, n, text ? 1 : 0)));
            }
        }

        void Failed(int id, Socket s)
        {
            Callback(s, () =>
            {
                s.Open = false;
                WebGLTransport.OnError(id);
                WithBytes(new byte[0], (p, n) => WebGLTransport.OnClose(id, 1006, p, n));
            });
            Forget(id, s);
        }

        static void Callback(Socket s, Action a)
        {
            lock (s.Mu)
                if (!s.Freed) a();
        }

        /// <summary>Calls f with a copy of b in unmanaged memory, freed after, as the jslib does with _malloc.</summary>
        static void WithBytes(byte[] b, Action<IntPtr, int> f)
        {
            var p = Marshal.AllocHGlobal(b.Length + 1);
            try
            {
                Marshal.Copy(b, 0, p, b.Length);
                f(p, b.Length);
            }
            finally
            {
                Marshal.FreeHGlobal(p);
            }
        }

        static Task Buffer(Socket s, Func<Task> send)
        {
            lock (s.Mu)
            {
                s.Sends = s.Sends.ContinueWith(_ => send()).Unwrap().ContinueWith(t => { var ignored = t.Exception; });
                return s.Sends;
            }
        }

        Socket Find(int id)
        {
            lock (sockets)
            {
                Socket s;
                return sockets.TryGetValue(id, out s) ? s : null;
            }
        }

        void Forget(int id, Socket s)
        {
            lock (sockets)
            {
                Socket cur;
                if (sockets.TryGetValue(id, out cur) && cur == s) sockets.Remove(id);
            }
        }

        public bool Send(int id, byte[] data, bool text)
        {
            var s = Find(id);
            if (s == null) return false;
            lock (s.Mu) if (!s.Open) return false;
            var copy = (byte[])data.Clone();
            Buffer(s, () => s.Ws.SendAsync(new ArraySegment<byte>(copy), text ? WebSocketMessageType.Text : WebSocketMessageType.Binary, true, CancellationToken.None));
            return true;
        }

        public void Close(int id, int code, string reason)
        {
            var s = Find(id);
            if (s == null) return;
            bool open;
            lock (s.Mu)
            {
                if (s.Closing) return;
                s.Closing = true;
                open = s.Open;
                s.Open = false;
            }
            if (!open)
            {
                s.Ws.Abort(); // still connecting: the browser fails the connection
                return;
            }
            if (code != 1000 && (code < 3000 || code > 4999)) code = 4000;
            Buffer(s, () => s.Ws.CloseOutputAsync((WebSocketCloseStatus)code, reason, CancellationToken.None));
        }

        public void Free(int id)
        {
            var s = Find(id);
            if (s == null) return;
            Forget(id, s);
            bool open;
            lock (s.Mu)
            {
                s.Freed = true;
                open = s.Open && !s.Closing;
                s.Closing = true;
            }
            if (open) Buffer(s, () => s.Ws.CloseOutputAsync((WebSocketCloseStatus)4000, "", CancellationToken.None));
            else if (s.Ws.State == WebSocketState.Connecting || s.Ws.State == WebSocketState.None) s.Ws.Abort();
        }
    }

    [TestFixture]
    public class WebGLTransportTests
    {
        DevServer server;

        [TestFixtureSetUp]
        public void StartServer() { server = DevServer.Start(); }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        /// <summary>Connects as auth over WebGLTransport on bridge; made, if given, collects the transports.</summary>
        static Task<TandemClient> ConnectWebGL(Auth auth, CodecKind codec, IWebSocketBridge bridge, List<WebGLTransport> made = null)
        {
            return E2E.Connect(auth, codec, null, o => o.Transport = () =>
            {
                var t = new WebGLTransport(bridge);
                if (made != null) lock (made) made.Add(t);
                return t;
            });
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task ConnectJoinAndExchangeMessages(CodecKind codec)
        {
            var bridge = new BrowserStandIn();
            var alice = await ConnectWebGL(await E2E.Login(server, "webgl-alice"), codec, bridge);
            var bob = await E2E.Connect(await E2E.Login(server, "bob"), CodecKind.Json);
            Assert.AreEqual(1, bridge.Opened);
            Assert.IsNotEmpty(alice.SessionId);

            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            var br = await bob.JoinAsync(new JoinOptions { Mode = JoinMode.Join, RoomId = ar.Id });
            var joined = await E2E.Next<RoomMemberEvent>(alice);
            Assert.AreEqual(bob.PlayerId, joined.PlayerId);

            await ar.SendAsync("chat", Encoding.UTF8.GetBytes("from the browser ☃"), Delivery.Others);
            var m = await E2E.Next<MessageEvent>(bob);
            Assert.AreEqual(alice.PlayerId, m.From);
            Assert.AreEqual("from the browser ☃", Encoding.UTF8.GetString(m.Data));

            var big = new byte[40 * 1024]; // more than one read of the stand-in's buffer
            new Random(1).NextBytes(big);
            await br.SendAsync("big", big, Delivery.Others);
            m = await E2E.Next<MessageEvent>(alice);
            Assert.AreEqual("big", m.Topic);
            CollectionAssert.AreEqual(big, m.Data);

            // A close of the client's is 1000: the session ends at once, so bob sees alice leave.
            await E2E.CloseAndExpectClosed(alice);
            var left = await E2E.Next<RoomMemberEvent>(bob, e => e.Kind == RoomEventKind.Left);
            Assert.AreEqual(alice.PlayerId, left.PlayerId);
            await E2E.CloseAndExpectClosed(bob);
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public void TheServersCloseCodeSurfaces(CodecKind codec)
        {
            var o = new ClientOptions
            {
                Url = server.Realtime, Codec = codec, Token = ct => Task.FromResult("forged.token.value"),
                Transport = () => new WebGLTransport(new BrowserStandIn()),
            };
            var e = Assert.Throws<CloseException>(() => TandemClient.ConnectAsync(o).GetAwaiter().GetResult());
            Assert.AreEqual(CloseCodes.BadToken, e.Code);
            Assert.AreEqual(CloseClass.Final, e.Class);
            Assert.IsNotNull(e.Server, "the error frame before the close");
            Assert.AreEqual(ErrorCodes.Unauthenticated, e.Server.Code);
        }

        [Test]
        public async Task AnAbortedConnectionResumesTheSession()
        {
            var bridge = new BrowserStandIn();
            var made = new List<WebGLTransport>();
            var alice = await ConnectWebGL(await E2E.Login(server, "webgl-abort"), CodecKind.Binary, bridge, made);
            var room = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            lock (made) made[made.Count - 1].Abort();
            // The browser closed the socket with 4000, not 1000: the server held the session for the resume.
            var resumed = await E2E.Next<ResumedEvent>(alice);
            Assert.IsNotNull(resumed);
            Assert.AreEqual(2, bridge.Opened);
            var rooms = await alice.ListRoomsAsync("relay");
            Assert.IsTrue(rooms.Any(r => r.RoomId == room.Id), "the room lives on");
            await room.SendAsync("still", new byte[] { 1 }, Delivery.All);
            Assert.AreEqual("still", (await E2E.Next<MessageEvent>(alice)).Topic);
            await E2E.CloseAndExpectClosed(alice);
        }

        [Test]
        public void AFailedOpenFailsConnect()
        {
            var t = new WebGLTransport(new BrowserStandIn());
            // A port with nothing behind it: the browser reports an error, then a close with 1006.
            var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            using (var cts = new CancellationTokenSource(E2E.Deadline))
            {
                var e = Assert.Throws<WebSocketException>(() =>
                    t.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/ws"), Codec.JsonSubprotocol, cts.Token).GetAwaiter().GetResult());
                StringAssert.Contains("1006", e.Message);
            }
            var end = t.ReceiveAsync(CancellationToken.None).GetAwaiter().GetResult();
            Assert.IsNull(end.Data);
            Assert.IsNull(end.CloseCode, "no close frame: no code");
            Assert.Throws<WebSocketException>(() => t.SendAsync(new byte[] { 1 }, false, CancellationToken.None).GetAwaiter().GetResult());
            t.Dispose();
        }

        [Test]
        public void OutsideAWebGLBuildItSaysSo()
        {
            Assert.Throws<PlatformNotSupportedException>(() => new WebGLTransport());
        }

        /// <summary>The jslib's text, found from the test assembly (sdk/csharp/bin).</summary>
        static string Jslib()
        {
            var bin = Path.GetDirectoryName(typeof(WebGLTransportTests).Assembly.Location);
            return File.ReadAllText(Path.Combine(bin, "..", "src", "Tandem.Unity", "Plugins", "WebGL", "TandemWebSocket.jslib"));
        }

        [Test]
        public void TheJslibDefinesEachExternWithItsArity()
        {
            var js = Jslib();
            var externs = typeof(WebGLTransport).Assembly.GetType("Tandem.Unity.JsBridge")
                .GetMethods(BindingFlags.Static | BindingFlags.NonPublic)
                .Where(m => m.GetCustomAttributes(typeof(DllImportAttribute), false).Length > 0).ToList();
            CollectionAssert.AreEquivalent(
                new[] { "TandemWebSocketInit", "TandemWebSocketOpen", "TandemWebSocketSend", "TandemWebSocketClose", "TandemWebSocketFree" },
                externs.Select(m => m.Name).ToList());
            foreach (var m in externs)
            {
                var def = Regex.Match(js, @"^\s*" + m.Name + @": function \(([^)]*)\)", RegexOptions.Multiline);
                Assert.IsTrue(def.Success, m.Name + " is not in the jslib");
                int n = def.Groups[1].Value.Trim() == "" ? 0 : def.Groups[1].Value.Split(',').Length;
                Assert.AreEqual(m.GetParameters().Length, n, m.Name + ": parameters");
            }
        }

        [Test]
        public void TheJslibCallsEachCallbackWithItsSignature()
        {
            var js = Jslib();
            var callbacks = new Dictionary<string, Type>
            {
                { "onOpen", typeof(OpenCallback) }, { "onMessage", typeof(MessageCallback) },
                { "onError", typeof(ErrorCallback) }, { "onClose", typeof(CloseCallback) },
            };
            var calls = Regex.Matches(js, @"\{\{\{ makeDynCall\('(\w+)', 'tandemWS\.(\w+)'\) \}\}\}\(([^)]*)\)");
            CollectionAssert.AreEquivalent(callbacks.Keys.ToList(), calls.Cast<Match>().Select(c => c.Groups[2].Value).ToList(),
                "one call of each callback");
            foreach (Match c in calls)
            {
                var sig = c.Groups[1].Value;
                var invoke = callbacks[c.Groups[2].Value].GetMethod("Invoke");
                Assert.AreEqual(typeof(void), invoke.ReturnType);
                Assert.AreEqual('v', sig[0], c.Value);
                var ps = invoke.GetParameters();
                Assert.AreEqual(ps.Length, sig.Length - 1, c.Value + ": the signature's arity");
                Assert.AreEqual(ps.Length, c.Groups[3].Value.Split(',').Length, c.Value + ": the arguments");
                // wasm32: ints and pointers are both 'i'.
                foreach (var p in ps) Assert.IsTrue(p.ParameterType == typeof(int) || p.ParameterType == typeof(IntPtr), c.Value);
                Assert.IsTrue(sig.Substring(1).All(ch => ch == 'i'), c.Value);
            }
            // Each callback is a [MonoPInvokeCallback] of its delegate type, as IL2CPP needs.
            foreach (var kv in callbacks)
            {
                var name = "O" + kv.Key.Substring(1);
                var m = typeof(WebGLTransport).GetMethod(name, BindingFlags.Static | BindingFlags.NonPublic);
                Assert.IsNotNull(m, name);
                var attr = m.GetCustomAttributes(typeof(AOT.MonoPInvokeCallbackAttribute), false);
                Assert.AreEqual(1, attr.Length, name + " lacks [MonoPInvokeCallback]");
            }
        }
    }
}
