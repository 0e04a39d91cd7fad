// Dispatch of the server's frames: replies by cid, stream positions and
// deduplication (docs/protocol.md §4), events.
using System;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    public sealed partial class TandemClient
    {
        /// <summary>Handles one frame of conn; returns the error of a session-level error frame (for a close that follows).</summary>
        async Task<ServerException> DispatchAsync(Conn conn, Envelope env)
        {
            var s = conn.S;
            if (env.Ack > 0) lock (Mu) s.TrimResend(env.Ack);
            switch (env.Case)
            {
                case BodyCase.Ping:
                    if (env.Ping.RttUs > 0) lock (Mu) serverRttTicks = env.Ping.RttUs * 10L;
                    await SendUnreliableAsync(conn, new Envelope { Body = new Pong { TimeUs = env.Ping.TimeUs } }).ConfigureAwait(false);
                    return null;
                case BodyCase.Pong:
                    if (env.Pong.TimeUs > 0)
                    {
                        long rtt = NowUs() - env.Pong.TimeUs;
                        if (rtt > 0) lock (Mu) rttTicks = rtt * 10;
                    }
                    return null;
                case BodyCase.AckFrame:
                    return null;
                case BodyCase.Connected:
                    Debug("unexpected connected frame ignored");
                    return null;
            }
            if (env.Room != "")
            {
                DispatchRoom(s, env);
                return null;
            }
            return DispatchSession(s, env);
        }

        ServerException DispatchSession(Session s, Envelope env)
        {
            Pending p;
            TandemEvent ev = null;
            ServerException serr = null;
            lock (Mu)
            {
                if (!s.Streams.AcceptSession(env.Seq)) return null;
                switch (env.Case)
                {
                    case BodyCase.Joined:
                        {
                            var j = env.Joined;
                            Room r;
                            if (!s.Rooms.TryGetValue(j.RoomId, out r))
                            {
                                r = new Room(this, s, j.RoomId, j.RoomType);
                                s.Rooms[r.Id] = r;
                            }
                            r.state = j.State;
                            s.Streams.Join(r.Id, j.Epoch, j.Seq);
                            p = s.TakePending(env.Cid);
                            if (p != null) p.Room = r;
                            ev = new JoinedEvent { Room = r, Players = j.Players };
                            break;
                        }
                    case BodyCase.Error:
                        {
                            serr = ServerException.From(env.Error);
                            p = s.TakePending(env.Cid);
                            if (p != null)
                            {
                                p.Reply.TrySetException(serr);
                                return null;
                            }
                            var f = env.Cid != 0 ? s.Resend.Find(x => x.Cid == env.Cid) : null;
                            Emit(new ErrorEvent { Room = f != null ? f.Room : "", Topic = f != null ? f.Topic : "", Error = serr });
                            return serr;
                        }
                    case BodyCase.Notice:
                        Emit(new NoticeEvent { Kind = env.Notice.Kind, Text = env.Notice.Text });
                        return null;
                    case BodyCase.Leave:
                        {
                            // A room's final leave comes on the session stream, after every frame of its stream.
                            Room r;
                            if (!s.Rooms.TryGetValue(env.Leave.RoomId, out r)) return null;
                            s.LeftRoom(r);
                            Emit(new LeftEvent { Room = r, Reason = env.Leave.Reason, Missed = env.Leave.Missed, State = env.Leave.State });
                            return null;
                        }
                    case BodyCase.TicketStatus:
                        DispatchTicket(s, env);
                        return null;
                    default:
                        p = s.TakePending(env.Cid);
                        if (p == null) Debug("session frame ignored: " + env.Case);
                        break;
                }
            }
            // Events of a reply are queued before the reply completes, so that the
            // JoinedEvent precedes anything the application does with the room.
            if (ev != null) Emit(ev);
            if (p != null) p.Reply.TrySetResult(env);
            return null;
        }

        void DispatchRoom(Session s, Envelope env)
        {
            var id = env.Room;
            lock (Mu)
            {
                Room r;
                s.Rooms.TryGetValue(id, out r);
                bool known, fresh;
                if (env.Gap != null) s.Streams.Gap(id, env.Gap.Epoch, env.Gap.Seq, out known, out fresh);
                else s.Streams.AcceptRoom(id, env.Seq, out known, out fresh);
                if (!known || r == null || !fresh) return;
                switch (env.Case)
                {
                    case BodyCase.RoomMessage:
                        {
                            var m = env.RoomMessage;
                            Emit(new MessageEvent { Room = r, From = m.From, Topic = m.Topic, Data = m.Data, Seq = env.Seq });
                            break;
                        }
                    case BodyCase.Snapshot:
                        r.state = env.Snapshot.State;
                        Emit(new SnapshotEvent { Room = r, Tick = env.Snapshot.Tick, State = env.Snapshot.State, Seq = env.Seq });
                        break;
                    case BodyCase.Delta:
                        Emit(new DeltaEvent { Room = r, Tick = env.Delta.Tick, Patch = env.Delta.Patch, Seq = env.Seq });
                        break;
                    case BodyCase.RoomEvent:
                        {
                            var e = env.RoomEvent;
                            Emit(new RoomMemberEvent { Room = r, PlayerId = e.PlayerId, Kind = e.Kind, Reason = e.Reason, Seq = env.Seq });
                            break;
                        }
                    case BodyCase.Gap:
                        {
                            var g = env.Gap;
                            r.state = g.State;
                            Emit(new GapEvent { Room = r, FromSeq = g.FromSeq, Seq = g.Seq, Epoch = g.Epoch, State = g.State });
                            break;
                        }
                    case BodyCase.Leave:
                        s.LeftRoom(r);
                        Emit(new LeftEvent { Room = r, Reason = env.Leave.Reason, Missed = env.Leave.Missed, State = env.Leave.State });
                        break;
                    default:
                        Debug("room frame ignored: " + env.Case);
                        break;
                }
            }
        }
    }
}
