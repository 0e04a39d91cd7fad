// Matchmaking (docs/matchmaking.md, docs/protocol.md §7.8): tickets, and
// MatchmakeAsync, which follows a ticket to its room and takes the seat:
// on the session's own node by a seated join, on another node by moving
// the session there.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    public static class TicketStates
    {
        public const string Searching = "searching", Claimed = "claimed", Matched = "matched", Seated = "seated",
            Done = "done", Cancelled = "cancelled", Expired = "expired";

        /// <summary>The ticket is over: the player may queue again.</summary>
        public static bool Ended(TicketStatus s) { return s.State == Done || s.State == Cancelled || s.State == Expired; }
    }

    public sealed partial class TandemClient
    {
        static readonly TimeSpan TicketResync = TimeSpan.FromSeconds(30);

        /// <summary>A MatchmakeAsync waiting for the pushed statuses of its queue's ticket. Guarded by Mu.</summary>
        sealed class TicketWait
        {
            public string Id = ""; // known once the create (or a status asked for) is answered
            // The queue's pushed statuses; before Id is known they may be an earlier ticket's, so they are
            // checked again when taken.
            public readonly Queue<TicketStatus> Pushed = new Queue<TicketStatus>();
            public bool Resync; // ask for the ticket before waiting again: the session was lost
            public TaskCompletionSource<bool> Wake; // set while the waiter sleeps

            public bool Concerns(TicketStatus ts) { return Id == "" || ts.TicketId == "" || ts.TicketId == Id; }

            public void Notify()
            {
                var wk = Wake;
                Wake = null;
                if (wk != null) wk.TrySetResult(true);
            }
        }

        readonly Dictionary<string, TicketWait> tickets = new Dictionary<string, TicketWait>();

        /// <summary>Called under Mu.</summary>
        void DispatchTicket(Session s, Envelope env)
        {
            var ts = env.TicketStatus;
            var p = s.TakePending(env.Cid);
            if (p != null)
            {
                p.Reply.TrySetResult(env);
                return;
            }
            if (env.Cid != 0)
            {
                Debug("unanswered ticket_status ignored");
                return;
            }
            TicketWait w;
            if (tickets.TryGetValue(ts.Queue, out w) && w.Concerns(ts))
            {
                w.Pushed.Enqueue(ts);
                w.Notify();
            }
            Emit(new TicketUpdateEvent { Status = ts });
        }

        /// <summary>
        /// The session was lost (called under Mu): the statuses pushed meanwhile went with it and the new
        /// session is sent only later changes, so every waiter asks for its ticket at once — a matched seat
        /// lives 15 s, less than TicketResync.
        /// </summary>
        void ResyncTickets()
        {
            foreach (var w in tickets.Values)
            {
                w.Resync = true;
                w.Notify();
            }
        }

        /// <summary>
        /// Puts the player in t.Queue and returns the ticket's status (searching), or throws the ServerException
        /// (validation_failed with Fields, not_found, conflict, banned, unavailable).
        /// </summary>
        public Task<TicketStatus> CreateTicketAsync(TicketCreate t, CancellationToken ct = default(CancellationToken))
        {
            return TicketRequestAsync(t, ct);
        }

        /// <summary>Takes the player's ticket out of queue; returns its status (cancelled).</summary>
        public Task<TicketStatus> CancelTicketAsync(string queue, CancellationToken ct = default(CancellationToken))
        {
            return TicketRequestAsync(new TicketCancel { Queue = queue }, ct);
        }

        /// <summary>The status of the player's ticket in queue (not_found when there is none).</summary>
        public Task<TicketStatus> TicketAsync(string queue, CancellationToken ct = default(CancellationToken))
        {
            return TicketRequestAsync(new TicketStatus { Queue = queue }, ct);
        }

        async Task<TicketStatus> TicketRequestAsync(object body, CancellationToken ct)
        {
            var rep = await RequestAsync(new Envelope { Body = body }, new Pending(), ct).ConfigureAwait(false);
            if (rep.TicketStatus == null) throw Unexpected(rep);
            return rep.TicketStatus;
        }

        /// <summary>
        /// Creates the ticket, reports each status to progress (from the reader's thread: do not block), and on
        /// a match takes the seat: on this node by a join with the seat token, on another node by moving the
        /// session there and joining. Returns the joined room. A ticket that ends first throws
        /// TicketEndedException; cancelling ct cancels the ticket (best effort). One call per queue at a time.
        /// </summary>
        public async Task<Room> MatchmakeAsync(TicketCreate t, Action<TicketStatus> progress = null, byte[] metadata = null,
            CancellationToken ct = default(CancellationToken))
        {
            var w = new TicketWait();
            lock (Mu)
            {
                if (tickets.ContainsKey(t.Queue)) throw new InvalidOperationException("tandem: a Matchmake is under way in queue " + t.Queue);
                tickets[t.Queue] = w;
            }
            try
            {
                TicketStatus st;
                try
                {
                    st = await CreateTicketAsync(t, ct).ConfigureAwait(false);
                }
                catch (SessionLostException) when (!ct.IsCancellationRequested)
                {
                    // The server may have made the ticket before the session ended: ask once, as sdk/go does.
                    st = await RecreatedAsync(w, t.Queue, ct).ConfigureAwait(false);
                    if (st == null) throw;
                }
                lock (Mu) w.Id = st.TicketId;
                string triedSeat = null;
                while (true)
                {
                    if (progress != null) progress(st);
                    if (st.State == TicketStates.Matched && st.Seat != null && st.Seat.SeatToken != triedSeat)
                    {
                        triedSeat = st.Seat.SeatToken;
                        var room = await TakeSeatAsync(st.Seat, metadata, ct).ConfigureAwait(false);
                        if (room != null) return room;
                    }
                    if (TicketStates.Ended(st)) throw new TicketEndedException(st);
                    st = await NextTicketStatusAsync(w, t.Queue, progress, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                CancelQuietly(t.Queue);
                throw;
            }
            finally
            {
                lock (Mu)
                {
                    tickets.Remove(t.Queue);
                    w.Notify();
                }
            }
        }

        /// <summary>The live ticket a create lost with its session made after all, or null.</summary>
        async Task<TicketStatus> RecreatedAsync(TicketWait w, string queue, CancellationToken ct)
        {
            TicketStatus ts;
            try
            {
                ts = await SyncTicketAsync(w, queue, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                Debug("asking for the ticket after a lost create failed: " + e.Message);
                return null;
            }
            return ts == null || TicketStates.Ended(ts) ? null : ts;
        }

        /// <summary>
        /// The next status to act on: a pushed one of this ticket (a match with a newer status behind it is
        /// passed over: its seat is gone), or the ticket's status asked for after a lost session or TicketResync
        /// of silence.
        /// </summary>
        async Task<TicketStatus> NextTicketStatusAsync(TicketWait w, string queue, Action<TicketStatus> progress, CancellationToken ct)
        {
            var since = Stopwatch.StartNew();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var passed = new List<TicketStatus>();
                TicketStatus next = null;
                Task woken = null;
                bool resync;
                lock (Mu)
                {
                    if (stopErr != null) throw stopErr;
                    resync = w.Resync || since.Elapsed >= TicketResync;
                    w.Resync = false;
                    while (!resync && next == null && w.Pushed.Count > 0)
                    {
                        var ts = w.Pushed.Dequeue();
                        // A status of an earlier ticket in the queue, pushed before the create's answer named this one.
                        if (!w.Concerns(ts)) continue;
                        if (ts.State == TicketStates.Matched && w.Pushed.Count > 0) passed.Add(ts);
                        else next = ts;
                    }
                    if (!resync && next == null)
                    {
                        w.Wake = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                        woken = w.Wake.Task;
                    }
                }
                if (progress != null) foreach (var ts in passed) progress(ts);
                if (next != null) return next;
                if (resync)
                {
                    since.Restart();
                    var ts = await SyncTicketAsync(w, queue, ct).ConfigureAwait(false);
                    if (ts != null) return ts;
                    continue;
                }
                var left = TicketResync - since.Elapsed;
                if (left < TimeSpan.Zero) left = TimeSpan.Zero;
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct, life.Token))
                {
                    try
                    {
                        await Task.WhenAny(woken, Task.Delay(left, cts.Token)).ConfigureAwait(false);
                    }
                    finally
                    {
                        cts.Cancel(); // ends the delay
                    }
                }
                if (life.IsCancellationRequested)
                    lock (Mu)
                        throw stopErr ?? new ClientClosedException();
            }
        }

        /// <summary>
        /// Asks for the ticket's status: it, or null when the answer is no news (a transient failure: the next
        /// resync asks again); not_found (the server has no ticket) and the client's end throw. A session lost
        /// meanwhile asks the new one.
        /// </summary>
        async Task<TicketStatus> SyncTicketAsync(TicketWait w, string queue, CancellationToken ct)
        {
            while (true)
            {
                TicketStatus ts;
                try
                {
                    ts = await TicketAsync(queue, ct).ConfigureAwait(false);
                }
                catch (SessionLostException)
                {
                    continue;
                }
                catch (ServerException e) when (e.Code != ErrorCodes.NotFound)
                {
                    Debug("asking for the ticket failed: " + e.Message);
                    return null;
                }
                lock (Mu)
                {
                    if (w.Id != "" && ts.TicketId != "" && ts.TicketId != w.Id)
                        throw new TandemException("tandem: ticket " + w.Id + " was replaced by " + ts.TicketId);
                    if (w.Id == "") w.Id = ts.TicketId;
                }
                return ts;
            }
        }

        /// <summary>
        /// Takes a matched seat. Null when the seat is gone (not_found, join_rejected, invalid): the server puts
        /// the ticket back in the queue or ends it. Transient failures are retried until the seat expires.
        /// </summary>
        async Task<Room> TakeSeatAsync(SeatReservation seat, byte[] metadata, CancellationToken ct)
        {
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    Session s;
                    string node;
                    lock (Mu)
                    {
                        s = sess;
                        node = sess.Node;
                    }
                    if (seat.Node == node)
                        return await JoinFrameAsync(new Join { Mode = JoinMode.Join, RoomId = seat.RoomId, SeatToken = seat.SeatToken, Metadata = metadata ?? new byte[0] }, ct).ConfigureAwait(false);
                    if (!await FollowAsync(seat, s, ct).ConfigureAwait(false)) continue; // moved meanwhile: look again
                    return await JoinFrameAsync(new Join { Mode = JoinMode.Join, RoomId = seat.RoomId, Metadata = metadata ?? new byte[0] }, ct).ConfigureAwait(false);
                }
                catch (ServerException e) when (e.Code == ErrorCodes.NotFound || e.Code == ErrorCodes.JoinRejected || e.Code == ErrorCodes.Invalid)
                {
                    return null;
                }
                catch (CloseException e) when (e.Server != null && e.Server.Code == ErrorCodes.NotFound)
                {
                    return null; // the seat's node refused the seat token
                }
                catch (Exception e) when (!(e is OperationCanceledException) && !(e is ClientClosedException))
                {
                    long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds;
                    if (seat.ExpiresAtMs > 0 && now >= seat.ExpiresAtMs) return null;
                    Debug("taking the seat failed; retrying: " + e.Message);
                    await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                }
            }
        }

        /// <summary>Cancels the ticket in the background (the caller has stopped waiting).</summary>
        void CancelQuietly(string queue)
        {
            Task.Run(() => CancelQuietlyAsync(queue));
        }

        async Task CancelQuietlyAsync(string queue)
        {
            try
            {
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(life.Token))
                {
                    cts.CancelAfter(TimeSpan.FromSeconds(5));
                    await CancelTicketAsync(queue, cts.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                Debug("cancelling the ticket failed: " + e.Message);
            }
        }
    }
}
