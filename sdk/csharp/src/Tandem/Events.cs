// What the application sees, in stream order and exactly once, through
// TandemClient.NextEventAsync / TryGetEvent (or the Unity adapter's
// callbacks, on the main thread).
using System;
using System.Collections.Generic;
using Tandem.Protocol;

namespace Tandem
{
    public abstract class TandemEvent { }

    /// <summary>The client joined a room (its stream's events follow).</summary>
    public sealed class JoinedEvent : TandemEvent { public Room Room; public List<string> Players; }

    public sealed class MessageEvent : TandemEvent { public Room Room; public string From; public string Topic; public byte[] Data; public ulong Seq; }

    public sealed class SnapshotEvent : TandemEvent { public Room Room; public ulong Tick; public byte[] State; public ulong Seq; }

    public sealed class DeltaEvent : TandemEvent { public Room Room; public ulong Tick; public byte[] Patch; public ulong Seq; }

    /// <summary>Another member joined, left, disconnected or came back.</summary>
    public sealed class RoomMemberEvent : TandemEvent { public Room Room; public string PlayerId; public RoomEventKind Kind; public LeaveReason Reason; public ulong Seq; }

    /// <summary>Frames of the room were lost: State replaces the room's state; refresh what derives from the missed frames.</summary>
    public sealed class GapEvent : TandemEvent { public Room Room; public ulong FromSeq; public ulong Seq; public uint Epoch; public byte[] State; }

    /// <summary>The client is no longer in the room. Missed: frames may be lost, State is the final snapshot.</summary>
    public sealed class LeftEvent : TandemEvent { public Room Room; public LeaveReason Reason; public bool Missed; public byte[] State; }

    public sealed class NoticeEvent : TandemEvent { public string Kind; public string Text; }

    /// <summary>The server pushed a change of one of the player's tickets.</summary>
    public sealed class TicketUpdateEvent : TandemEvent { public TicketStatus Status; }

    /// <summary>An error frame that answers no waiting request (a room message refused, say).</summary>
    public sealed class ErrorEvent : TandemEvent { public string Room; public string Topic; public ServerException Error; }

    /// <summary>The connection was lost; the client reconnects by itself.</summary>
    public sealed class DisconnectedEvent : TandemEvent { public Exception Error; }

    /// <summary>The held session was resumed; nothing was lost.</summary>
    public sealed class ResumedEvent : TandemEvent { }

    /// <summary>The session was gone; a new one started. Rooms lists the rooms it was in: join them again.</summary>
    public sealed class SessionLostEvent : TandemEvent { public List<string> Rooms; public Exception Error; }

    /// <summary>The client stopped for good: after CloseAsync (Error is ClientClosedException) or a final close.</summary>
    public sealed class ClosedEvent : TandemEvent { public Exception Error; }
}
