// The messages of protocol/tandem.proto (package tandem.v1), as plain C#
// classes. Field names follow the proto; zero values mean "absent", as in
// proto3. Enums keep numbers they do not know (forward compatibility).
using System.Collections.Generic;

namespace Tandem.Protocol
{
    public enum JoinMode { Unspecified = 0, Join = 1, Create = 2, JoinOrCreate = 3 }

    public enum LeaveReason
    {
        Unspecified = 0, Requested = 1, Kicked = 2, RoomClosed = 3, SeatExpired = 4, Moved = 5, SessionEnded = 6,
    }

    public enum Delivery { All = 0, Others = 1, List = 2, Room = 3 }

    public enum RoomEventKind { Unspecified = 0, Joined = 1, Left = 2, Disconnected = 3, Rejoined = 4 }

    /// <summary>The body cases of the envelope's oneof; the value is the field number.</summary>
    public enum BodyCase
    {
        None = 0,
        Connect = 10, Connected = 11, Join = 12, Joined = 13, Leave = 14, RoomMessage = 15, Snapshot = 16,
        Delta = 17, Rpc = 18, RpcReply = 19, Ping = 20, Pong = 21, AckFrame = 22, Error = 23, Notice = 24,
        Gap = 25, RoomEvent = 26, ListRooms = 27, RoomList = 28, SeatReservation = 29, TicketCreate = 30,
        TicketCancel = 31, TicketStatus = 32,
    }

    /// <summary>One frame. Exactly one body (or none) is set; Body returns it.</summary>
    public sealed class Envelope
    {
        public ulong Cid;
        public ulong Seq;
        public string Room = "";
        public ulong Ack;

        /// <summary>The body: one of the message classes below, or null.</summary>
        public object Body;

        public BodyCase Case { get { return Body == null ? BodyCase.None : BodyCases.Of(Body); } }

        public Connect Connect { get { return Body as Connect; } }
        public Connected Connected { get { return Body as Connected; } }
        public Join Join { get { return Body as Join; } }
        public Joined Joined { get { return Body as Joined; } }
        public Leave Leave { get { return Body as Leave; } }
        public RoomMessage RoomMessage { get { return Body as RoomMessage; } }
        public Snapshot Snapshot { get { return Body as Snapshot; } }
        public Delta Delta { get { return Body as Delta; } }
        public Rpc Rpc { get { return Body as Rpc; } }
        public RpcReply RpcReply { get { return Body as RpcReply; } }
        public Ping Ping { get { return Body as Ping; } }
        public Pong Pong { get { return Body as Pong; } }
        public Ack AckFrame { get { return Body as Ack; } }
        public Error Error { get { return Body as Error; } }
        public Notice Notice { get { return Body as Notice; } }
        public Gap Gap { get { return Body as Gap; } }
        public RoomEvent RoomEvent { get { return Body as RoomEvent; } }
        public ListRooms ListRooms { get { return Body as ListRooms; } }
        public RoomList RoomList { get { return Body as RoomList; } }
        public SeatReservation SeatReservation { get { return Body as SeatReservation; } }
        public TicketCreate TicketCreate { get { return Body as TicketCreate; } }
        public TicketCancel TicketCancel { get { return Body as TicketCancel; } }
        public TicketStatus TicketStatus { get { return Body as TicketStatus; } }
    }

    public static class BodyCases
    {
        public static BodyCase Of(object body)
        {
            if (body is Connect) return BodyCase.Connect;
            if (body is Connected) return BodyCase.Connected;
            if (body is Join) return BodyCase.Join;
            if (body is Joined) return BodyCase.Joined;
            if (body is Leave) return BodyCase.Leave;
            if (body is RoomMessage) return BodyCase.RoomMessage;
            if (body is Snapshot) return BodyCase.Snapshot;
            if (body is Delta) return BodyCase.Delta;
            if (body is Rpc) return BodyCase.Rpc;
            if (body is RpcReply) return BodyCase.RpcReply;
            if (body is Ping) return BodyCase.Ping;
            if (body is Pong) return BodyCase.Pong;
            if (body is Ack) return BodyCase.AckFrame;
            if (body is Error) return BodyCase.Error;
            if (body is Notice) return BodyCase.Notice;
            if (body is Gap) return BodyCase.Gap;
            if (body is RoomEvent) return BodyCase.RoomEvent;
            if (body is ListRooms) return BodyCase.ListRooms;
            if (body is RoomList) return BodyCase.RoomList;
            if (body is SeatReservation) return BodyCase.SeatReservation;
            if (body is TicketCreate) return BodyCase.TicketCreate;
            if (body is TicketCancel) return BodyCase.TicketCancel;
            if (body is TicketStatus) return BodyCase.TicketStatus;
            throw new System.ArgumentException("not an envelope body: " + body.GetType().Name);
        }
    }

