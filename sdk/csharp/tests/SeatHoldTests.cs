// The SDK against a `tandem dev` with a short seat hold: a client kept away
// longer than that starts a new session and reports the rooms it lost.
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class SeatHoldTests
    {
        DevServer server;

        [TestFixtureSetUp]
        public void StartServer() { server = DevServer.Start("--seat-hold 200ms"); }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        [TestCase(CodecKind.Json)]
        [TestCase(CodecKind.Binary)]
        public async Task AClientAwayLongerThanTheSeatHoldStartsANewSession(CodecKind codec)
        {
            var tap = new Transports();
            var alice = await E2E.Connect(await E2E.Login(server, "alice"), codec, tap);
            var bob = await E2E.Connect(await E2E.Login(server, "bob"), CodecKind.Json);
            var ar = await alice.JoinAsync(new JoinOptions { Mode = JoinMode.Create, RoomType = "relay" });
            await bob.JoinAsync(new JoinOptions { RoomId = ar.Id });
            var oldSession = alice.SessionId;

            tap.Refuse = true;
            tap.AbortLatest();
            await E2E.Next<DisconnectedEvent>(alice);
            var left = await E2E.Next<RoomMemberEvent>(bob, e => e.Kind == RoomEventKind.Left);
            Assert.AreEqual(LeaveReason.SeatExpired, left.Reason);
            tap.Refuse = false;

            var lost = await E2E.Next<SessionLostEvent>(alice);
            CollectionAssert.AreEqual(new[] { ar.Id }, lost.Rooms);
            Assert.AreNotEqual(oldSession, alice.SessionId);
            Assert.IsTrue(ar.Left.IsCompleted, "the old room is gone");
            // The new session works: join again.
            var again = await alice.JoinAsync(new JoinOptions { RoomId = ar.Id });
            Assert.AreEqual(ar.Id, again.Id);
            await E2E.CloseAndExpectClosed(alice);
            await E2E.CloseAndExpectClosed(bob);
        }
    }
}
