// The connection's life: handshake, attach, serve (read + keepalive),
// and after it ends, resume, start a new session, or stop (docs/protocol.md §9).
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
        /// <summary>
        /// Opens a connection to url and sends connect: resuming the session when resume is set, as a new
        /// session otherwise (with seatToken when following a seat reservation). Returns it with its connected.
        /// </summary>
        async Task<Tuple<Conn, Envelope>> HandshakeAsync(string target, bool resume, string seatToken, CancellationToken ct)
        {
            var timeout = HbTimeout();
            string token = await opts.Token(ct).ConfigureAwait(false);
            var hello = new Connect { Token = token ?? "", Sdk = opts.Sdk ?? "" };
            lock (Mu)
            {
                if (resume)
                {
                    hello.ResumeToken = sess.ResumeToken;
                    hello.Positions = sess.Streams.Positions();
                }
                else hello.SeatToken = seatToken ?? "";
            }
            var payload = Codec.Encode(opts.Codec, new Envelope { Body = hello });
            var t = opts.Transport();
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                cts.CancelAfter(timeout);
                try
                {
                    try
                    {
                        await t.ConnectAsync(new Uri(target), Codec.Subprotocol(opts.Codec), cts.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (!ct.IsCancellationRequested)
                    {
                        throw new DialException(target, e);
                    }
                    await t.SendAsync(payload, Codec.IsText(opts.Codec), cts.Token).ConfigureAwait(false);
                    ServerException serverErr = null;
                    while (true)
                    {
                        var m = await t.ReceiveAsync(cts.Token).ConfigureAwait(false);
                        if (m.Data == null)
                        {
                            if (cts.IsCancellationRequested) ct.ThrowIfCancellationRequested();
                            if (m.CloseCode != null) await AnswerCloseAsync(t, m.CloseCode.Value).ConfigureAwait(false);
                            throw new CloseException(m.CloseCode, m.CloseReason, serverErr);
                        }
                        Envelope env;
                        try { env = Codec.Decode(opts.Codec, m.Data); }
                        catch (FormatException e)
                        {
                            Debug("undecodable frame skipped: " + e.Message);
                            continue;
                        }
                        if (env.Connected != null)
                        {
                            var conn = new Conn { T = t, LastReadTicks = clock.ElapsedTicks };
                            return Tuple.Create(conn, env);
                        }
                        if (env.Error != null) serverErr = ServerException.From(env.Error);
                    }
                }
                catch (Exception e)
                {
                    t.Abort();
                    t.Dispose();
                    if (e is OperationCanceledException && !ct.IsCancellationRequested)
                        throw new TandemException("tandem: no connected within " + timeout, e);
                    throw;
                }
            }
        }

        /// <summary>
        /// Makes conn the client's connection after connected: records the session, drops what the server
        /// acked, then — before any other frame — sends ack_frame (confirming the new resume token) and resends
        /// the unacknowledged reliable frames in order.
        /// </summary>
        async Task AttachAsync(Conn conn, Envelope env)
        {
            var cd = env.Connected;
            await wlock.WaitAsync().ConfigureAwait(false);
            try
            {
                List<OutFrame> frames;
                Envelope ack;
                lock (Mu)
                {
                    if (stopErr != null)
                    {
                        conn.T.Abort();
                        throw stopErr;
                    }
                    var s = sess;
                    s.Id = cd.SessionId;
                    s.PlayerId = cd.PlayerId;
                    s.ResumeToken = cd.ResumeToken;
                    s.Node = cd.Node;
                    if (cd.HeartbeatMs > 0) heartbeatTicks = TimeSpan.FromMilliseconds(cd.HeartbeatMs).Ticks;
                    s.SeatHold = TimeSpan.FromMilliseconds(cd.SeatHoldMs);
                    s.MaxFrame = (int)cd.MaxFrameBytes;
                    s.TrimResend(env.Ack);
                    frames = s.Resend.ToList();
                    ack = new Envelope { Body = new Ack { Positions = s.Streams.Positions() } };
                    s.Streams.Dirty = false;
                    conn.S = s;
                    current = conn;
                }
                await WriteLockedAsync(conn, Codec.Encode(opts.Codec, ack)).ConfigureAwait(false);
                foreach (var f in frames) await WriteLockedAsync(conn, f.Payload).ConfigureAwait(false);
            }
            finally
            {
                wlock.Release();
            }
        }

        void Start(Conn conn)
        {
            lock (Mu)
            {
                runs.RemoveAll(t => t.IsCompleted); // a long-lived client moves many times
                runs.Add(Task.Run(() => RunAsync(conn)));
            }
        }

        /// <summary>
        /// Serves conn; when it ends, reconnects — resuming, or starting a new session — or stops. A move hands
        /// the client a new connection served by a RunAsync of its own; this one then ends the old session.
        /// </summary>
        async Task RunAsync(Conn conn)
        {
            SessionLostEvent lost = null;
            while (true)
            {
                var err = await ServeAsync(conn).ConfigureAwait(false);
                if (life.IsCancellationRequested) return;
                Task move;
                lock (Mu) move = moveTask;
                if (IsMoved(err) && move != null)
                {
                    // The old node moved the session before the Join following the reservation got connected.
                    try { await move.ConfigureAwait(false); } catch (Exception) { }
                }
                int myGen;
                lock (Mu)
                {
                    if (conn.S != sess)
                    {
                        // The session moved to another node; this was its old connection.
                        EndMoved(conn.S);
                        return;
                    }
                    myGen = gen;
                }
                Debug("connection lost: " + err.Message);
                var cls = ClassAfter(err);
                if (cls == CloseClass.Final)
                {
                    Finish(err);
                    return;
                }
                Emit(new DisconnectedEvent { Error = err });
                if (cls == CloseClass.Rejoin) lost = LoseSession(err);
                conn = await ReconnectAsync(myGen, lost, NodeGone(err)).ConfigureAwait(false);
                if (conn == null) return;
                lost = null;
            }
        }

        /// <summary>
        /// Reconnects with backoff until connected (returns the new connection), the client stops, or a move
        /// hands the client another connection meanwhile (returns null: that one has its own RunAsync).
        /// </summary>
        async Task<Conn> ReconnectAsync(int myGen, SessionLostEvent lost, bool relocate)
        {
            var endedAt = Stopwatch.StartNew();
            var sinceLocate = (Stopwatch)null;
            for (int attempt = 0; ; attempt++)
            {
                var delay = Backoff(attempt);
                try { await Task.Delay(delay, life.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return null; }
                lock (Mu)
                {
                    if (gen != myGen)
                    {
                        // A Join moved the session while the connection was down.
                        EmitAfterReconnect(lost);
                        return null;
                    }
                }
                bool resume = lost == null;
                if (resume && SeatHoldOver(endedAt.Elapsed))
                {
                    lost = LoseSession(new TandemException("tandem: disconnected longer than the seat hold"));
                    resume = false;
                }
                if (relocate && (sinceLocate == null || sinceLocate.Elapsed >= TimeSpan.FromSeconds(1)))
                {
                    sinceLocate = Stopwatch.StartNew();
                    relocate = false;
                    try
                    {
                        await LocateAsync().ConfigureAwait(false);
                    }
                    catch (LoggedOutException e)
                    {
                        Finish(e);
                        return null;
                    }
                }
                string target;
                lock (Mu) target = url;
                Tuple<Conn, Envelope> h;
                try
                {
                    h = await HandshakeAsync(target, resume, "", life.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    if (life.IsCancellationRequested) return null;
                    Debug("reconnect failed: " + e.Message);
                    relocate = relocate || NodeGone(e);
                    var cls = ClassAfter(e);
                    if (cls == CloseClass.Final || e is LoggedOutException)
                    {
                        Finish(e);
                        return null;
                    }
                    if (cls == CloseClass.Rejoin && lost == null) lost = LoseSession(e);
                    continue;
                }
                var next = h.Item1;
                var env = h.Item2;
                lock (Mu)
                {
                    if (gen != myGen)
                    {
                        next.T.Abort();
                        EmitAfterReconnect(lost);
                        return null;
                    }
                }
                if (resume && !env.Connected.Resumed)
                    lost = LoseSession(new TandemException("tandem: the server started a new session instead of resuming"));
                try
                {
                    await AttachAsync(next, env).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    return null; // stopped meanwhile
                }
                EmitAfterReconnect(lost);
                return next;
            }
        }

        void EmitAfterReconnect(SessionLostEvent lost)
        {
            if (lost != null) Emit(lost);
            else Emit(new ResumedEvent());
        }

        TimeSpan Backoff(int attempt)
        {
            long lo = opts.MinBackoff.Ticks, hi = opts.MaxBackoff.Ticks;
            long ceil = hi;
            if (attempt < 30)
            {
                long c = lo << (attempt + 1);
                if (c > 0 && c < hi) ceil = c;
            }
            double r;
            lock (rnd) r = rnd.NextDouble();
            return new TimeSpan(lo + (long)(r * (ceil - lo)));
        }

        bool SeatHoldOver(TimeSpan since)
        {
            lock (Mu) return sess.SeatHold > TimeSpan.Zero && since > sess.SeatHold;
        }

        async Task LocateAsync()
        {
            if (opts.Locate == null) return;
            try
            {
                var u = await opts.Locate(life.Token).ConfigureAwait(false);
                if (!string.IsNullOrEmpty(u)) lock (Mu) url = u;
            }
            catch (LoggedOutException) { throw; }
            catch (Exception e)
            {
                Debug("locate failed; keeping the URL: " + e.Message);
            }
        }

        /// <summary>A `moved` close that no Join of this client awaits is rejoin class: the session is lost.</summary>
        static CloseClass ClassAfter(Exception e)
        {
            if (IsMoved(e)) return CloseClass.Rejoin;
            if (e is LoggedOutException) return CloseClass.Final;
            var ce = e as CloseException;
            return ce == null ? CloseClass.Resume : ce.Class;
        }

        /// <summary>The node used seems gone, so Locate should name another.</summary>
        static bool NodeGone(Exception e)
        {
            if (e is DialException) return true;
            var ce = e as CloseException;
            return ce != null && (ce.Code == CloseCodes.NodeDraining || ce.Code == CloseCodes.NodeGone || ce.Code == CloseCodes.Moved);
        }

        /// <summary>Forgets the session: rooms, positions, client seq, resend buffer, resume token; pending requests fail.</summary>
        SessionLostEvent LoseSession(Exception cause)
        {
            var lerr = new SessionLostException(cause);
            List<string> ids;
            List<Pending> pend;
            lock (Mu)
            {
                var s = sess;
                ids = s.Rooms.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
                foreach (var r in s.Rooms.Values) r.Gone(lerr);
                s.Rooms.Clear();
                s.Streams = new StreamTracker();
                s.Seq = 0;
                s.Resend.Clear();
                s.ResumeToken = "";
                pend = s.Pending.Values.ToList();
                s.Pending.Clear();
                ResyncTickets();
            }
            Debug("session lost: " + cause.Message);
            foreach (var p in pend) p.Reply.TrySetException(lerr);
            return new SessionLostEvent { Rooms = ids, Error = cause };
        }

        /// <summary>
        /// Reads and dispatches the frames of conn until it ends, with a keepalive beside it: pings every
        /// heartbeat, ack_frame every AckInterval while frames arrive, and the silence limit.
        /// </summary>
        async Task<Exception> ServeAsync(Conn conn)
        {
            using (var stop = new CancellationTokenSource())
            {
                var ka = Task.Run(() => KeepaliveAsync(conn, stop.Token));
                ServerException lastErr = null;
                Exception end;
                int? closeCode = null;
                while (true)
                {
                    TransportMessage m;
                    try
                    {
                        m = await conn.T.ReceiveAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        m = new TransportMessage();
                        Debug("read failed: " + e.Message);
                    }
                    if (m.Data == null)
                    {
                        if (conn.TimedOut && m.CloseCode == null) end = new TandemException("tandem: no frame within the heartbeat timeout");
                        else end = new CloseException(m.CloseCode, m.CloseReason, lastErr);
                        closeCode = m.CloseCode;
                        break;
                    }
                    Interlocked.Exchange(ref conn.LastReadTicks, clock.ElapsedTicks);
                    Envelope env;
                    try { env = Codec.Decode(opts.Codec, m.Data); }
                    catch (FormatException e)
                    {
                        Debug("undecodable frame skipped: " + e.Message);
                        continue;
                    }
                    if (life.IsCancellationRequested) continue; // closing: only wait for the echo
                    lastErr = await DispatchAsync(conn, env).ConfigureAwait(false);
                }
                stop.Cancel();
                try { await ka.ConfigureAwait(false); } catch (Exception) { }
                if (closeCode != null && await wlock.WaitAsync(CloseWait).ConfigureAwait(false))
                {
                    try { await AnswerCloseAsync(conn.T, closeCode.Value).ConfigureAwait(false); }
                    finally { wlock.Release(); }
                }
                conn.T.Abort();
                conn.T.Dispose();
                lock (Mu)
                    if (current == conn) current = null;
                return end;
            }
        }

        /// <summary>
        /// Answers the peer's close frame with one of ours, echoing its code (RFC 6455 §5.5.1), before the socket
        /// is dropped; the transport skips it when the close was ours (its echo ends the handshake). A code that
        /// may not be sent (1005, 1006, 1015) is answered with 1000. The caller holds wlock, or t is not shared yet.
        /// </summary>
        async Task AnswerCloseAsync(ITransport t, int code)
        {
            if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015) code = 1000;
            try
            {
                using (var cts = new CancellationTokenSource(CloseWait))
                    await t.CloseAsync(code, "", cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Debug("answering the close failed: " + e.Message);
            }
        }

        async Task KeepaliveAsync(Conn conn, CancellationToken stop)
        {
            var sincePing = Stopwatch.StartNew();
            var tick = opts.AckInterval;
            while (!stop.IsCancellationRequested && !life.IsCancellationRequested)
            {
                try { await Task.Delay(tick, stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                long silent = clock.ElapsedTicks - Interlocked.Read(ref conn.LastReadTicks);
                if (TimeSpan.FromSeconds((double)silent / Stopwatch.Frequency) > HbTimeout())
                {
                    conn.TimedOut = true;
                    conn.T.Abort();
                    return;
                }
                await SendAckAsync(conn).ConfigureAwait(false);
                if (sincePing.Elapsed >= new TimeSpan(Interlocked.Read(ref heartbeatTicks)))
                {
                    sincePing.Restart();
                    await SendUnreliableAsync(conn, new Envelope { Body = new Ping { TimeUs = NowUs() } }).ConfigureAwait(false);
                }
            }
        }

        // ---- moves (docs/protocol.md §7.1: a room on another node) ----

        /// <summary>
        /// Connects to the node a seat reservation names with its seat token and makes that connection the
        /// client's. False, without moving, when the reservation is stale (another Join moved the session
        /// since it was sent). A refusal by the node throws and changes nothing.
        /// </summary>
        internal async Task<bool> FollowAsync(SeatReservation sr, Session sentOn, CancellationToken ct)
        {
            if (string.IsNullOrEmpty(sr.NodeUrl)) throw new TandemException("tandem: seat reservation without a node URL");
            await moveSlot.WaitAsync(ct).ConfigureAwait(false);
            var done = new TaskCompletionSource<bool>();
            try
            {
                lock (Mu)
                {
                    if (stopErr != null) throw stopErr;
                    if (sess != sentOn) return false;
                    moveTask = done.Task;
                }
                Tuple<Conn, Envelope> h;
                using (var hctx = CancellationTokenSource.CreateLinkedTokenSource(ct, life.Token))
                    h = await HandshakeAsync(sr.NodeUrl, false, sr.SeatToken, hctx.Token).ConfigureAwait(false);
                // From here the move is done on the server's side: the old node ends the old session.
                Session prev;
                Conn old;
                lock (Mu)
                {
                    prev = sess;
                    old = current;
                    sess = new Session();
                    url = sr.NodeUrl;
                    gen++;
                }
                await AttachAsync(h.Item1, h.Item2).ConfigureAwait(false);
                Start(h.Item1);
                if (old == null) EndMoved(prev);
                else DrainOld(old);
                return true;
            }
            finally
            {
                lock (Mu) moveTask = null;
                done.TrySetResult(true);
                moveSlot.Release();
            }
        }

        /// <summary>The old node should close a moved session's connection with `moved`; if it does not, close it.</summary>
        void DrainOld(Conn old)
        {
            var limit = HbTimeout();
            Task.Run(async () =>
            {
                try { await Task.Delay(limit, life.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                Debug("the old node did not end the moved session; closing it");
                using (var cts = new CancellationTokenSource(CloseWait))
                    await old.T.CloseAsync(1000, "", cts.Token).ConfigureAwait(false);
                try { await Task.Delay(CloseWait).ConfigureAwait(false); } catch (Exception) { }
                old.T.Abort();
            });
        }

        /// <summary>
        /// Ends a session that moved: a room the old node did not leave is left with Moved all the same
        /// (Missed: its last frames may be lost); its pending requests fail so that they are asked again.
        /// </summary>
        void EndMoved(Session s)
        {
            var left = new List<TandemEvent>();
            List<Pending> pend;
            bool stopped;
            lock (Mu)
            {
                stopped = stopErr != null;
                foreach (var id in s.Rooms.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList())
                {
                    var r = s.Rooms[id];
                    s.LeftRoom(r);
                    left.Add(new LeftEvent { Room = r, Reason = LeaveReason.Moved, Missed = true, State = r.state });
                }
                pend = s.Pending.Values.ToList();
                s.Pending.Clear();
                s.Resend.Clear();
            }
            foreach (var p in pend) p.Reply.TrySetException(new SessionMovedException());
            if (!stopped) foreach (var ev in left) Emit(ev);
        }
    }

    /// <summary>The WebSocket could not be opened (no answer, or a refused upgrade).</summary>
    public sealed class DialException : TandemException
    {
        public DialException(string url, Exception inner) : base("tandem: dial " + url + ": " + inner.Message, inner) { }
    }
}
