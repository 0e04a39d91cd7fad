// The SDK against a real `tandem dev` (TANDEM_BIN): guest login and
// connect with both codecs, two clients exchanging a message in a relay
// room, an RPC error, a refused token (final close), and a resume after the
// socket is aborted.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class EndToEndTests
    {
        static readonly TimeSpan Deadline = E2E.Deadline;
        DevServer server;

        [TestFixtureSetUp]
        public void StartServer() { server = DevServer.Start(); }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        Task<Auth> Login(string device) { return E2E.Login(server, device); }
        static Task<TandemClient> Connect(Auth auth, CodecKind codec, Transports tap = null) { return E2E.Connect(auth, codec, tap); }
        static Task<T> Next<T>(TandemClient c, Func<T, bool> match = null) where T : TandemEvent { return E2E.Next(c, match); }
        static Task CloseAndExpectClosed(TandemClient c) { return E2E.CloseAndExpectClosed(c); }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task GuestLoginAndConnect(CodecKind codec)
        {
            var auth = await Login("device");
            Assert.IsTrue(auth.Created);
            StringAssert.StartsWith("ws://", auth.RealtimeUrl);
            var c = await Connect(auth, codec);
            Assert.AreEqual(auth.PlayerId, c.PlayerId);
            Assert.IsNotEmpty(c.SessionId);
            Assert.IsNotEmpty(c.Node);
            var rooms = await c.ListRoomsAsync("relay");
            Assert.IsNotNull(rooms);
            await CloseAndExpectClosed(c);
        }

        [Test]
        public async Task TwoClientsInARelayRoomExchangeAMessage()
        {
            var alice = await Connect(await Login("alice"), CodecKind.Json);
            var bob = await Connect(await Login("bob"), CodecKind.Binary);
            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            Assert.AreEqual("relay", ar.Type);
            var br = await bob.JoinAsync(new JoinOptions { Mode = JoinMode.Join, RoomId = ar.Id });
            var joined = await Next<JoinedEvent>(bob);
            CollectionAssert.AreEqual(new[] { alice.PlayerId, bob.PlayerId }, joined.Players);
            var seen = await Next<RoomMemberEvent>(alice);
            Assert.AreEqual(RoomEventKind.Joined, seen.Kind);
            Assert.AreEqual(bob.PlayerId, seen.PlayerId);

            await ar.SendAsync("chat", Encoding.UTF8.GetBytes("hello bob ☃"), Delivery.Others);
            var m = await Next<MessageEvent>(bob);
            Assert.AreSame(br, m.Room);
            Assert.AreEqual(alice.PlayerId, m.From);
            Assert.AreEqual("chat", m.Topic);
            Assert.AreEqual("hello bob ☃", Encoding.UTF8.GetString(m.Data));

            await br.LeaveAsync();
            Assert.AreEqual(LeaveReason.Requested, (await Next<LeftEvent>(bob)).Reason);
            Assert.AreEqual(RoomEventKind.Left, (await Next<RoomMemberEvent>(alice)).Kind);
            await CloseAndExpectClosed(alice);
            await CloseAndExpectClosed(bob);
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task AnRpcErrorIsAServerException(CodecKind codec)
        {
            var c = await Connect(await Login("rpc"), codec);
            var e = Assert.Throws<ServerException>(() => c.RpcAsync("no-such-method", new byte[] { 1 }).GetAwaiter().GetResult());
            Assert.AreEqual(ErrorCodes.UnknownRpc, e.Code);
            Assert.AreEqual("unknown_rpc", e.Name);
            // The session goes on.
            Assert.IsNotNull(await c.ListRoomsAsync(""));
            await CloseAndExpectClosed(c);
        }

        [Test]
        public void AForgedTokenIsRefusedWithAFinalClose()
        {
            var o = new ClientOptions { Url = server.Realtime, Token = ct => Task.FromResult("forged.token.value") };
            var e = Assert.Throws<CloseException>(() => TandemClient.ConnectAsync(o).GetAwaiter().GetResult());
            Assert.AreEqual(CloseCodes.BadToken, e.Code);
            Assert.AreEqual(CloseClass.Final, e.Class);
            Assert.IsNotNull(e.Server);
            Assert.AreEqual(ErrorCodes.Unauthenticated, e.Server.Code);
        }

        [Test]
        public async Task TwoPlayersMatchmakeIntoOneRoom()
        {
            server.PutQueue("duel", "{\"room_type\":\"relay\",\"teams\":2,\"team_size\":1}");
            var a = await Connect(await Login("a"), CodecKind.Json);
            var b = await Connect(await Login("b"), CodecKind.Binary);
            var states = new List<string>();
            Func<TandemClient, Task<Room>> matchmake = async c =>
            {
                // The queue reaches the node within seconds: until then it is not_found.
                for (var until = DateTime.UtcNow + Deadline; ; await Task.Delay(100))
                {
                    try
                    {
                        using (var cts = new CancellationTokenSource(Deadline))
                            return await c.MatchmakeAsync(new TicketCreate { Queue = "duel" }, s => { lock (states) states.Add(s.State); }, null, cts.Token);
                    }
                    catch (ServerException e) when ((e.Code == ErrorCodes.NotFound || e.Code == ErrorCodes.Unavailable) && DateTime.UtcNow < until) { }
                }
            };
            var rooms = await Task.WhenAll(matchmake(a), matchmake(b));
            Assert.AreEqual(rooms[0].Id, rooms[1].Id);
            Assert.AreEqual("relay", rooms[0].Type);
            lock (states)
            {
                CollectionAssert.Contains(states, TicketStates.Searching);
                CollectionAssert.Contains(states, TicketStates.Matched);
            }
            await CloseAndExpectClosed(a);
            await CloseAndExpectClosed(b);
        }

        [Test]
        public async Task AClientWhoseEventsAreNotReadClosesAtTheLimit()
        {
            const int limit = 8;
            var alice = await E2E.Connect(await Login("alice"), CodecKind.Json, null, o => o.EventQueueLimit = limit);
            var bob = await Connect(await Login("bob"), CodecKind.Binary);
            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            var br = await bob.JoinAsync(new JoinOptions { RoomId = ar.Id });
            // alice reads nothing: bob's messages fill her queue.
            for (int i = 0; i < 2 * limit; i++) await br.SendAsync("chat", new byte[] { (byte)i }, Delivery.Others);
            await E2E.Eventually(() => ar.Left.IsCompleted, "alice's client closed");
            Assert.Throws<EventQueueFullException>(() => alice.RpcAsync("x", null).GetAwaiter().GetResult());
            var events = new List<TandemEvent>();
            for (TandemEvent ev; (ev = await alice.NextEventAsync()) != null; ) events.Add(ev);
            Assert.AreEqual(limit + 1, events.Count, "the limit, then Closed");
            var closed = events[events.Count - 1] as ClosedEvent;
            Assert.IsNotNull(closed, "the last event is Closed");
            Assert.IsInstanceOf<EventQueueFullException>(closed.Error);
            await CloseAndExpectClosed(bob);
        }

        [Test]
        public async Task ASecondLoginEndsTheFirstSessionWithAFinalClose()
        {
            var auth = await Login("twice");
            var first = await Connect(auth, CodecKind.Json);
            var second = await Connect(auth, CodecKind.Binary);
            var closed = await Next<ClosedEvent>(first);
            var ce = closed.Error as CloseException;
            Assert.IsNotNull(ce, "closed with " + closed.Error);
            Assert.AreEqual(CloseCodes.DuplicateSession, ce.Code);
            Assert.AreEqual(CloseClass.Final, ce.Class);
            Assert.IsNull(await first.NextEventAsync(), "no event after Closed");
            Assert.Throws<CloseException>(() => first.RpcAsync("x", null).GetAwaiter().GetResult());
            await CloseAndExpectClosed(second);
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task AClientResumesAfterItsSocketIsAborted(CodecKind codec)
        {
            var tap = new Transports();
            var alice = await Connect(await Login("alice"), codec, tap);
            var bob = await Connect(await Login("bob"), CodecKind.Json);
            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            var br = await bob.JoinAsync(new JoinOptions { RoomId = ar.Id });
            await Next<RoomMemberEvent>(alice, e => e.Kind == RoomEventKind.Joined);
            var sessionId = alice.SessionId;

            tap.AbortLatest();
            // Sent while the connection is (or is about to be) gone: the resend after the resume delivers it.
            await ar.SendAsync("chat", Encoding.UTF8.GetBytes("from alice"), Delivery.Others);
            Assert.IsNotNull(await Next<DisconnectedEvent>(alice));
            for (int i = 1; i <= 3; i++) await br.SendAsync("chat", Encoding.UTF8.GetBytes("to alice " + i), Delivery.Others);
            await Next<ResumedEvent>(alice);
            Assert.AreEqual(sessionId, alice.SessionId, "the held session was resumed");
            Assert.That(tap.Count, Is.GreaterThanOrEqualTo(2));

            // Every message exactly once, in order.
            for (int i = 1; i <= 3; i++)
            {
                var m = await Next<MessageEvent>(alice);
                Assert.AreEqual("to alice " + i, Encoding.UTF8.GetString(m.Data));
            }
            var fromAlice = await Next<MessageEvent>(bob);
            Assert.AreEqual("from alice", Encoding.UTF8.GetString(fromAlice.Data));
            await br.SendAsync("chat", Encoding.UTF8.GetBytes("after"), Delivery.Others);
            Assert.AreEqual("after", Encoding.UTF8.GetString((await Next<MessageEvent>(alice)).Data));
            // A round trip on bob's session: had alice's resend been doubled, the copy would be queued by now.
            await bob.ListRoomsAsync("");
            TandemEvent extra;
            while (bob.TryGetEvent(out extra)) Assert.IsNotInstanceOf<MessageEvent>(extra, "bob got alice's message twice");
            await CloseAndExpectClosed(alice);
            await CloseAndExpectClosed(bob);
        }
    }
}