    public sealed class StreamPos
    {
        public string Room = "";
        public uint Epoch;
        public ulong Seq;
    }

    public sealed class Connect
    {
        public string Token = "";
        public string ResumeToken = "";
        public List<StreamPos> Positions = new List<StreamPos>();
        public string Sdk = "";
        public string SeatToken = "";
    }

    public sealed class Connected
    {
        public string SessionId = "";
        public string PlayerId = "";
        public string ResumeToken = "";
        public bool Resumed;
        public uint HeartbeatMs;
        public uint SeatHoldMs;
        public string Node = "";
        public uint MaxFrameBytes;
        public List<string> Rooms = new List<string>();
    }

    public sealed class Join
    {
        public JoinMode Mode;
        public string RoomId = "";
        public string RoomType = "";
        public byte[] Options = new byte[0];
        public byte[] Metadata = new byte[0];
        public string SeatToken = "";
    }

    public sealed class Joined
    {
        public string RoomId = "";
        public string RoomType = "";
        public uint Epoch;
        public ulong Seq;
        public byte[] State = new byte[0];
        public List<string> Players = new List<string>();
    }

    public sealed class Leave
    {
        public string RoomId = "";
        public LeaveReason Reason;
        public byte[] State = new byte[0];
        public bool Missed;
    }

    public sealed class RoomMessage
    {
        public string RoomId = "";
        public string Topic = "";
        public byte[] Data = new byte[0];
        public Delivery Delivery;
        public List<string> To = new List<string>();
        public string From = "";
    }

    public sealed class Snapshot
    {
        public string RoomId = "";
        public ulong Tick;
        public byte[] State = new byte[0];
    }

    public sealed class Delta
    {
        public string RoomId = "";
        public ulong Tick;
        public byte[] Patch = new byte[0];
    }

    public sealed class Rpc
    {
        public string Method = "";
        public byte[] Data = new byte[0];
    }

    public sealed class RpcReply
    {
        public byte[] Data = new byte[0];
    }

    public sealed class Ping
    {
        public long TimeUs;
        public uint RttUs;
    }

    public sealed class Pong
    {
        public long TimeUs;
    }

    public sealed class Ack
    {
        public List<StreamPos> Positions = new List<StreamPos>();
    }

    public sealed class Error
    {
        public uint Code;
        public string Message = "";
        public bool Temporary;
        public List<FieldError> Fields = new List<FieldError>();
    }

    public sealed class FieldError
    {
        public string Field = "";
        public string Message = "";
    }

    public sealed class Notice
    {
        public string Kind = "";
        public string Text = "";
    }

    public sealed class Gap
    {
        public string RoomId = "";
        public ulong FromSeq;
        public ulong Seq;
        public uint Epoch;
        public byte[] State = new byte[0];
    }

    public sealed class RoomEvent
    {
        public string RoomId = "";
        public string PlayerId = "";
        public RoomEventKind Kind;
        public LeaveReason Reason;
    }

    public sealed class ListRooms
    {
        public string RoomType = "";
    }

    public sealed class RoomInfo
    {
        public string RoomId = "";
        public string RoomType = "";
        public uint Players;
        public uint MaxPlayers;
        public bool Open;
        public string Node = "";
    }

    public sealed class RoomList
    {
        public List<RoomInfo> Rooms = new List<RoomInfo>();
    }

    public sealed class SeatReservation
    {
        public string RoomId = "";
        public string NodeUrl = "";
        public string SeatToken = "";
        public long ExpiresAtMs;
        public string Node = "";
    }

    public sealed class TicketCreate
    {
        public string Queue = "";
        public Dictionary<string, string> StringProperties = new Dictionary<string, string>();
        public Dictionary<string, double> NumericProperties = new Dictionary<string, double>();
        public List<MatchTerm> Must = new List<MatchTerm>();
        public List<MatchTerm> Should = new List<MatchTerm>();
        public string Party = "";
        public uint PartySize;
    }

    public sealed class MatchTerm
    {
        public string Property = "";
        public List<string> OneOf = new List<string>();
        public double? Min;   // proto3 optional: null = absent
        public double? Max;
        public double Weight;
    }

    public sealed class TicketCancel
    {
        public string Queue = "";
    }

    public sealed class TicketStatus
    {
        public string TicketId = "";
        public string State = "";
        public string Queue = "";
        public long CreatedAtMs;
        public string Reason = "";
        public string MatchId = "";
        public SeatReservation Seat;
        public uint Team;
    }
}
