// ITransport on the browser's WebSocket, for Unity WebGL builds, where
// System.Net.WebSockets has no sockets to use. Plugins/WebGL/
// TandemWebSocket.jslib holds the socket and calls the static callbacks
// below, which find the transport by the id it gave its socket. The calls
// into JavaScript sit behind IWebSocketBridge, so that tests run this logic
// under mono with a real WebSocket standing in for the browser.
using System;
using System.Collections.Generic;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

[assembly: InternalsVisibleTo("Tandem.Tests")]

namespace Tandem.Unity
{
    /// <summary>
    /// ITransport on the browser's WebSocket (Plugins/WebGL/TandemWebSocket.jslib), for WebGL builds:
    /// <c>Transport = () =&gt; new WebGLTransport()</c> in ClientOptions. Anywhere else it throws
    /// PlatformNotSupportedException; ClientWebSocketTransport (the default) is the transport there.
    /// </summary>
    public sealed class WebGLTransport : ITransport
    {
        /// <summary>The code the browser reports when the connection ended without a close frame.</summary>
        const int NoCloseFrame = 1006;

        // The open sockets by id: where the callbacks find their transport.
        static readonly Dictionary<int, WebGLTransport> sockets = new Dictionary<int, WebGLTransport>();
        static int lastId;

        readonly IWebSocketBridge bridge;
        readonly int id;
        readonly object mu = new object();
        readonly TaskCompletionSource<bool> opened = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Guarded by mu.
        readonly Queue<TransportMessage> received = new Queue<TransportMessage>();
        TaskCompletionSource<TransportMessage> reader; // the pending ReceiveAsync
        bool ended;                                    // the end is queued: nothing comes after it
        bool failed;                                   // the browser reported an error
        bool freed;

        public WebGLTransport() : this(DefaultBridge()) { }

        internal WebGLTransport(IWebSocketBridge bridge)
        {
            if (bridge == null)
                throw new PlatformNotSupportedException("tandem: WebGLTransport works in WebGL builds only (the browser's WebSocket)");
            this.bridge = bridge;
            id = Interlocked.Increment(ref lastId);
            // A failure nobody awaits (the connect was cancelled first) is no unobserved exception.
            opened.Task.ContinueWith(t => { var e = t.Exception; }, TaskContinuationOptions.OnlyOnFaulted);
        }

        static IWebSocketBridge DefaultBridge()
        {
#if UNITY_WEBGL && !UNITY_EDITOR
            return JsBridge.Instance;
#else
            return null;
#endif
        }

        internal int Id { get { return id; } }

        public async Task ConnectAsync(Uri url, string subprotocol, CancellationToken ct)
        {
            // Registered first: the stand-in of the tests may call back before Open returns.
            lock (sockets) sockets[id] = this;
            if (!bridge.Open(id, url.AbsoluteUri, subprotocol))
            {
                Forget();
                throw new WebSocketException("tandem: the browser refused the URL " + url);
            }
            var cancelled = new TaskCompletionSource<bool>();
            using (ct.Register(() => cancelled.TrySetCanceled()))
                await (await Task.WhenAny(opened.Task, cancelled.Task).ConfigureAwait(false)).ConfigureAwait(false);
        }

        public Task SendAsync(byte[] data, bool text, CancellationToken ct)
        {
            lock (mu)
                if (ended || freed) throw new WebSocketException("tandem: the connection has ended");
            // The browser buffers the message: it is sent once the call returns.
            if (!bridge.Send(id, data, text)) throw new WebSocketException("tandem: the WebSocket is not open");
            return Task.CompletedTask;
        }

