// The tandem.v1.json codec: protobuf's canonical JSON mapping (protojson)
// of the Envelope, with the proto field names (docs/protocol.md §2.2).
// Written by hand on Newtonsoft.Json's JObject: zero values are left out,
// 64-bit integers are decimal strings, bytes are standard base64, enums
// are their names. The reader also takes lowerCamelCase names, numbers for
// 64-bit integers and enums, and every base64 alphabet, and ignores keys
// it does not know.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Tandem.Protocol
{
    public static class JsonCodec
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        static readonly string[] JoinModeNames = { "JOIN_MODE_UNSPECIFIED", "JOIN_MODE_JOIN", "JOIN_MODE_CREATE", "JOIN_MODE_JOIN_OR_CREATE" };
        static readonly string[] LeaveReasonNames =
        {
            "LEAVE_REASON_UNSPECIFIED", "LEAVE_REASON_REQUESTED", "LEAVE_REASON_KICKED", "LEAVE_REASON_ROOM_CLOSED",
            "LEAVE_REASON_SEAT_EXPIRED", "LEAVE_REASON_MOVED", "LEAVE_REASON_SESSION_ENDED",
        };
        static readonly string[] DeliveryNames = { "DELIVERY_ALL", "DELIVERY_OTHERS", "DELIVERY_LIST", "DELIVERY_ROOM" };
        static readonly string[] RoomEventKindNames =
        {
            "ROOM_EVENT_UNSPECIFIED", "ROOM_EVENT_JOINED", "ROOM_EVENT_LEFT", "ROOM_EVENT_DISCONNECTED", "ROOM_EVENT_REJOINED",
        };

        static readonly Dictionary<BodyCase, string> BodyNames = new Dictionary<BodyCase, string>
        {
            { BodyCase.Connect, "connect" }, { BodyCase.Connected, "connected" }, { BodyCase.Join, "join" },
            { BodyCase.Joined, "joined" }, { BodyCase.Leave, "leave" }, { BodyCase.RoomMessage, "room_message" },
            { BodyCase.Snapshot, "snapshot" }, { BodyCase.Delta, "delta" }, { BodyCase.Rpc, "rpc" },
            { BodyCase.RpcReply, "rpc_reply" }, { BodyCase.Ping, "ping" }, { BodyCase.Pong, "pong" },
            { BodyCase.AckFrame, "ack_frame" }, { BodyCase.Error, "error" }, { BodyCase.Notice, "notice" },
            { BodyCase.Gap, "gap" }, { BodyCase.RoomEvent, "room_event" }, { BodyCase.ListRooms, "list_rooms" },
            { BodyCase.RoomList, "room_list" }, { BodyCase.SeatReservation, "seat_reservation" },
            { BodyCase.TicketCreate, "ticket_create" }, { BodyCase.TicketCancel, "ticket_cancel" },
            { BodyCase.TicketStatus, "ticket_status" },
        };

        // ---- encoding ----

        /// <summary>The envelope as compact JSON text (UTF-8).</summary>
        public static byte[] Encode(Envelope e) { return Utf8.GetBytes(ToJson(e).ToString(Formatting.None)); }

        public static JObject ToJson(Envelope e)
        {
            var o = new JObject();
            U64(o, "cid", e.Cid);
            U64(o, "seq", e.Seq);
            Str(o, "room", e.Room);
            U64(o, "ack", e.Ack);
            if (e.Body != null) o[BodyNames[e.Case]] = BodyToJson(e.Body);
            return o;
        }

        static JObject BodyToJson(object body)
        {
            var o = new JObject();
            switch (BodyCases.Of(body))
            {
                case BodyCase.Connect:
                    {
                        var m = (Connect)body;
                        Str(o, "token", m.Token); Str(o, "resume_token", m.ResumeToken);
                        List(o, "positions", m.Positions.Select(PosToJson));
                        Str(o, "sdk", m.Sdk); Str(o, "seat_token", m.SeatToken);
                        break;
                    }
                case BodyCase.Connected:
                    {
                        var m = (Connected)body;
                        Str(o, "session_id", m.SessionId); Str(o, "player_id", m.PlayerId);
                        Str(o, "resume_token", m.ResumeToken); Bool(o, "resumed", m.Resumed);
                        U32(o, "heartbeat_ms", m.HeartbeatMs); U32(o, "seat_hold_ms", m.SeatHoldMs);
                        Str(o, "node", m.Node); U32(o, "max_frame_bytes", m.MaxFrameBytes);
                        Strs(o, "rooms", m.Rooms);
                        break;
                    }
                case BodyCase.Join:
                    {
                        var m = (Join)body;
                        Enum(o, "mode", (int)m.Mode, JoinModeNames); Str(o, "room_id", m.RoomId);
                        Str(o, "room_type", m.RoomType); Bytes(o, "options", m.Options);
                        Bytes(o, "metadata", m.Metadata); Str(o, "seat_token", m.SeatToken);
                        break;
                    }
                case BodyCase.Joined:
                    {
                        var m = (Joined)body;
                        Str(o, "room_id", m.RoomId); Str(o, "room_type", m.RoomType); U32(o, "epoch", m.Epoch);
                        U64(o, "seq", m.Seq); Bytes(o, "state", m.State); Strs(o, "players", m.Players);
                        break;
                    }
                case BodyCase.Leave:
                    {
                        var m = (Leave)body;
                        Str(o, "room_id", m.RoomId); Enum(o, "reason", (int)m.Reason, LeaveReasonNames);
                        Bytes(o, "state", m.State); Bool(o, "missed", m.Missed);
                        break;
                    }
                case BodyCase.RoomMessage:
                    {
                        var m = (RoomMessage)body;
                        Str(o, "room_id", m.RoomId); Str(o, "topic", m.Topic); Bytes(o, "data", m.Data);
                        Enum(o, "delivery", (int)m.Delivery, DeliveryNames); Strs(o, "to", m.To); Str(o, "from", m.From);
                        break;
                    }
                case BodyCase.Snapshot:
                    {
                        var m = (Snapshot)body;
                        Str(o, "room_id", m.RoomId); U64(o, "tick", m.Tick); Bytes(o, "state", m.State);
                        break;
                    }
                case BodyCase.Delta:
                    {
                        var m = (Delta)body;
                        Str(o, "room_id", m.RoomId); U64(o, "tick", m.Tick); Bytes(o, "patch", m.Patch);
                        break;
                    }
                case BodyCase.Rpc:
                    {
                        var m = (Rpc)body;
                        Str(o, "method", m.Method); Bytes(o, "data", m.Data);
                        break;
                    }
                case BodyCase.RpcReply: Bytes(o, "data", ((RpcReply)body).Data); break;
                case BodyCase.Ping:
                    {
                        var m = (Ping)body;
                        I64(o, "time_us", m.TimeUs); U32(o, "rtt_us", m.RttUs);
                        break;
                    }
                case BodyCase.Pong: I64(o, "time_us", ((Pong)body).TimeUs); break;
                case BodyCase.AckFrame: List(o, "positions", ((Ack)body).Positions.Select(PosToJson)); break;
                case BodyCase.Error:
                    {
                        var m = (Error)body;
                        U32(o, "code", m.Code); Str(o, "message", m.Message); Bool(o, "temporary", m.Temporary);
                        List(o, "fields", m.Fields.Select(f =>
                        {
                            var fo = new JObject();
                            Str(fo, "field", f.Field); Str(fo, "message", f.Message);
                            return fo;
                        }));
                        break;
                    }
                case BodyCase.Notice:
                    {
                        var m = (Notice)body;
                        Str(o, "kind", m.Kind); Str(o, "text", m.Text);
                        break;
                    }
                case BodyCase.Gap:
                    {
                        var m = (Gap)body;
                        Str(o, "room_id", m.RoomId); U64(o, "from_seq", m.FromSeq); U64(o, "seq", m.Seq);
                        U32(o, "epoch", m.Epoch); Bytes(o, "state", m.State);
                        break;
                    }
                case BodyCase.RoomEvent:
                    {
                        var m = (RoomEvent)body;
                        Str(o, "room_id", m.RoomId); Str(o, "player_id", m.PlayerId);
                        Enum(o, "kind", (int)m.Kind, RoomEventKindNames); Enum(o, "reason", (int)m.Reason, LeaveReasonNames);
                        break;
                    }
                case BodyCase.ListRooms: Str(o, "room_type", ((ListRooms)body).RoomType); break;
                case BodyCase.RoomList:
                    List(o, "rooms", ((RoomList)body).Rooms.Select(r =>
                    {
                        var ro = new JObject();
                        Str(ro, "room_id", r.RoomId); Str(ro, "room_type", r.RoomType); U32(ro, "players", r.Players);
                        U32(ro, "max_players", r.MaxPlayers); Bool(ro, "open", r.Open); Str(ro, "node", r.Node);
                        return ro;
                    }));
                    break;
                case BodyCase.SeatReservation: return SeatToJson((SeatReservation)body);
                case BodyCase.TicketCreate:
                    {
                        var m = (TicketCreate)body;
                        Str(o, "queue", m.Queue);
                        if (m.StringProperties.Count > 0)
                        {
                            var so = new JObject();
                            foreach (var kv in m.StringProperties.OrderBy(kv => kv.Key, StringComparer.Ordinal)) so[kv.Key] = kv.Value;
                            o["string_properties"] = so;
                        }
                        if (m.NumericProperties.Count > 0)
                        {
                            var no = new JObject();
                            foreach (var kv in m.NumericProperties.OrderBy(kv => kv.Key, StringComparer.Ordinal)) no[kv.Key] = DoubleToken(kv.Value);
                            o["numeric_properties"] = no;
                        }
                        List(o, "must", m.Must.Select(TermToJson));
                        List(o, "should", m.Should.Select(TermToJson));
                        Str(o, "party", m.Party); U32(o, "party_size", m.PartySize);
                        break;
                    }
                case BodyCase.TicketCancel: Str(o, "queue", ((TicketCancel)body).Queue); break;
                case BodyCase.TicketStatus:
                    {
                        var m = (TicketStatus)body;
                        Str(o, "ticket_id", m.TicketId); Str(o, "state", m.State); Str(o, "queue", m.Queue);
                        I64(o, "created_at_ms", m.CreatedAtMs); Str(o, "reason", m.Reason); Str(o, "match_id", m.MatchId);
                        if (m.Seat != null) o["seat"] = SeatToJson(m.Seat);
                        U32(o, "team", m.Team);
                        break;
                    }
            }
            return o;
        }

        static JObject PosToJson(StreamPos p)
        {
            var o = new JObject();
            Str(o, "room", p.Room); U32(o, "epoch", p.Epoch); U64(o, "seq", p.Seq);
            return o;
        }

        static JObject SeatToJson(SeatReservation m)
        {
            var o = new JObject();
            Str(o, "room_id", m.RoomId); Str(o, "node_url", m.NodeUrl); Str(o, "seat_token", m.SeatToken);
            I64(o, "expires_at_ms", m.ExpiresAtMs); Str(o, "node", m.Node);
            return o;
        }

        static JObject TermToJson(MatchTerm t)
        {
            var o = new JObject();
            Str(o, "property", t.Property); Strs(o, "one_of", t.OneOf);
            if (t.Min.HasValue) o["min"] = DoubleToken(t.Min.Value);
            if (t.Max.HasValue) o["max"] = DoubleToken(t.Max.Value);
            if (BitConverter.DoubleToInt64Bits(t.Weight) != 0) o["weight"] = DoubleToken(t.Weight);
            return o;
        }

        static void U64(JObject o, string k, ulong v) { if (v != 0) o[k] = v.ToString(CultureInfo.InvariantCulture); }
        static void I64(JObject o, string k, long v) { if (v != 0) o[k] = v.ToString(CultureInfo.InvariantCulture); }
        static void U32(JObject o, string k, uint v) { if (v != 0) o[k] = (long)v; }
        static void Bool(JObject o, string k, bool v) { if (v) o[k] = true; }
        static void Str(JObject o, string k, string v) { if (!string.IsNullOrEmpty(v)) o[k] = v; }
        static void Bytes(JObject o, string k, byte[] v) { if (v != null && v.Length > 0) o[k] = Convert.ToBase64String(v); }
        static void Strs(JObject o, string k, List<string> v) { if (v.Count > 0) o[k] = new JArray(v.Cast<object>().ToArray()); }

        static void List(JObject o, string k, IEnumerable<JObject> items)
        {
            var a = new JArray(items.Cast<object>().ToArray());
            if (a.Count > 0) o[k] = a;
        }

        static void Enum(JObject o, string k, int v, string[] names)
        {
            if (v == 0) return;
            if (v > 0 && v < names.Length) o[k] = names[v];
            else o[k] = v; // a number this SDK has no name for stays a number
        }

        static JToken DoubleToken(double d)
        {
            if (double.IsNaN(d)) return "NaN";
            if (double.IsPositiveInfinity(d)) return "Infinity";
            if (double.IsNegativeInfinity(d)) return "-Infinity";
            if (Math.Floor(d) == d && Math.Abs(d) < 1e15 && BitConverter.DoubleToInt64Bits(d) != long.MinValue) return (long)d;
            return d;
        }

        // ---- decoding ----

        /// <summary>Decodes an envelope; FormatException when the text is not one.</summary>
        public static Envelope Decode(byte[] data)
        {
            string text;
            try { text = Utf8.GetString(data); }
            catch (ArgumentException e) { throw new FormatException("json: not UTF-8", e); }
            return Decode(text);
        }

        public static Envelope Decode(string text)
        {
            JObject o;
            try { o = Parse(text) as JObject; }
            catch (JsonException e) { throw new FormatException("json: " + e.Message, e); }
            if (o == null) throw new FormatException("json: an envelope is an object");
            return FromJson(o);
        }

        /// <summary>Parses JSON without turning date-like strings into dates.</summary>
        public static JToken Parse(string text)
        {
            using (var r = new JsonTextReader(new StringReader(text)) { DateParseHandling = DateParseHandling.None, FloatParseHandling = FloatParseHandling.Double })
            {
                var t = JToken.ReadFrom(r);
                while (r.Read())
                    if (r.TokenType != JsonToken.Comment) throw new FormatException("json: text after the value");
                return t;
            }
        }

        public static Envelope FromJson(JObject o)
        {
            var e = new Envelope
            {
                Cid = GetU64(o, "cid"),
                Seq = GetU64(o, "seq"),
                Room = GetStr(o, "room"),
                Ack = GetU64(o, "ack"),
            };
            foreach (var kv in BodyNames)
            {
                var t = Field(o, kv.Value);
                if (t == null || t.Type == JTokenType.Null) continue;
                var b = t as JObject;
                if (b == null) throw new FormatException("json: " + kv.Value + " is not an object");
                if (e.Body != null) throw new FormatException("json: two bodies in one envelope");
                e.Body = BodyFromJson(kv.Key, b);
            }
            return e;
        }

        static object BodyFromJson(BodyCase c, JObject o)
        {
            switch (c)
            {
                case BodyCase.Connect:
                    {
                        var m = new Connect { Token = GetStr(o, "token"), ResumeToken = GetStr(o, "resume_token"), Sdk = GetStr(o, "sdk"), SeatToken = GetStr(o, "seat_token") };
                        m.Positions.AddRange(Objects(o, "positions").Select(PosFromJson));
                        return m;
                    }
                case BodyCase.Connected:
                    {
                        var m = new Connected
                        {
                            SessionId = GetStr(o, "session_id"), PlayerId = GetStr(o, "player_id"), ResumeToken = GetStr(o, "resume_token"),
                            Resumed = GetBool(o, "resumed"), HeartbeatMs = GetU32(o, "heartbeat_ms"), SeatHoldMs = GetU32(o, "seat_hold_ms"),
                            Node = GetStr(o, "node"), MaxFrameBytes = GetU32(o, "max_frame_bytes"),
                        };
                        m.Rooms.AddRange(GetStrs(o, "rooms"));
                        return m;
                    }
                case BodyCase.Join:
                    return new Join
                    {
                        Mode = (JoinMode)GetEnum(o, "mode", JoinModeNames), RoomId = GetStr(o, "room_id"), RoomType = GetStr(o, "room_type"),
                        Options = GetBytes(o, "options"), Metadata = GetBytes(o, "metadata"), SeatToken = GetStr(o, "seat_token"),
                    };
                case BodyCase.Joined:
                    {
                        var m = new Joined
                        {
                            RoomId = GetStr(o, "room_id"), RoomType = GetStr(o, "room_type"), Epoch = GetU32(o, "epoch"),
                            Seq = GetU64(o, "seq"), State = GetBytes(o, "state"),
                        };
                        m.Players.AddRange(GetStrs(o, "players"));
                        return m;
                    }
                case BodyCase.Leave:
                    return new Leave
                    {
                        RoomId = GetStr(o, "room_id"), Reason = (LeaveReason)GetEnum(o, "reason", LeaveReasonNames),
                        State = GetBytes(o, "state"), Missed = GetBool(o, "missed"),
                    };
                case BodyCase.RoomMessage:
                    {
                        var m = new RoomMessage
                        {
                            RoomId = GetStr(o, "room_id"), Topic = GetStr(o, "topic"), Data = GetBytes(o, "data"),
                            Delivery = (Delivery)GetEnum(o, "delivery", DeliveryNames), From = GetStr(o, "from"),
                        };
                        m.To.AddRange(GetStrs(o, "to"));
                        return m;
                    }
                case BodyCase.Snapshot:
                    return new Snapshot { RoomId = GetStr(o, "room_id"), Tick = GetU64(o, "tick"), State = GetBytes(o, "state") };
                case BodyCase.Delta:
                    return new Delta { RoomId = GetStr(o, "room_id"), Tick = GetU64(o, "tick"), Patch = GetBytes(o, "patch") };
                case BodyCase.Rpc: return new Rpc { Method = GetStr(o, "method"), Data = GetBytes(o, "data") };
                case BodyCase.RpcReply: return new RpcReply { Data = GetBytes(o, "data") };
                case BodyCase.Ping: return new Ping { TimeUs = GetI64(o, "time_us"), RttUs = GetU32(o, "rtt_us") };
                case BodyCase.Pong: return new Pong { TimeUs = GetI64(o, "time_us") };
                case BodyCase.AckFrame:
                    {
                        var m = new Ack();
                        m.Positions.AddRange(Objects(o, "positions").Select(PosFromJson));
                        return m;
                    }
                case BodyCase.Error:
                    {
                        var m = new Error { Code = GetU32(o, "code"), Message = GetStr(o, "message"), Temporary = GetBool(o, "temporary") };
                        m.Fields.AddRange(Objects(o, "fields").Select(f => new FieldError { Field = GetStr(f, "field"), Message = GetStr(f, "message") }));
                        return m;
                    }
                case BodyCase.Notice: return new Notice { Kind = GetStr(o, "kind"), Text = GetStr(o, "text") };
                case BodyCase.Gap:
                    return new Gap
                    {
                        RoomId = GetStr(o, "room_id"), FromSeq = GetU64(o, "from_seq"), Seq = GetU64(o, "seq"),
                        Epoch = GetU32(o, "epoch"), State = GetBytes(o, "state"),
                    };
                case BodyCase.RoomEvent:
                    return new RoomEvent
                    {
                        RoomId = GetStr(o, "room_id"), PlayerId = GetStr(o, "player_id"),
                        Kind = (RoomEventKind)GetEnum(o, "kind", RoomEventKindNames), Reason = (LeaveReason)GetEnum(o, "reason", LeaveReasonNames),
                    };
                case BodyCase.ListRooms: return new ListRooms { RoomType = GetStr(o, "room_type") };
                case BodyCase.RoomList:
                    {
                        var m = new RoomList();
                        m.Rooms.AddRange(Objects(o, "rooms").Select(r => new RoomInfo
                        {
                            RoomId = GetStr(r, "room_id"), RoomType = GetStr(r, "room_type"), Players = GetU32(r, "players"),
                            MaxPlayers = GetU32(r, "max_players"), Open = GetBool(r, "open"), Node = GetStr(r, "node"),
                        }));
                        return m;
                    }
                case BodyCase.SeatReservation: return SeatFromJson(o);
                case BodyCase.TicketCreate:
                    {
                        var m = new TicketCreate { Queue = GetStr(o, "queue"), Party = GetStr(o, "party"), PartySize = GetU32(o, "party_size") };
                        var so = MapObject(o, "string_properties");
                        if (so != null) foreach (var p in so.Properties()) m.StringProperties[p.Name] = AsString(p.Value, p.Name);
                        var no = MapObject(o, "numeric_properties");
                        if (no != null) foreach (var p in no.Properties()) m.NumericProperties[p.Name] = AsDouble(p.Value, p.Name);
                        m.Must.AddRange(Objects(o, "must").Select(TermFromJson));
                        m.Should.AddRange(Objects(o, "should").Select(TermFromJson));
                        return m;
                    }
                case BodyCase.TicketCancel: return new TicketCancel { Queue = GetStr(o, "queue") };
                case BodyCase.TicketStatus:
                    {
                        var m = new TicketStatus
                        {
                            TicketId = GetStr(o, "ticket_id"), State = GetStr(o, "state"), Queue = GetStr(o, "queue"),
                            CreatedAtMs = GetI64(o, "created_at_ms"), Reason = GetStr(o, "reason"), MatchId = GetStr(o, "match_id"),
                            Team = GetU32(o, "team"),
                        };
                        var seat = Field(o, "seat");
                        if (seat != null && seat.Type != JTokenType.Null)
                        {
                            var so = seat as JObject;
                            if (so == null) throw new FormatException("json: seat is not an object");
                            m.Seat = SeatFromJson(so);
                        }
                        return m;
                    }
            }
            throw new FormatException("json: unknown body " + c);
        }

        static StreamPos PosFromJson(JObject o)
        {
            return new StreamPos { Room = GetStr(o, "room"), Epoch = GetU32(o, "epoch"), Seq = GetU64(o, "seq") };
        }

        static SeatReservation SeatFromJson(JObject o)
        {
            return new SeatReservation
            {
                RoomId = GetStr(o, "room_id"), NodeUrl = GetStr(o, "node_url"), SeatToken = GetStr(o, "seat_token"),
                ExpiresAtMs = GetI64(o, "expires_at_ms"), Node = GetStr(o, "node"),
            };
        }

        static MatchTerm TermFromJson(JObject o)
        {
            var t = new MatchTerm { Property = GetStr(o, "property") };
            t.OneOf.AddRange(GetStrs(o, "one_of"));
            var min = Field(o, "min");
            if (min != null && min.Type != JTokenType.Null) t.Min = AsDouble(min, "min");
            var max = Field(o, "max");
            if (max != null && max.Type != JTokenType.Null) t.Max = AsDouble(max, "max");
            var w = Field(o, "weight");
            if (w != null && w.Type != JTokenType.Null) t.Weight = AsDouble(w, "weight");
            return t;
        }

        /// <summary>The value of the proto name, or of its lowerCamelCase JSON name.</summary>
        static JToken Field(JObject o, string protoName)
        {
            JToken t;
            if (o.TryGetValue(protoName, out t)) return t;
            string camel = Camel(protoName);
            if (camel != protoName && o.TryGetValue(camel, out t)) return t;
            return null;
        }

        static string Camel(string s)
        {
            var b = new StringBuilder();
            bool up = false;
            foreach (char ch in s)
            {
                if (ch == '_') { up = true; continue; }
                b.Append(up ? char.ToUpperInvariant(ch) : ch);
                up = false;
            }
            return b.ToString();
        }

        static bool Absent(JToken t) { return t == null || t.Type == JTokenType.Null; }

        static string GetStr(JObject o, string k)
        {
            var t = Field(o, k);
            return Absent(t) ? "" : AsString(t, k);
        }

        static string AsString(JToken t, string k)
        {
            if (t.Type != JTokenType.String) throw new FormatException("json: " + k + " is not a string");
            return (string)t;
        }

        static bool GetBool(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return false;
            if (t.Type != JTokenType.Boolean) throw new FormatException("json: " + k + " is not a boolean");
            return (bool)t;
        }

        // Integers: a JSON number or a decimal string, as protojson reads them.
        static string IntText(JToken t, string k)
        {
            if (t.Type == JTokenType.String) return (string)t;
            if (t.Type == JTokenType.Integer) return ((JValue)t).Value is System.Numerics.BigInteger
                ? ((System.Numerics.BigInteger)((JValue)t).Value).ToString(CultureInfo.InvariantCulture)
                : Convert.ToString(((JValue)t).Value, CultureInfo.InvariantCulture);
            if (t.Type == JTokenType.Float)
            {
                double d = (double)t;
                if (Math.Floor(d) == d && !double.IsInfinity(d)) return d.ToString("R", CultureInfo.InvariantCulture);
            }
            throw new FormatException("json: " + k + " is not an integer");
        }

        static ulong GetU64(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return 0;
            ulong v;
            if (!ulong.TryParse(IntText(t, k), NumberStyles.None, CultureInfo.InvariantCulture, out v))
                throw new FormatException("json: " + k + " is not a uint64");
            return v;
        }

        static long GetI64(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return 0;
            long v;
            if (!long.TryParse(IntText(t, k), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
                throw new FormatException("json: " + k + " is not an int64");
            return v;
        }

        static uint GetU32(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return 0;
            uint v;
            if (!uint.TryParse(IntText(t, k), NumberStyles.None, CultureInfo.InvariantCulture, out v))
                throw new FormatException("json: " + k + " is not a uint32");
            return v;
        }

        static int GetEnum(JObject o, string k, string[] names)
        {
            var t = Field(o, k);
            if (Absent(t)) return 0;
            if (t.Type == JTokenType.String)
            {
                int i = Array.IndexOf(names, (string)t);
                return i < 0 ? 0 : i; // an unknown name leaves the zero value
            }
            int v;
            if (!int.TryParse(IntText(t, k), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
                throw new FormatException("json: " + k + " is not an enum");
            return v;
        }

        static double AsDouble(JToken t, string k)
        {
            if (t.Type == JTokenType.Integer || t.Type == JTokenType.Float) return Convert.ToDouble(((JValue)t).Value, CultureInfo.InvariantCulture);
            if (t.Type == JTokenType.String)
            {
                var s = (string)t;
                if (s == "NaN") return double.NaN;
                if (s == "Infinity") return double.PositiveInfinity;
                if (s == "-Infinity") return double.NegativeInfinity;
                double d;
                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return d;
            }
            throw new FormatException("json: " + k + " is not a number");
        }

        static byte[] GetBytes(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return new byte[0];
            return Base64(AsString(t, k), k);
        }

        /// <summary>Standard or URL-safe base64, padded or not.</summary>
        public static byte[] Base64(string s, string k)
        {
            s = s.Replace('-', '+').Replace('_', '/').TrimEnd('=');
            switch (s.Length % 4)
            {
                case 2: s += "=="; break;
                case 3: s += "="; break;
                case 1: throw new FormatException("json: " + k + " is not base64");
            }
            try { return Convert.FromBase64String(s); }
            catch (FormatException e) { throw new FormatException("json: " + k + " is not base64", e); }
        }

        static List<string> GetStrs(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return new List<string>();
            var a = t as JArray;
            if (a == null) throw new FormatException("json: " + k + " is not a list");
            return a.Select(x => AsString(x, k)).ToList();
        }

        static IEnumerable<JObject> Objects(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return new JObject[0];
            var a = t as JArray;
            if (a == null) throw new FormatException("json: " + k + " is not a list");
            return a.Select(x =>
            {
                var xo = x as JObject;
                if (xo == null) throw new FormatException("json: " + k + " holds a non-object");
                return xo;
            }).ToList();
        }

        static JObject MapObject(JObject o, string k)
        {
            var t = Field(o, k);
            if (Absent(t)) return null;
            var m = t as JObject;
            if (m == null) throw new FormatException("json: " + k + " is not an object");
            return m;
        }
    }
}
