// The error codes of docs/protocol.md §11 and the close codes of §12, with
// the three close classes every SDK maps the same way.
using System;
using System.Collections.Generic;
using System.Linq;

namespace Tandem
{
    public static class ErrorCodes
    {
        public const uint Internal = 1, Invalid = 2, Unauthenticated = 3, PermissionDenied = 4, NotFound = 5,
            Conflict = 6, RateLimited = 7, Unavailable = 8, TooLarge = 9, UnknownMessage = 10, NotInRoom = 11,
            RoomFull = 12, JoinRejected = 13, QuotaExceeded = 14, TokenExpired = 15, UnknownRpc = 16, Timeout = 17,
            ValidationFailed = 18, MfaRequired = 19, ReauthRequired = 20, Banned = 21;

        static readonly string[] Names =
        {
            "", "internal", "invalid", "unauthenticated", "permission_denied", "not_found", "conflict", "rate_limited",
            "unavailable", "too_large", "unknown_message", "not_in_room", "room_full", "join_rejected", "quota_exceeded",
            "token_expired", "unknown_rpc", "timeout", "validation_failed", "mfa_required", "reauth_required", "banned",
        };

        /// <summary>The code's name; a code this SDK does not know counts as internal.</summary>
        public static string Name(uint code) { return code > 0 && code < Names.Length ? Names[code] : "internal"; }
    }

    public enum CloseClass { Resume = 1, Rejoin = 2, Final = 3 }

    public static class CloseCodes
    {
        public const int Abnormal = 4000, HeartbeatTimeout = 4001, SlowConsumer = 4002, ServerRestart = 4003, Replaced = 4004,
            SessionExpired = 4300, NodeDraining = 4301, NodeGone = 4302,
            BadToken = 4500, Banned = 4501, Kicked = 4502, ProtocolViolation = 4503, DuplicateSession = 4504, Moved = 4505,
            ConnectTimeout = 4506, TooLarge = 4507, PolicyViolation = 4508;

        /// <summary>What to do after a close with code (null: no code, a reset or EOF).</summary>
        public static CloseClass Class(int? code)
        {
            if (code >= 4300 && code <= 4499) return CloseClass.Rejoin;
            if (code >= 4500 && code <= 4999) return CloseClass.Final;
            return CloseClass.Resume; // 4000–4299, and any end without a code of the table
        }
    }

    /// <summary>Base of the SDK's exceptions.</summary>
    public class TandemException : Exception
    {
        public TandemException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>An error frame, or a problem+json answer of the web server.</summary>
    public sealed class ServerException : TandemException
    {
        public readonly uint Code;
        public readonly string Name;
        public readonly string ServerMessage;
        public readonly bool Temporary;
        /// <summary>validation_failed: each invalid field, as the request spells it.</summary>
        public readonly IList<KeyValuePair<string, string>> Fields;
        /// <summary>Web API: how long to wait before retrying (0: not said).</summary>
        public TimeSpan RetryAfter;
        /// <summary>Web API, banned: until when (null: permanent or not said).</summary>
        public DateTimeOffset? Until;

        public ServerException(uint code, string message, bool temporary, IList<KeyValuePair<string, string>> fields = null)
            : base("tandem: " + ErrorCodes.Name(code) + " (" + code + "): " + message)
        {
            Code = code;
            Name = ErrorCodes.Name(code);
            ServerMessage = message;
            Temporary = temporary;
            Fields = fields ?? new List<KeyValuePair<string, string>>();
        }

        public static ServerException From(Protocol.Error e)
        {
            return new ServerException(e.Code, e.Message, e.Temporary,
                e.Fields.Select(f => new KeyValuePair<string, string>(f.Field, f.Message)).ToList());
        }
    }

    /// <summary>The connection ended: with a close code (null for a reset), and the error frame that came before it.</summary>
    public sealed class CloseException : TandemException
    {
        public readonly int? Code;
        public readonly string Reason;
        public readonly ServerException Server;

        public CloseException(int? code, string reason, ServerException server)
            : base("tandem: connection closed" + (code.HasValue ? " with " + code.Value : " without a code") +
                   (string.IsNullOrEmpty(reason) ? "" : " (" + reason + ")") + (server != null ? ": " + server.Message : ""), server)
        {
            Code = code;
            Reason = reason;
            Server = server;
        }

        public CloseClass Class { get { return CloseCodes.Class(Code); } }
    }

    /// <summary>The client was closed (CloseAsync); requests fail with it.</summary>
    public sealed class ClientClosedException : TandemException
    {
        public ClientClosedException() : base("tandem: client closed") { }
    }

    /// <summary>The application left more than ClientOptions.EventQueueLimit events unread: the client closed.</summary>
    public sealed class EventQueueFullException : TandemException
    {
        public readonly int Limit;

        public EventQueueFullException(int limit) : base("tandem: more than " + limit + " events unread (read NextEventAsync or TryGetEvent); the client closed")
        {
            Limit = limit;
        }
    }

    /// <summary>The session ended (rejoin class) and a new one started; requests pending then fail with it.</summary>
    public sealed class SessionLostException : TandemException
    {
        public SessionLostException(Exception cause) : base("tandem: session lost", cause) { }
    }

    /// <summary>The room was left; sends to it fail.</summary>
    public sealed class RoomLeftException : TandemException
    {
        public RoomLeftException() : base("tandem: room left") { }
    }

    /// <summary>Matchmake's ticket ended before the player was seated.</summary>
    public sealed class TicketEndedException : TandemException
    {
        public readonly Protocol.TicketStatus Status;

        public TicketEndedException(Protocol.TicketStatus s)
            : base("tandem: the ticket in queue \"" + s.Queue + "\" ended: " + s.State + (s.Reason != "" ? " (" + s.Reason + ")" : ""))
        {
            Status = s;
        }
    }
}