        public async Task<TransportMessage> ReceiveAsync(CancellationToken ct)
        {
            TaskCompletionSource<TransportMessage> w;
            lock (mu)
            {
                if (received.Count > 0) return received.Dequeue();
                // The end was read: what ClientWebSocketTransport answers then, an end without a code.
                if (ended) return new TransportMessage();
                if (reader != null) throw new InvalidOperationException("tandem: ReceiveAsync while another is pending");
                w = reader = new TaskCompletionSource<TransportMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            using (ct.Register(() =>
            {
                lock (mu)
                    if (reader == w) reader = null;
                w.TrySetCanceled();
            }))
                return await w.Task.ConfigureAwait(false);
        }

        /// <summary>
        /// Starts the closing handshake; the reader then sees the server's answer. The browser answers a close of
        /// the server's by itself (with its code), so that answer is already made when the reader has seen it.
        /// </summary>
        public Task CloseAsync(int code, string reason, CancellationToken ct)
        {
            lock (mu)
                if (freed) return Task.CompletedTask;
            bridge.Close(id, code, reason ?? "");
            return Task.CompletedTask;
        }

        /// <summary>
        /// Forgets the socket and ends the reader at once (an end without a code). The browser cannot drop a
        /// connection without a close frame: a socket still open is closed with 4000, which holds the session on
        /// the server as a reset would.
        /// </summary>
        public void Abort()
        {
            lock (mu)
            {
                if (freed) return;
                freed = true;
            }
            Forget();
            bridge.Free(id);
            opened.TrySetException(new WebSocketException("tandem: the connection was aborted"));
            Deliver(new TransportMessage());
        }

        public void Dispose() { Abort(); }

        void Forget()
        {
            lock (sockets)
            {
                WebGLTransport t;
                if (sockets.TryGetValue(id, out t) && t == this) sockets.Remove(id);
            }
        }

        /// <summary>Hands m to the pending reader, or queues it; nothing after the end.</summary>
        void Deliver(TransportMessage m)
        {
            TaskCompletionSource<TransportMessage> w = null;
            lock (mu)
            {
                if (ended) return;
                if (m.Data == null) ended = true;
                if (reader != null)
                {
                    w = reader;
                    reader = null;
                }
                else received.Enqueue(m);
            }
            if (w != null) w.TrySetResult(m);
        }

        static WebGLTransport Find(int id)
        {
            lock (sockets)
            {
                WebGLTransport t;
                return sockets.TryGetValue(id, out t) ? t : null;
            }
        }

        // The callbacks of the jslib (and of the tests' stand-in). They run inside the browser's event handlers:
        // they only hand over, and the awaiting code continues later (RunContinuationsAsynchronously).

        [AOT.MonoPInvokeCallback(typeof(OpenCallback))]
        internal static void OnOpen(int id)
        {
            var t = Find(id);
            if (t != null) t.opened.TrySetResult(true);
        }

        [AOT.MonoPInvokeCallback(typeof(MessageCallback))]
        internal static void OnMessage(int id, IntPtr data, int length, int text)
        {
            var t = Find(id);
            if (t == null) return;
            var b = new byte[length];
            if (length > 0) Marshal.Copy(data, b, 0, length);
            t.Deliver(new TransportMessage { Data = b, Text = text != 0 });
        }

        [AOT.MonoPInvokeCallback(typeof(ErrorCallback))]
        internal static void OnError(int id)
        {
            // The browser says no more: a close follows.
            var t = Find(id);
            if (t != null) lock (t.mu) t.failed = true;
        }

        [AOT.MonoPInvokeCallback(typeof(CloseCallback))]
        internal static void OnClose(int id, int code, IntPtr reason, int reasonLength)
        {
            var t = Find(id);
            if (t == null) return;
            t.Forget();
            var r = new byte[reasonLength];
            if (reasonLength > 0) Marshal.Copy(reason, r, 0, reasonLength);
            bool failed;
            lock (t.mu) failed = t.failed;
            t.opened.TrySetException(new WebSocketException("tandem: the WebSocket did not open (" +
                (failed ? "error, " : "") + "close code " + code + ")"));
            t.Deliver(new TransportMessage { CloseCode = code == NoCloseFrame ? (int?)null : code, CloseReason = Encoding.UTF8.GetString(r) });
        }
    }

    internal delegate void OpenCallback(int id);
    internal delegate void MessageCallback(int id, IntPtr data, int length, int text);
    internal delegate void ErrorCallback(int id);
    internal delegate void CloseCallback(int id, int code, IntPtr reason, int reasonLength);

    /// <summary>The JavaScript side of WebGLTransport: the jslib in a WebGL build, a stand-in in tests.</summary>
    internal interface IWebSocketBridge
    {
        /// <summary>Opens socket id offering exactly one subprotocol; the callbacks tell the rest. False: the URL was refused at once.</summary>
        bool Open(int id, string url, string subprotocol);
        /// <summary>Sends one message (the browser buffers it). False: the socket is not open.</summary>
        bool Send(int id, byte[] data, bool text);
        /// <summary>Starts the closing handshake; nothing once it has begun.</summary>
        void Close(int id, int code, string reason);
        /// <summary>Forgets socket id, closing it with 4000 when still open: no callback for it after this.</summary>
        void Free(int id);
    }

    /// <summary>IWebSocketBridge on Plugins/WebGL/TandemWebSocket.jslib (the names and arities match it; a test checks).</summary>
    internal sealed class JsBridge : IWebSocketBridge
    {
        internal static readonly JsBridge Instance = new JsBridge();

        // Held so that the collector never frees what JavaScript calls.
        static readonly OpenCallback onOpen = WebGLTransport.OnOpen;
        static readonly MessageCallback onMessage = WebGLTransport.OnMessage;
        static readonly ErrorCallback onError = WebGLTransport.OnError;
        static readonly CloseCallback onClose = WebGLTransport.OnClose;

        [DllImport("__Internal")] static extern void TandemWebSocketInit(OpenCallback onOpen, MessageCallback onMessage, ErrorCallback onError, CloseCallback onClose);
        [DllImport("__Internal")] static extern int TandemWebSocketOpen(int id, string url, string subprotocol);
        [DllImport("__Internal")] static extern int TandemWebSocketSend(int id, byte[] data, int length, int text);
        [DllImport("__Internal")] static extern void TandemWebSocketClose(int id, int code, string reason);
        [DllImport("__Internal")] static extern void TandemWebSocketFree(int id);

        readonly object mu = new object();
        bool initialised;

        public bool Open(int id, string url, string subprotocol)
        {
            lock (mu)
            {
                if (!initialised) TandemWebSocketInit(onOpen, onMessage, onError, onClose);
                initialised = true;
            }
            return TandemWebSocketOpen(id, url, subprotocol) == 0;
        }

        public bool Send(int id, byte[] data, bool text) { return TandemWebSocketSend(id, data, data.Length, text ? 1 : 0) == 0; }

        public void Close(int id, int code, string reason) { TandemWebSocketClose(id, code, reason); }

        public void Free(int id) { TandemWebSocketFree(id); }
    }
}
