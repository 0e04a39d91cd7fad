// The WebSocket under the client, behind an interface so that a Unity
// WebGL build can put the browser's WebSocket (a JavaScript bridge) in
// place of ClientWebSocket, and tests can tap the frames.
using System;
using System.IO;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tandem
{
    /// <summary>One received WebSocket message, or the end of the connection.</summary>
    public sealed class TransportMessage
    {
        /// <summary>The message's bytes; null when the connection closed.</summary>
        public byte[] Data;
        public bool Text;
        /// <summary>When Data is null: the close code the peer sent (null for none: a reset or EOF).</summary>
        public int? CloseCode;
        public string CloseReason;
    }

    /// <summary>
    /// A WebSocket connection. ReceiveAsync is called by one reader at a
    /// time and SendAsync by one writer at a time (the client serialises
    /// them); CloseAsync and Abort may be called at any time.
    /// </summary>
    public interface ITransport : IDisposable
    {
        /// <summary>Opens the connection offering exactly one subprotocol; fails unless the server picks it.</summary>
        Task ConnectAsync(Uri url, string subprotocol, CancellationToken ct);

        Task SendAsync(byte[] data, bool text, CancellationToken ct);

        /// <summary>The next whole message; a message with Data null once the connection has ended.</summary>
        Task<TransportMessage> ReceiveAsync(CancellationToken ct);

        /// <summary>
        /// Starts the closing handshake with code (the reader then sees the peer's echo), or answers the peer's
        /// close once the reader has seen it; nothing when the handshake is over.
        /// </summary>
        Task CloseAsync(int code, string reason, CancellationToken ct);

        /// <summary>Drops the connection at once, without a close frame.</summary>
        void Abort();
    }

    /// <summary>ITransport on System.Net.WebSockets.ClientWebSocket.</summary>
    public sealed class ClientWebSocketTransport : ITransport
    {
        readonly ClientWebSocket ws = new ClientWebSocket();
        readonly byte[] buffer = new byte[16 * 1024];

        public async Task ConnectAsync(Uri url, string subprotocol, CancellationToken ct)
        {
            ws.Options.AddSubProtocol(subprotocol);
            await ws.ConnectAsync(url, ct).ConfigureAwait(false);
            if (ws.SubProtocol != subprotocol)
            {
                ws.Abort();
                throw new WebSocketException("the server did not accept subprotocol " + subprotocol);
            }
        }

        public Task SendAsync(byte[] data, bool text, CancellationToken ct)
        {
            return ws.SendAsync(new ArraySegment<byte>(data), text ? WebSocketMessageType.Text : WebSocketMessageType.Binary, true, ct);
        }

        public async Task<TransportMessage> ReceiveAsync(CancellationToken ct)
        {
            var msg = new MemoryStream();
            try
            {
                while (true)
                {
                    var r = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                        return new TransportMessage { CloseCode = (int?)r.CloseStatus, CloseReason = r.CloseStatusDescription };
                    msg.Write(buffer, 0, r.Count);
                    if (r.EndOfMessage)
                        return new TransportMessage { Data = msg.ToArray(), Text = r.MessageType == WebSocketMessageType.Text };
                }
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // A reset, an EOF or an aborted socket: a close without a code.
                return new TransportMessage();
            }
        }

        public async Task CloseAsync(int code, string reason, CancellationToken ct)
        {
            try
            {
                if (ws.State == WebSocketState.Open || ws.State == WebSocketState.CloseReceived)
                    await ws.CloseOutputAsync((WebSocketCloseStatus)code, reason ?? "", ct).ConfigureAwait(false);
            }
            catch (Exception)
            {
                ws.Abort();
            }
        }

        public void Abort() { ws.Abort(); }

        public void Dispose() { ws.Dispose(); }
    }
}
