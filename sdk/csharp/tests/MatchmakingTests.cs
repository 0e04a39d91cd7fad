// MatchmakeAsync against a `tandem dev` with a short seat hold: it ignores
// the statuses of the player's earlier ticket in the queue, and after its
// session is lost it asks for the ticket at once, in time to take a seat
// matched while it was away.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class MatchmakingTests
    {
        const string Duel = "{\"room_type\":\"relay\",\"teams\":2,\"team_size\":1}";
        static readonly TimeSpan Deadline = E2E.Deadline;
        DevServer server;

        [TestFixtureSetUp]
        public void StartServer() { server = DevServer.Start("--seat-hold 2s"); }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        /// <summary>Runs f until the queue reaches the node (until then its tickets are not_found or unavailable).</summary>
        static async Task<T> OnceQueued<T>(Func<Task<T>> f)
        {
            for (var until = DateTime.UtcNow + Deadline; ; await Task.Delay(100))
            {
                try
                {
                    return await f();
                }
                catch (ServerException e) when ((e.Code == ErrorCodes.NotFound || e.Code == ErrorCodes.Unavailable) && DateTime.UtcNow < until) { }
            }
        }

        static async Task Within(Task t, string what)
        {
            if (await Task.WhenAny(t, Task.Delay(Deadline)) != t) Assert.Fail(what + ": not within " + Deadline);
            await t;
        }

        [Test]
        public async Task AMatchmakeAfterACancelIsNotEndedByTheCancelledTicket()
        {
            server.PutQueue("after-cancel", Duel);
            var tap = new Transports();
            var a = await E2E.Connect(await E2E.Login(server, "a"), CodecKind.Json, tap);
            var b = await E2E.Connect(await E2E.Login(server, "b"), CodecKind.Binary);
            var old = await OnceQueued(() => a.CreateTicketAsync(new TicketCreate { Queue = "after-cancel" }));
            var seen = new List<TicketStatus>();
            using (var cts = new CancellationTokenSource(Deadline))
            {
                // The old ticket's cancelled is pushed before the new create is sent, and reaches the client
                // after Matchmake waits for the queue's statuses but before the create's answer names its ticket.
                tap.HoldReceives();
                var cancel = a.CancelTicketAsync("after-cancel");
                await E2E.Eventually(() => tap.Kept(f =>
                {
                    var env = Codec.Decode(CodecKind.Json, f);
                    return env.Cid == 0 && env.TicketStatus != null && env.TicketStatus.TicketId == old.TicketId &&
                        env.TicketStatus.State == TicketStates.Cancelled;
                }), "the old ticket's cancelled pushed");
                var ma = a.MatchmakeAsync(new TicketCreate { Queue = "after-cancel" }, s => { lock (seen) seen.Add(s); }, null, cts.Token);
                tap.ReleaseReceives();
                Assert.AreEqual(TicketStates.Cancelled, (await cancel).State);
                var mb = OnceQueued(() => b.MatchmakeAsync(new TicketCreate { Queue = "after-cancel" }, null, null, cts.Token));
                var rooms = await Task.WhenAll(ma, mb);
                Assert.AreEqual(rooms[0].Id, rooms[1].Id);
            }
            lock (seen)
                foreach (var s in seen)
                    Assert.AreNotEqual(old.TicketId, s.TicketId, "a status of the cancelled ticket reached the new Matchmake");
            await E2E.CloseAndExpectClosed(a);
            await E2E.CloseAndExpectClosed(b);
        }

        [Test]
        public async Task AMatchMadeWhileTheSessionWasLostIsTaken()
        {
            server.PutQueue("lost", Duel);
            var tap = new Transports();
            var logs = new List<string>();
            var a = await E2E.Connect(await E2E.Login(server, "a"), CodecKind.Json, tap, o => o.Log = line => { lock (logs) logs.Add(line); });
            var b = await E2E.Connect(await E2E.Login(server, "b"), CodecKind.Json);

            var searching = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var matched = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (var cts = new CancellationTokenSource(Deadline + Deadline))
            {
                var ma = OnceQueued(() => a.MatchmakeAsync(new TicketCreate { Queue = "lost" },
                    s => { if (s.State == TicketStates.Searching) searching.TrySetResult(true); }, null, cts.Token));
                await Within(searching.Task, "a searching");

                // a goes away; b's ticket matches it meanwhile (the push waits in a's held session).
                tap.Refuse = true;
                tap.AbortLatest();
                await E2E.Next<DisconnectedEvent>(a);
                var mb = b.MatchmakeAsync(new TicketCreate { Queue = "lost" },
                    s => { if (s.State == TicketStates.Matched) matched.TrySetResult(true); }, null, cts.Token);
                await Within(matched.Task, "b matched");
                // a stays away past the seat hold: its session, and the push, are lost; the matched ticket stays.
                await E2E.Eventually(() => { lock (logs) return logs.Exists(l => l.Contains("session lost")); }, "a's session lost");
                tap.Refuse = false;
                await E2E.Next<SessionLostEvent>(a);

                // Without asking for the ticket at once, a would wait for the 30 s resync, after the seat's 15 s.
                var rooms = await Task.WhenAll(ma, mb);
                Assert.AreEqual(rooms[0].Id, rooms[1].Id);
            }
            await E2E.CloseAndExpectClosed(a);
            await E2E.CloseAndExpectClosed(b);
        }
    }
}
