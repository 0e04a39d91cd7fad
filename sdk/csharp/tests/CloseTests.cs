// The client answers a close the server starts (RFC 6455 §5.5.1), against
// a WebSocket server of the test's own: during the handshake and on a
// connected session.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class CloseTests
    {
        /// <summary>
        /// A one-connection WebSocket server on raw TCP (Mono's HttpListener does not upgrade): it reads the
        /// client's connect, sends connected when asked to, closes with code and returns the close code the
        /// client answered with (null: none, the socket was dropped).
        /// </summary>
        static async Task<int?> ServeOnce(TcpListener l, bool connected, int code)
        {
            using (var tcp = await l.AcceptTcpClientAsync())
            using (var cts = new CancellationTokenSource(E2E.Deadline))
            using (cts.Token.Register(() => tcp.Close()))
            {
                var s = tcp.GetStream();
                var head = new StringBuilder();
                while (!head.ToString().EndsWith("\r\n\r\n"))
                {
                    var one = new byte[1];
                    if (await s.ReadAsync(one, 0, 1) == 0) return null;
                    head.Append((char)one[0]);
                }
                var key = Regex.Match(head.ToString(), @"Sec-WebSocket-Key: *(\S+)", RegexOptions.IgnoreCase).Groups[1].Value;
                string accept;
                using (var sha = SHA1.Create())
                    accept = Convert.ToBase64String(sha.ComputeHash(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
                var answer = Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                    "Sec-WebSocket-Accept: " + accept + "\r\nSec-WebSocket-Protocol: " + Codec.JsonSubprotocol + "\r\n\r\n");
                await s.WriteAsync(answer, 0, answer.Length);
                if (await ReadFrame(s) == null) return null; // connect
                if (connected)
                {
                    var env = new Envelope { Body = new Connected { SessionId = "s1", PlayerId = "p1", ResumeToken = "r1", HeartbeatMs = 10000, Node = "n1" } };
                    await WriteFrame(s, 0x1, Codec.Encode(CodecKind.Json, env));
                }
                await WriteFrame(s, 0x8, new[] { (byte)(code >> 8), (byte)code, (byte)'b', (byte)'y', (byte)'e' });
                while (true)
                {
                    var f = await ReadFrame(s);
                    if (f == null) return null;
                    if (f.Item1 == 0x8) return f.Item2.Length >= 2 ? (int?)(f.Item2[0] << 8 | f.Item2[1]) : null;
                }
            }
        }

        static async Task WriteFrame(NetworkStream s, int opcode, byte[] payload)
        {
            var f = new List<byte> { (byte)(0x80 | opcode) };
            if (payload.Length < 126) f.Add((byte)payload.Length);
            else f.AddRange(new[] { (byte)126, (byte)(payload.Length >> 8), (byte)payload.Length });
            f.AddRange(payload);
            await s.WriteAsync(f.ToArray(), 0, f.Count);
        }

        /// <summary>The opcode and unmasked payload of the client's next frame; null at EOF or a reset.</summary>
        static async Task<Tuple<int, byte[]>> ReadFrame(NetworkStream s)
        {
            try
            {
                var h = await ReadFull(s, 2);
                if (h == null) return null;
                long n = h[1] & 0x7f;
                if (n == 126) { var x = await ReadFull(s, 2); n = x[0] << 8 | x[1]; }
                else if (n == 127) { var x = await ReadFull(s, 8); n = 0; foreach (var b in x) n = n << 8 | b; }
                var mask = (h[1] & 0x80) != 0 ? await ReadFull(s, 4) : new byte[4];
                var p = await ReadFull(s, (int)n);
                for (int i = 0; i < p.Length; i++) p[i] ^= mask[i % 4];
                return Tuple.Create(h[0] & 0x0f, p);
            }
            catch (Exception) // IOException, or the stream closed at the deadline
            {
                return null;
            }
        }

        static async Task<byte[]> ReadFull(NetworkStream s, int n)
        {
            var b = new byte[n];
            for (int got = 0; got < n; )
            {
                int r = await s.ReadAsync(b, got, n - got);
                if (r == 0) return null;
                got += r;
            }
            return b;
        }

        static TcpListener Listen(out string url)
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            url = "ws://127.0.0.1:" + ((IPEndPoint)l.LocalEndpoint).Port + "/ws";
            return l;
        }

        [Test]
        public void ARefusedConnectAnswersTheClose()
        {
            string url;
            var l = Listen(out url);
            try
            {
                var served = ServeOnce(l, false, CloseCodes.BadToken);
                var o = new ClientOptions { Url = url, Token = ct => Task.FromResult("t") };
                var e = Assert.Throws<CloseException>(() => TandemClient.ConnectAsync(o).GetAwaiter().GetResult());
                Assert.AreEqual(CloseCodes.BadToken, e.Code);
                Assert.IsTrue(served.Wait(E2E.Deadline), "the server did not finish");
                Assert.AreEqual(CloseCodes.BadToken, served.Result, "the close the client answered with");
            }
            finally
            {
                l.Stop();
            }
        }

        [Test]
        public async Task AFinalCloseOfASessionIsAnswered()
        {
            string url;
            var l = Listen(out url);
            try
            {
                var served = ServeOnce(l, true, CloseCodes.Kicked);
                var c = await TandemClient.ConnectAsync(new ClientOptions { Url = url, Token = ct => Task.FromResult("t") });
                var closed = await E2E.Next<ClosedEvent>(c);
                Assert.AreEqual(CloseCodes.Kicked, ((CloseException)closed.Error).Code);
                Assert.IsTrue(served.Wait(E2E.Deadline), "the server did not finish");
                Assert.AreEqual(CloseCodes.Kicked, served.Result, "the close the client answered with");
                await c.CloseAsync();
            }
            finally
            {
                l.Stop();
            }
        }
    }
}
