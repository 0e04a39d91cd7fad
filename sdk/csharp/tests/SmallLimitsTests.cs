// The SDK against a `tandem dev` with a short heartbeat and a small replay
// buffer: pings and pongs measure the RTT, and a resume past the room's
// buffer is answered with a gap and a snapshot.
using System;
using System.Text;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class SmallLimitsTests
    {
        DevServer server;

        [TestFixtureSetUp]
        public void StartServer() { server = DevServer.Start("--heartbeat 300ms", "--replay-count 4"); }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task PingsMeasureTheRtt(CodecKind codec)
        {
            var c = await E2E.Connect(await E2E.Login(server, "pinger"), codec);
            await E2E.Eventually(() => c.Rtt > TimeSpan.Zero, "an RTT");
            await E2E.CloseAndExpectClosed(c);
        }

        [Test]
        public async Task AResumePastTheRoomBufferGetsAGap()
        {
            var tap = new Transports();
            var alice = await E2E.Connect(await E2E.Login(server, "alice"), CodecKind.Binary, tap);
            var bob = await E2E.Connect(await E2E.Login(server, "bob"), CodecKind.Json);
            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            var br = await bob.JoinAsync(new JoinOptions { RoomId = ar.Id });
            await E2E.Next<RoomMemberEvent>(alice, e => e.Kind == RoomEventKind.Joined);

            tap.Refuse = true;
            tap.AbortLatest();
            await E2E.Next<DisconnectedEvent>(alice);
            await E2E.Next<RoomMemberEvent>(bob, e => e.Kind == RoomEventKind.Disconnected);
            for (int i = 1; i <= 10; i++) await br.SendAsync("chat", Encoding.UTF8.GetBytes("m" + i), Delivery.Others);
            await bob.ListRoomsAsync(""); // the messages were processed
            tap.Refuse = false;

            await E2E.Next<ResumedEvent>(alice);
            var gap = await E2E.Next<GapEvent>(alice);
            Assert.AreSame(ar, gap.Room);
            Assert.That(gap.Epoch, Is.GreaterThan(1u));
            // After the gap, the room goes on.
            await br.SendAsync("chat", Encoding.UTF8.GetBytes("after the gap"), Delivery.Others);
            var m = await E2E.Next<MessageEvent>(alice);
            Assert.AreEqual("after the gap", Encoding.UTF8.GetString(m.Data));
            await E2E.CloseAndExpectClosed(alice);
            await E2E.CloseAndExpectClosed(bob);
        }
    }
}
