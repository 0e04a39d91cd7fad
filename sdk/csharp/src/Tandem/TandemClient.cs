// TandemClient is one player's connection to a realtime node
// (docs/protocol.md): the connect/connected handshake, heartbeats and RTT,
// client sequence numbers with the resend buffer, stream positions acked
// with ack_frame and deduplicated on receipt, requests answered by cid, and
// the reconnect loop that resumes a held session, starts a new one when the
// session is gone (rejoin class), or stops on a final close. The sdk/go
// client is the reference; this one follows it.
//
// Threads: every connection has a reader task (dispatching its frames in
// order) and a keepalive task (pings, acks, the silence limit). Writes go
// through one semaphore, so reliable frames reach the wire in seq order.
// Events are queued, never blocking the reader: read them with
// NextEventAsync or TryGetEvent (the Unity adapter does, on the main
// thread); past ClientOptions.EventQueueLimit unread ones the client closes.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    public sealed partial class TandemClient
    {
        const int MaxMoves = 3;
        static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromSeconds(10);
        static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(1);

        /// <summary>One WebSocket connection and the session it carries.</summary>
        sealed class Conn
        {
            public ITransport T;
            public Session S;
            public long LastReadTicks; // Stopwatch ticks
            public volatile bool TimedOut;
        }

        internal readonly object Mu = new object();
        readonly ClientOptions opts;
        readonly SemaphoreSlim wlock = new SemaphoreSlim(1, 1);
        readonly CancellationTokenSource life = new CancellationTokenSource();
        readonly AsyncQueue<TandemEvent> events = new AsyncQueue<TandemEvent>();
        readonly Stopwatch clock = Stopwatch.StartNew();
        readonly SemaphoreSlim moveSlot = new SemaphoreSlim(1, 1);
        readonly Random rnd = new Random();

        // Guarded by Mu.
        Conn current;          // null while (re)connecting
        Session sess = new Session();
        string url;
        ulong nextCid;         // across sessions, so a reply never answers a request of another
        Exception stopErr;
        int gen;               // bumped when a move hands the client a new connection
        Task moveTask;         // a Join following a seat reservation, while it connects
        long heartbeatTicks = DefaultHeartbeat.Ticks;
        long rttTicks, serverRttTicks;
        readonly List<Task> runs = new List<Task>(); // the RunAsync tasks (finished ones pruned by Start)
        bool overflowed;       // the event queue went past EventQueueLimit: the client is closing

        TandemClient(ClientOptions o)
        {
            opts = o;
            url = o.Url;
        }

        /// <summary>
        /// Connects, sends connect and waits for connected. A refused connect throws a CloseException (with
        /// the ServerException the server sent before closing). The client then reconnects by itself until
        /// CloseAsync or a final close.
        /// </summary>
        public static async Task<TandemClient> ConnectAsync(ClientOptions options, CancellationToken ct = default(CancellationToken))
        {
            if (options == null || string.IsNullOrEmpty(options.Url)) throw new ArgumentException("ClientOptions.Url is required");
            if (options.Token == null) throw new ArgumentException("ClientOptions.Token is required");
            var o = options.Copy();
            if (o.MinBackoff <= TimeSpan.Zero) o.MinBackoff = TimeSpan.FromMilliseconds(100);
            if (o.MaxBackoff < o.MinBackoff) o.MaxBackoff = o.MinBackoff;
            if (o.AckInterval <= TimeSpan.Zero) o.AckInterval = TimeSpan.FromMilliseconds(100);
            if (o.Transport == null) o.Transport = () => new ClientWebSocketTransport();
            var c = new TandemClient(o);
            Conn conn;
            Envelope env;
            try
            {
                var h = await c.HandshakeAsync(o.Url, false, "", ct).ConfigureAwait(false);
                conn = h.Item1;
                env = h.Item2;
                await c.AttachAsync(conn, env).ConfigureAwait(false);
            }
            catch
            {
                c.life.Cancel();
                throw;
            }
            c.Start(conn);
            return c;
        }

        public string SessionId { get { lock (Mu) return sess.Id; } }
        public string PlayerId { get { lock (Mu) return sess.PlayerId; } }
        /// <summary>The id of the node holding the session.</summary>
        public string Node { get { lock (Mu) return sess.Node; } }
        /// <summary>Where the client connects now (Url, or the node a move led to).</summary>
        public string Url { get { lock (Mu) return url; } }

        /// <summary>The last RTT of the client's own pings, or the server's measurement until then.</summary>
        public TimeSpan Rtt
        {
            get
            {
                lock (Mu) return new TimeSpan(rttTicks > 0 ? rttTicks : serverRttTicks);
            }
        }

        /// <summary>The next event; null once the client has stopped and every event was read.</summary>
        public Task<TandemEvent> NextEventAsync(CancellationToken ct = default(CancellationToken)) { return events.DequeueAsync(ct); }

        /// <summary>The next event if one is queued (for polling from a game loop).</summary>
        public bool TryGetEvent(out TandemEvent ev) { return events.TryDequeue(out ev); }

        // ---- requests ----

        /// <summary>
        /// Joins a room and waits for the answer: the room, or a ServerException. When the room lives on
        /// another node, follows the seat reservation: connects there with the seat token (the session moves;
        /// the old one's rooms end with LeftEvent reason Moved) and joins.
        /// </summary>
        public async Task<Room> JoinAsync(JoinOptions o, CancellationToken ct = default(CancellationToken))
        {
            var join = new Join
            {
                Mode = o.Mode, RoomId = o.RoomId ?? "", RoomType = o.RoomType ?? "",
                Options = o.Options ?? new byte[0], Metadata = o.Metadata ?? new byte[0],
            };
            return await JoinFrameAsync(join, ct).ConfigureAwait(false);
        }

        async Task<Room> JoinFrameAsync(Join join, CancellationToken ct)
        {
            for (int moves = 0; ; moves++)
            {
                var p = new Pending();
                Envelope rep;
                try
                {
                    rep = await RequestAsync(new Envelope { Body = join }, p, ct).ConfigureAwait(false);
                }
                catch (SessionMovedException)
                {
                    // Sent on a session another Join moved away: ask the current one.
                    if (moves == MaxMoves) throw;
                    continue;
                }
                if (p.Room != null) return p.Room;
                var sr = rep.SeatReservation;
                if (sr == null) throw Unexpected(rep);
                if (moves == MaxMoves) throw new TandemException("tandem: too many seat reservations for one join");
                if (await FollowAsync(sr, p.Session, ct).ConfigureAwait(false))
                    join = new Join { Mode = JoinMode.Join, RoomId = sr.RoomId, Metadata = join.Metadata };
            }
        }

        /// <summary>Calls a server function and returns its reply data, or throws its ServerException.</summary>
        public async Task<byte[]> RpcAsync(string method, byte[] data, CancellationToken ct = default(CancellationToken))
        {
            var rep = await RequestAsync(new Envelope { Body = new Rpc { Method = method, Data = data ?? new byte[0] } }, new Pending(), ct).ConfigureAwait(false);
            if (rep.RpcReply == null) throw Unexpected(rep);
            return rep.RpcReply.Data;
        }

        /// <summary>The open rooms of a type ("" = every type).</summary>
        public async Task<List<RoomInfo>> ListRoomsAsync(string roomType = "", CancellationToken ct = default(CancellationToken))
        {
            var rep = await RequestAsync(new Envelope { Body = new ListRooms { RoomType = roomType ?? "" } }, new Pending(), ct).ConfigureAwait(false);
            if (rep.RoomList == null) throw Unexpected(rep);
            return rep.RoomList.Rooms;
        }

        static TandemException Unexpected(Envelope e) { return new TandemException("tandem: unexpected reply " + e.Case); }

        /// <summary>Sends a reliable frame and waits for its reply by cid; it survives a resume.</summary>
        internal async Task<Envelope> RequestAsync(Envelope env, Pending p, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            await SendReliableAsync(env, p, null).ConfigureAwait(false);
            var cancelled = new TaskCompletionSource<Envelope>();
            using (ct.Register(() => cancelled.TrySetCanceled()))
            {
                var done = await Task.WhenAny(p.Reply.Task, cancelled.Task).ConfigureAwait(false);
                if (done != p.Reply.Task) Forget(p);
                return await done.ConfigureAwait(false);
            }
        }

        internal void Forget(Pending p)
        {
            lock (Mu)
                if (p.Session != null) p.Session.Pending.Remove(p.Cid);
        }

        /// <summary>
        /// Queues a reliable frame: the next cid and client seq, into the resend buffer, written at once when
        /// connected (otherwise after the next connected).
        /// </summary>
        internal async Task SendReliableAsync(Envelope env, Pending p, Room room)
        {
            await wlock.WaitAsync().ConfigureAwait(false);
            try
            {
                Conn conn;
                byte[] payload;
                lock (Mu)
                {
                    if (stopErr != null) throw stopErr is ClientClosedException ? new ClientClosedException() : stopErr;
                    if (room != null && room.Err != null) throw room.Err;
                    var s = sess;
                    if (room != null && room.Session != s) throw new RoomLeftException();
                    env.Cid = nextCid + 1;
                    env.Seq = s.Seq + 1;
                    payload = Codec.Encode(opts.Codec, env);
                    if (s.MaxFrame > 0 && payload.Length > s.MaxFrame)
                        throw new TandemException("tandem: frame larger than max_frame_bytes");
                    nextCid = env.Cid;
                    s.Seq = env.Seq;
                    var f = new OutFrame { Seq = env.Seq, Cid = env.Cid, Payload = payload };
                    var m = env.RoomMessage;
                    if (m != null)
                    {
                        f.Room = m.RoomId;
                        f.Topic = m.Topic;
                    }
                    s.Resend.Add(f);
                    if (p != null)
                    {
                        p.Session = s;
                        p.Cid = env.Cid;
                        s.Pending[env.Cid] = p;
                    }
                    conn = current;
                }
                if (conn != null) await WriteLockedAsync(conn, payload).ConfigureAwait(false);
            }
            finally
            {
                wlock.Release();
            }
        }

        /// <summary>Writes a frame; the caller holds wlock. A failed write drops the connection (the reader notices).</summary>
        async Task WriteLockedAsync(Conn conn, byte[] payload)
        {
            using (var cts = new CancellationTokenSource(HbTimeout()))
            {
                try
                {
                    await conn.T.SendAsync(payload, Codec.IsText(opts.Codec), cts.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Debug("write failed: " + e.Message);
                    conn.T.Abort();
                }
            }
        }

        async Task SendUnreliableAsync(Conn conn, Envelope env)
        {
            var payload = Codec.Encode(opts.Codec, env);
            await wlock.WaitAsync().ConfigureAwait(false);
            try
            {
                await WriteLockedAsync(conn, payload).ConfigureAwait(false);
            }
            finally
            {
                wlock.Release();
            }
        }

        async Task SendAckAsync(Conn conn)
        {
            await wlock.WaitAsync().ConfigureAwait(false);
            try
            {
                Envelope env;
                lock (Mu)
                {
                    if (current != conn || !conn.S.Streams.Dirty) return;
                    conn.S.Streams.Dirty = false;
                    env = new Envelope { Body = new Ack { Positions = conn.S.Streams.Positions() } };
                }
                await WriteLockedAsync(conn, Codec.Encode(opts.Codec, env)).ConfigureAwait(false);
            }
            finally
            {
                wlock.Release();
            }
        }

        TimeSpan HbTimeout()
        {
            if (opts.HeartbeatTimeout.HasValue) return opts.HeartbeatTimeout.Value;
            return new TimeSpan(Interlocked.Read(ref heartbeatTicks) * 5 / 2);
        }

        long NowUs() { return clock.ElapsedTicks * 1000000 / Stopwatch.Frequency + 1; }

        void Debug(string msg)
        {
            var log = opts.Log;
            if (log != null) log("tandem: " + msg);
        }

        /// <summary>Queues an event; past EventQueueLimit unread ones, drops it and closes the client (may hold Mu).</summary>
        void Emit(TandemEvent ev)
        {
            int limit = opts.EventQueueLimit;
            if (limit > 0 && events.Count >= limit)
            {
                lock (Mu)
                {
                    if (overflowed) return;
                    overflowed = true;
                }
                var err = new EventQueueFullException(limit);
                Debug(err.Message);
                Task.Run(() => CloseWithAsync(err));
                return;
            }
            events.Enqueue(ev);
        }

        // ---- close ----

        /// <summary>
        /// Closes the connection normally (1000: the session ends), stops every task and waits for them.
        /// Pending requests fail with ClientClosedException; a ClosedEvent is the last event. Idempotent.
        /// </summary>
        public Task CloseAsync() { return CloseWithAsync(new ClientClosedException()); }

        /// <summary>CloseAsync, with why as the client's end (unless it has ended already).</summary>
        async Task CloseWithAsync(Exception why)
        {
            Conn conn;
            lock (Mu)
            {
                if (stopErr == null) stopErr = why;
                conn = current;
            }
            life.Cancel();
            if (conn != null)
            {
                await wlock.WaitAsync().ConfigureAwait(false);
                try
                {
                    using (var cts = new CancellationTokenSource(CloseWait))
                        await conn.T.CloseAsync(1000, "", cts.Token).ConfigureAwait(false);
                }
                finally
                {
                    wlock.Release();
                }
            }
            Task all;
            lock (Mu) all = Task.WhenAll(runs);
            // Let the reader see the server's close echo, so the server gets a clean close, but not for long.
            if (await Task.WhenAny(all, Task.Delay(CloseWait)).ConfigureAwait(false) != all && conn != null)
                conn.T.Abort();
            try { await all.ConfigureAwait(false); } catch (Exception) { }
            Stop(why);
            Finish(null);
        }

        /// <summary>Ends the client: requests and sends fail with err from now on.</summary>
        void Stop(Exception err)
        {
            List<Pending> pend;
            lock (Mu)
            {
                if (stopErr == null) stopErr = err;
                err = stopErr;
                foreach (var r in sess.Rooms.Values) r.Gone(err);
                sess.Rooms.Clear();
                sess.Resend.Clear();
                pend = sess.Pending.Values.ToList();
                sess.Pending.Clear();
            }
            foreach (var p in pend) p.Reply.TrySetException(err);
        }

        /// <summary>The last event: Closed (none for the silent `moved`), then the queue ends.</summary>
        void Finish(Exception err)
        {
            if (err != null) Stop(err);
            Exception why;
            lock (Mu) why = stopErr;
            if (!IsMoved(why)) events.Enqueue(new ClosedEvent { Error = why }); // past EventQueueLimit too: the last event
            events.Complete();
            life.Cancel();
        }

        static bool IsMoved(Exception e)
        {
            var ce = e as CloseException;
            return ce != null && ce.Code == CloseCodes.Moved;
        }
    }

    /// <summary>A request was sent on a session that a move replaced before it was answered.</summary>
    public sealed class SessionMovedException : TandemException
    {
        public SessionMovedException() : base("tandem: the session moved to another node") { }
    }
}
