// The client's state of one server session: stream positions, the resend
// buffer of reliable frames, the requests waiting by cid, and its rooms.
// Guarded by the client's lock.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Tandem.Protocol;

namespace Tandem
{
    /// <summary>A reliable frame kept until the server's ack covers its seq.</summary>
    sealed class OutFrame
    {
        public ulong Seq, Cid;
        public byte[] Payload;
        public string Room = "", Topic = ""; // room_message only: for ErrorEvent
    }

    /// <summary>A request waiting for its reply by cid.</summary>
    sealed class Pending
    {
        public readonly TaskCompletionSource<Envelope> Reply =
            new TaskCompletionSource<Envelope>(TaskCreationOptions.RunContinuationsAsynchronously);
        public Session Session;
        public ulong Cid;
        public Room Room; // set for a joined reply
    }

    /// <summary>Positions per stream (docs/protocol.md §4): the last seq received, per room with its epoch.</summary>
    sealed class StreamTracker
    {
        public ulong SessionSeq;
        public readonly SortedDictionary<string, StreamPos> Rooms = new SortedDictionary<string, StreamPos>(StringComparer.Ordinal);
        public bool Dirty; // frames accepted since the last ack_frame

        public bool AcceptSession(ulong seq)
        {
            if (seq == 0) return true;
            if (seq <= SessionSeq) return false;
            SessionSeq = seq;
            Dirty = true;
            return true;
        }

        public void Join(string room, uint epoch, ulong seq)
        {
            Rooms[room] = new StreamPos { Room = room, Epoch = epoch, Seq = seq };
            Dirty = true;
        }

        public void Leave(string room)
        {
            Rooms.Remove(room);
            Dirty = true;
        }

        /// <summary>known: the room is joined; fresh: the frame is new.</summary>
        public void AcceptRoom(string room, ulong seq, out bool known, out bool fresh)
        {
            StreamPos p;
            known = Rooms.TryGetValue(room, out p);
            fresh = false;
            if (!known) return;
            if (seq == 0) { fresh = true; return; }
            if (seq <= p.Seq) return;
            p.Seq = seq;
            Dirty = true;
            fresh = true;
        }

        /// <summary>A gap applies whatever the seq, unless it is older than the position's epoch.</summary>
        public void Gap(string room, uint epoch, ulong seq, out bool known, out bool fresh)
        {
            StreamPos p;
            known = Rooms.TryGetValue(room, out p);
            fresh = false;
            if (!known) return;
            if (epoch < p.Epoch || (epoch == p.Epoch && seq <= p.Seq)) return;
            p.Epoch = epoch;
            p.Seq = seq;
            Dirty = true;
            fresh = true;
        }

        public List<StreamPos> Positions()
        {
            var ps = new List<StreamPos> { new StreamPos { Seq = SessionSeq } };
            ps.AddRange(Rooms.Values.Select(p => new StreamPos { Room = p.Room, Epoch = p.Epoch, Seq = p.Seq }));
            return ps;
        }
    }

    sealed class Session
    {
        public string Id = "", PlayerId = "", Node = "", ResumeToken = "";
        public TimeSpan SeatHold;
        public int MaxFrame;
        public ulong Seq; // last client seq assigned
        public List<OutFrame> Resend = new List<OutFrame>();
        public Dictionary<ulong, Pending> Pending = new Dictionary<ulong, Pending>();
        public StreamTracker Streams = new StreamTracker();
        public Dictionary<string, Room> Rooms = new Dictionary<string, Room>();

        public void TrimResend(ulong ack)
        {
            int i = 0;
            while (i < Resend.Count && Resend[i].Seq <= ack) i++;
            Resend.RemoveRange(0, i);
        }

        public Pending TakePending(ulong cid)
        {
            Pending p;
            if (cid == 0 || !Pending.TryGetValue(cid, out p)) return null;
            Pending.Remove(cid);
            return p;
        }

        public void LeftRoom(Room r)
        {
            Rooms.Remove(r.Id);
            Streams.Leave(r.Id);
            r.Gone(new RoomLeftException());
        }
    }
}
