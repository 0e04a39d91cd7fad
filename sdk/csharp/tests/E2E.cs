// Helpers of the end-to-end tests: login, connect, waiting for events with
// a deadline, and transports the tests can cut.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    /// <summary>
    /// Transports the test can cut or keep from connecting, as a network would: the SDK has no method that
    /// pretends to disconnect.
    /// </summary>
    public sealed class Transports
    {
        readonly List<ClientWebSocketTransport> all = new List<ClientWebSocketTransport>();
        volatile bool refuse;

        /// <summary>While set, every new connection fails to open.</summary>
        public bool Refuse { get { return refuse; } set { refuse = value; } }

        public ITransport New() { return new Tapped(this); }

        /// <summary>
        /// While held, the frames each connection receives are kept, in order, from the client until a frame
        /// arrives after ReleaseReceives; Kept looks at them meanwhile.
        /// </summary>
        public void HoldReceives() { lock (all) if (receiveGate.Task.IsCompleted) receiveGate = new TaskCompletionSource<bool>(); }
        public void ReleaseReceives() { lock (all) receiveGate.TrySetResult(true); }
        public bool Kept(Func<byte[], bool> match) { lock (all) return kept.Exists(m => m.Data != null && match(m.Data)); }
        TaskCompletionSource<bool> receiveGate = Opened();
        readonly List<TransportMessage> kept = new List<TransportMessage>();

        static TaskCompletionSource<bool> Opened()
        {
            var g = new TaskCompletionSource<bool>();
            g.SetResult(true);
            return g;
        }

        Task ReceiveGate { get { lock (all) return receiveGate.Task; } }

        public int Count { get { lock (all) return all.Count; } }
        public void AbortLatest() { lock (all) all[all.Count - 1].Abort(); }

        sealed class Tapped : ITransport
        {
            readonly Transports owner;
            readonly ClientWebSocketTransport inner = new ClientWebSocketTransport();
            readonly Queue<TransportMessage> keep = new Queue<TransportMessage>(); // the reader's only

            public Tapped(Transports owner) { this.owner = owner; }

            public Task ConnectAsync(Uri url, string subprotocol, CancellationToken ct)
            {
                if (owner.refuse) throw new System.Net.WebSockets.WebSocketException("refused by the test");
                lock (owner.all) owner.all.Add(inner);
                return inner.ConnectAsync(url, subprotocol, ct);
            }

            public Task SendAsync(byte[] data, bool text, CancellationToken ct) { return inner.SendAsync(data, text, ct); }

            public async Task<TransportMessage> ReceiveAsync(CancellationToken ct)
            {
                while (true)
                {
                    var open = owner.ReceiveGate.IsCompleted;
                    if (open && keep.Count > 0) return keep.Dequeue();
                    var m = await inner.ReceiveAsync(ct);
                    if (open && keep.Count == 0) return m;
                    keep.Enqueue(m);
                    lock (owner.all) owner.kept.Add(m);
                    if (m.Data == null) await owner.ReceiveGate; // the end: nothing more to read
                }
            }
            public Task CloseAsync(int code, string reason, CancellationToken ct) { return inner.CloseAsync(code, reason, ct); }
            public void Abort() { inner.Abort(); }
            public void Dispose() { inner.Dispose(); }
        }
    }

    public static class E2E
    {
        public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

        public static async Task<Auth> Login(DevServer server, string device)
        {
            return await Auth.LoginGuestAsync(server.Web, device + "-" + Guid.NewGuid().ToString("N").Substring(0, 8), Auth.NewDeviceSecret());
        }

        /// <summary>Connects as auth; with, if given, changes the options first.</summary>
        public static async Task<TandemClient> Connect(Auth auth, CodecKind codec, Transports tap = null, Action<ClientOptions> with = null)
        {
            var o = new ClientOptions
            {
                Url = auth.RealtimeUrl, Token = auth.RealtimeTokenAsync, Locate = auth.LocateAsync, Codec = codec,
                MinBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(200),
            };
            if (tap != null) o.Transport = tap.New;
            if (with != null) with(o);
            using (var cts = new CancellationTokenSource(Deadline))
                return await TandemClient.ConnectAsync(o, cts.Token);
        }

        /// <summary>The client's next event of type T, passing over others; fails after the deadline.</summary>
        public static async Task<T> Next<T>(TandemClient c, Func<T, bool> match = null) where T : TandemEvent
        {
            using (var cts = new CancellationTokenSource(Deadline))
            {
                var passed = new List<string>();
                while (true)
                {
                    TandemEvent ev;
                    try { ev = await c.NextEventAsync(cts.Token); }
                    catch (OperationCanceledException) { throw new AssertionException("no " + typeof(T).Name + " within " + Deadline + "; passed over: " + string.Join(", ", passed)); }
                    if (ev == null) throw new AssertionException("the client stopped before a " + typeof(T).Name + "; passed over: " + string.Join(", ", passed));
                    var t = ev as T;
                    if (t != null && (match == null || match(t))) return t;
                    passed.Add(ev.GetType().Name);
                }
            }
        }

        public static async Task CloseAndExpectClosed(TandemClient c)
        {
            await c.CloseAsync();
            var closed = await Next<ClosedEvent>(c);
            Assert.IsInstanceOf<ClientClosedException>(closed.Error);
            Assert.IsNull(await c.NextEventAsync(), "no event after Closed");
        }

        /// <summary>Polls cond until it holds or the deadline passes.</summary>
        public static async Task Eventually(Func<bool> cond, string what)
        {
            for (var until = DateTime.UtcNow + Deadline; !cond(); await Task.Delay(20))
                if (DateTime.UtcNow > until) Assert.Fail(what + ": not within " + Deadline);
        }
    }
}
