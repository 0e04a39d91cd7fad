using System;
using System.Threading;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    /// <summary>Configures a TandemClient. Url and Token are required.</summary>
    public sealed class ClientOptions
    {
        /// <summary>The realtime endpoint, such as ws://127.0.0.1:7701/ws.</summary>
        public string Url;
        /// <summary>Returns a fresh realtime token; called at every connect and reconnect (Auth.RealtimeTokenAsync).</summary>
        public Func<CancellationToken, Task<string>> Token;
        /// <summary>
        /// Optional: the realtime URL to use now, asked when the node seems gone (a failed dial, node_draining,
        /// node_gone). While the session lives on a node it must name that node (Auth.LocateAsync does).
        /// </summary>
        public Func<CancellationToken, Task<string>> Locate;
        public CodecKind Codec = CodecKind.Json;
        /// <summary>Makes the WebSocket of each connection (default: ClientWebSocketTransport).</summary>
        public Func<ITransport> Transport = () => new ClientWebSocketTransport();
        /// <summary>Bounds of the delay before each reconnect attempt (full jitter).</summary>
        public TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromSeconds(5);
        /// <summary>A connection silent this long is treated as lost. Default 2.5 × the server's heartbeat_ms.</summary>
        public TimeSpan? HeartbeatTimeout;
        /// <summary>How often ack_frame reports the positions while frames arrive.</summary>
        public TimeSpan AckInterval = TimeSpan.FromMilliseconds(100);
        /// <summary>
        /// The most events left unread (NextEventAsync, TryGetEvent) before the client gives up: it closes (1000,
        /// the session ends) and its ClosedEvent's Error is an EventQueueFullException. sdk/go instead stops
        /// reading the connection, so that the server feels the back-pressure; here the reader never waits for
        /// the application (Unity reads events once a frame), so an application that stopped reading would
        /// otherwise grow the queue without bound. 0: no limit.
        /// </summary>
        public int EventQueueLimit = 4096;
        /// <summary>Sent in connect.sdk.</summary>
        public string Sdk = "tandem-csharp/0.1";
        /// <summary>Optional debug log.</summary>
        public Action<string> Log;

        internal ClientOptions Copy() { return (ClientOptions)MemberwiseClone(); }
    }

    /// <summary>A join request. Mode Unspecified: Join when RoomId is set, JoinOrCreate otherwise.</summary>
    public sealed class JoinOptions
    {
        public JoinMode Mode;
        public string RoomId = "";
        public string RoomType = "";
        public byte[] Options;
        public byte[] Metadata;
    }
}
