// The tandem.v1.proto codec: Envelope <-> protobuf binary, written by hand
// for exactly the messages of protocol/tandem.proto. Fields are written in
// field-number order and map entries sorted by key, as protobuf-go's
// deterministic output, so encoding matches the conformance vectors byte
// for byte.
using System;
using System.Collections.Generic;
using System.Linq;

namespace Tandem.Protocol
{
    public static class ProtoCodec
    {
        const int V = ProtoReader.WireVarint, F64 = ProtoReader.WireFixed64, B = ProtoReader.WireBytes;

        public static byte[] Encode(Envelope e)
        {
            var w = new ProtoWriter();
            w.UInt64(1, e.Cid);
            w.UInt64(2, e.Seq);
            w.String(3, e.Room);
            w.UInt64(4, e.Ack);
            if (e.Body != null) w.Message((int)e.Case, EncodeBody(e.Body));
            return w.ToArray();
        }

        static ProtoWriter EncodeBody(object body)
        {
            var w = new ProtoWriter();
            switch (BodyCases.Of(body))
            {
                case BodyCase.Connect:
                    {
                        var m = (Connect)body;
                        w.String(1, m.Token); w.String(2, m.ResumeToken);
                        foreach (var p in m.Positions) w.Message(3, Pos(p));
                        w.String(4, m.Sdk); w.String(5, m.SeatToken);
                        break;
                    }
                case BodyCase.Connected:
                    {
                        var m = (Connected)body;
                        w.String(1, m.SessionId); w.String(2, m.PlayerId); w.String(3, m.ResumeToken);
                        w.Bool(4, m.Resumed); w.UInt32(5, m.HeartbeatMs); w.UInt32(6, m.SeatHoldMs);
                        w.String(7, m.Node); w.UInt32(8, m.MaxFrameBytes);
                        foreach (var r in m.Rooms) w.StringAlways(9, r);
                        break;
                    }
                case BodyCase.Join:
                    {
                        var m = (Join)body;
                        w.Enum(1, (int)m.Mode); w.String(2, m.RoomId); w.String(3, m.RoomType);
                        w.Bytes(4, m.Options); w.Bytes(5, m.Metadata); w.String(6, m.SeatToken);
                        break;
                    }
                case BodyCase.Joined:
                    {
                        var m = (Joined)body;
                        w.String(1, m.RoomId); w.String(2, m.RoomType); w.UInt32(3, m.Epoch); w.UInt64(4, m.Seq);
                        w.Bytes(5, m.State);
                        foreach (var p in m.Players) w.StringAlways(6, p);
                        break;
                    }
                case BodyCase.Leave:
                    {
                        var m = (Leave)body;
                        w.String(1, m.RoomId); w.Enum(2, (int)m.Reason); w.Bytes(3, m.State); w.Bool(4, m.Missed);
                        break;
                    }
                case BodyCase.RoomMessage:
                    {
                        var m = (RoomMessage)body;
                        w.String(1, m.RoomId); w.String(2, m.Topic); w.Bytes(3, m.Data); w.Enum(4, (int)m.Delivery);
                        foreach (var t in m.To) w.StringAlways(5, t);
                        w.String(6, m.From);
                        break;
                    }
                case BodyCase.Snapshot:
                    {
                        var m = (Snapshot)body;
                        w.String(1, m.RoomId); w.UInt64(2, m.Tick); w.Bytes(3, m.State);
                        break;
                    }
                case BodyCase.Delta:
                    {
                        var m = (Delta)body;
                        w.String(1, m.RoomId); w.UInt64(2, m.Tick); w.Bytes(3, m.Patch);
                        break;
                    }
                case BodyCase.Rpc:
                    {
                        var m = (Rpc)body;
                        w.String(1, m.Method); w.Bytes(2, m.Data);
                        break;
                    }
                case BodyCase.RpcReply: w.Bytes(1, ((RpcReply)body).Data); break;
                case BodyCase.Ping:
                    {
                        var m = (Ping)body;
                        w.Int64(1, m.TimeUs); w.UInt32(2, m.RttUs);
                        break;
                    }
                case BodyCase.Pong: w.Int64(1, ((Pong)body).TimeUs); break;
                case BodyCase.AckFrame:
                    foreach (var p in ((Ack)body).Positions) w.Message(1, Pos(p));
                    break;
                case BodyCase.Error:
                    {
                        var m = (Error)body;
                        w.UInt32(1, m.Code); w.String(2, m.Message); w.Bool(3, m.Temporary);
                        foreach (var f in m.Fields)
                        {
                            var fw = new ProtoWriter();
                            fw.String(1, f.Field); fw.String(2, f.Message);
                            w.Message(4, fw);
                        }
                        break;
                    }
                case BodyCase.Notice:
                    {
                        var m = (Notice)body;
                        w.String(1, m.Kind); w.String(2, m.Text);
                        break;
                    }
                case BodyCase.Gap:
                    {
                        var m = (Gap)body;
                        w.String(1, m.RoomId); w.UInt64(2, m.FromSeq); w.UInt64(3, m.Seq); w.UInt32(4, m.Epoch);
                        w.Bytes(5, m.State);
                        break;
                    }
                case BodyCase.RoomEvent:
                    {
                        var m = (RoomEvent)body;
                        w.String(1, m.RoomId); w.String(2, m.PlayerId); w.Enum(3, (int)m.Kind); w.Enum(4, (int)m.Reason);
                        break;
                    }
                case BodyCase.ListRooms: w.String(1, ((ListRooms)body).RoomType); break;
                case BodyCase.RoomList:
                    foreach (var r in ((RoomList)body).Rooms)
                    {
                        var rw = new ProtoWriter();
                        rw.String(1, r.RoomId); rw.String(2, r.RoomType); rw.UInt32(3, r.Players);
                        rw.UInt32(4, r.MaxPlayers); rw.Bool(5, r.Open); rw.String(6, r.Node);
                        w.Message(1, rw);
                    }
                    break;
                case BodyCase.SeatReservation: return Seat((SeatReservation)body);
                case BodyCase.TicketCreate:
                    {
                        var m = (TicketCreate)body;
                        w.String(1, m.Queue);
                        foreach (var kv in m.StringProperties.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                        {
                            var ew = new ProtoWriter();
                            ew.StringAlways(1, kv.Key); ew.StringAlways(2, kv.Value);
                            w.Message(2, ew);
                        }
                        foreach (var kv in m.NumericProperties.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                        {
                            var ew = new ProtoWriter();
                            ew.StringAlways(1, kv.Key); ew.DoubleAlways(2, kv.Value);
                            w.Message(3, ew);
                        }
                        foreach (var t in m.Must) w.Message(5, Term(t));
                        foreach (var t in m.Should) w.Message(6, Term(t));
                        w.String(7, m.Party); w.UInt32(8, m.PartySize);
                        break;
                    }
                case BodyCase.TicketCancel: w.String(2, ((TicketCancel)body).Queue); break;
                case BodyCase.TicketStatus:
                    {
                        var m = (TicketStatus)body;
                        w.String(1, m.TicketId); w.String(2, m.State); w.String(3, m.Queue); w.Int64(4, m.CreatedAtMs);
                        w.String(5, m.Reason); w.String(6, m.MatchId);
                        if (m.Seat != null) w.Message(7, Seat(m.Seat));
                        w.UInt32(8, m.Team);
                        break;
                    }
            }
            return w;
        }

        static ProtoWriter Pos(StreamPos p)
        {
            var w = new ProtoWriter();
            w.String(1, p.Room); w.UInt32(2, p.Epoch); w.UInt64(3, p.Seq);
            return w;
        }

        static ProtoWriter Seat(SeatReservation m)
        {
            var w = new ProtoWriter();
            w.String(1, m.RoomId); w.String(2, m.NodeUrl); w.String(3, m.SeatToken); w.Int64(4, m.ExpiresAtMs);
            w.String(5, m.Node);
            return w;
        }

        static ProtoWriter Term(MatchTerm t)
        {
            var w = new ProtoWriter();
            w.String(1, t.Property);
            foreach (var s in t.OneOf) w.StringAlways(2, s);
            if (t.Min.HasValue) w.DoubleAlways(3, t.Min.Value);
            if (t.Max.HasValue) w.DoubleAlways(4, t.Max.Value);
            w.Double(5, t.Weight);
            return w;
        }

        /// <summary>Decodes an envelope; FormatException when the bytes are not one.</summary>
        public static Envelope Decode(byte[] data)
        {
            var r = new ProtoReader(data);
            var e = new Envelope();
            while (r.Next())
            {
                switch (r.Field)
                {
                    case 1: if (r.Is(V)) e.Cid = r.Varint(); break;
                    case 2: if (r.Is(V)) e.Seq = r.Varint(); break;
                    case 3: if (r.Is(B)) e.Room = r.String(); break;
                    case 4: if (r.Is(V)) e.Ack = r.Varint(); break;
                    default:
                        if (r.Field >= 10 && r.Field <= 32)
                        {
                            if (r.Is(B)) e.Body = DecodeBody((BodyCase)r.Field, r.Message());
                        }
                        else r.Skip();
                        break;
                }
            }
            return e;
        }

        static object DecodeBody(BodyCase c, ProtoReader r)
        {
            switch (c)
            {
                case BodyCase.Connect:
                    {
                        var m = new Connect();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.Token = r.String(); break;
                                case 2: if (r.Is(B)) m.ResumeToken = r.String(); break;
                                case 3: if (r.Is(B)) m.Positions.Add(DecodePos(r.Message())); break;
                                case 4: if (r.Is(B)) m.Sdk = r.String(); break;
                                case 5: if (r.Is(B)) m.SeatToken = r.String(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Connected:
                    {
                        var m = new Connected();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.SessionId = r.String(); break;
                                case 2: if (r.Is(B)) m.PlayerId = r.String(); break;
                                case 3: if (r.Is(B)) m.ResumeToken = r.String(); break;
                                case 4: if (r.Is(V)) m.Resumed = r.Varint() != 0; break;
                                case 5: if (r.Is(V)) m.HeartbeatMs = (uint)r.Varint(); break;
                                case 6: if (r.Is(V)) m.SeatHoldMs = (uint)r.Varint(); break;
                                case 7: if (r.Is(B)) m.Node = r.String(); break;
                                case 8: if (r.Is(V)) m.MaxFrameBytes = (uint)r.Varint(); break;
                                case 9: if (r.Is(B)) m.Rooms.Add(r.String()); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Join:
                    {
                        var m = new Join();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(V)) m.Mode = (JoinMode)(int)r.Varint(); break;
                                case 2: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 3: if (r.Is(B)) m.RoomType = r.String(); break;
                                case 4: if (r.Is(B)) m.Options = r.Bytes(); break;
                                case 5: if (r.Is(B)) m.Metadata = r.Bytes(); break;
                                case 6: if (r.Is(B)) m.SeatToken = r.String(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Joined:
                    {
                        var m = new Joined();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(B)) m.RoomType = r.String(); break;
                                case 3: if (r.Is(V)) m.Epoch = (uint)r.Varint(); break;
                                case 4: if (r.Is(V)) m.Seq = r.Varint(); break;
                                case 5: if (r.Is(B)) m.State = r.Bytes(); break;
                                case 6: if (r.Is(B)) m.Players.Add(r.String()); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Leave:
                    {
                        var m = new Leave();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(V)) m.Reason = (LeaveReason)(int)r.Varint(); break;
                                case 3: if (r.Is(B)) m.State = r.Bytes(); break;
                                case 4: if (r.Is(V)) m.Missed = r.Varint() != 0; break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.RoomMessage:
                    {
                        var m = new RoomMessage();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(B)) m.Topic = r.String(); break;
                                case 3: if (r.Is(B)) m.Data = r.Bytes(); break;
                                case 4: if (r.Is(V)) m.Delivery = (Delivery)(int)r.Varint(); break;
                                case 5: if (r.Is(B)) m.To.Add(r.String()); break;
                                case 6: if (r.Is(B)) m.From = r.String(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Snapshot:
                    {
                        var m = new Snapshot();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(V)) m.Tick = r.Varint(); break;
                                case 3: if (r.Is(B)) m.State = r.Bytes(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Delta:
                    {
                        var m = new Delta();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(V)) m.Tick = r.Varint(); break;
                                case 3: if (r.Is(B)) m.Patch = r.Bytes(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Rpc:
                    {
                        var m = new Rpc();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.Method = r.String(); break;
                                case 2: if (r.Is(B)) m.Data = r.Bytes(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.RpcReply:
                    {
                        var m = new RpcReply();
                        while (r.Next())
                            if (r.Field == 1) { if (r.Is(B)) m.Data = r.Bytes(); }
                            else r.Skip();
                        return m;
                    }
                case BodyCase.Ping:
                    {
                        var m = new Ping();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(V)) m.TimeUs = (long)r.Varint(); break;
                                case 2: if (r.Is(V)) m.RttUs = (uint)r.Varint(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Pong:
                    {
                        var m = new Pong();
                        while (r.Next())
                            if (r.Field == 1) { if (r.Is(V)) m.TimeUs = (long)r.Varint(); }
                            else r.Skip();
                        return m;
                    }
                case BodyCase.AckFrame:
                    {
                        var m = new Ack();
                        while (r.Next())
                            if (r.Field == 1) { if (r.Is(B)) m.Positions.Add(DecodePos(r.Message())); }
                            else r.Skip();
                        return m;
                    }
                case BodyCase.Error:
                    {
                        var m = new Error();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(V)) m.Code = (uint)r.Varint(); break;
                                case 2: if (r.Is(B)) m.Message = r.String(); break;
                                case 3: if (r.Is(V)) m.Temporary = r.Varint() != 0; break;
                                case 4:
                                    if (r.Is(B))
                                    {
                                        var fr = r.Message();
                                        var f = new FieldError();
                                        while (fr.Next())
                                            switch (fr.Field)
                                            {
                                                case 1: if (fr.Is(B)) f.Field = fr.String(); break;
                                                case 2: if (fr.Is(B)) f.Message = fr.String(); break;
                                                default: fr.Skip(); break;
                                            }
                                        m.Fields.Add(f);
                                    }
                                    break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Notice:
                    {
                        var m = new Notice();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.Kind = r.String(); break;
                                case 2: if (r.Is(B)) m.Text = r.String(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.Gap:
                    {
                        var m = new Gap();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(V)) m.FromSeq = r.Varint(); break;
                                case 3: if (r.Is(V)) m.Seq = r.Varint(); break;
                                case 4: if (r.Is(V)) m.Epoch = (uint)r.Varint(); break;
                                case 5: if (r.Is(B)) m.State = r.Bytes(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.RoomEvent:
                    {
                        var m = new RoomEvent();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                                case 2: if (r.Is(B)) m.PlayerId = r.String(); break;
                                case 3: if (r.Is(V)) m.Kind = (RoomEventKind)(int)r.Varint(); break;
                                case 4: if (r.Is(V)) m.Reason = (LeaveReason)(int)r.Varint(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.ListRooms:
                    {
                        var m = new ListRooms();
                        while (r.Next())
                            if (r.Field == 1) { if (r.Is(B)) m.RoomType = r.String(); }
                            else r.Skip();
                        return m;
                    }
                case BodyCase.RoomList:
                    {
                        var m = new RoomList();
                        while (r.Next())
                        {
                            if (r.Field != 1 || !r.Is(B)) { if (r.Field != 1) r.Skip(); continue; }
                            var ir = r.Message();
                            var i = new RoomInfo();
                            while (ir.Next())
                                switch (ir.Field)
                                {
                                    case 1: if (ir.Is(B)) i.RoomId = ir.String(); break;
                                    case 2: if (ir.Is(B)) i.RoomType = ir.String(); break;
                                    case 3: if (ir.Is(V)) i.Players = (uint)ir.Varint(); break;
                                    case 4: if (ir.Is(V)) i.MaxPlayers = (uint)ir.Varint(); break;
                                    case 5: if (ir.Is(V)) i.Open = ir.Varint() != 0; break;
                                    case 6: if (ir.Is(B)) i.Node = ir.String(); break;
                                    default: ir.Skip(); break;
                                }
                            m.Rooms.Add(i);
                        }
                        return m;
                    }
                case BodyCase.SeatReservation: return DecodeSeat(r);
                case BodyCase.TicketCreate:
                    {
                        var m = new TicketCreate();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.Queue = r.String(); break;
                                case 2:
                                    if (r.Is(B))
                                    {
                                        var er = r.Message();
                                        string k = "", v = "";
                                        while (er.Next())
                                            switch (er.Field)
                                            {
                                                case 1: if (er.Is(B)) k = er.String(); break;
                                                case 2: if (er.Is(B)) v = er.String(); break;
                                                default: er.Skip(); break;
                                            }
                                        m.StringProperties[k] = v;
                                    }
                                    break;
                                case 3:
                                    if (r.Is(B))
                                    {
                                        var er = r.Message();
                                        string k = "";
                                        double v = 0;
                                        while (er.Next())
                                            switch (er.Field)
                                            {
                                                case 1: if (er.Is(B)) k = er.String(); break;
                                                case 2: if (er.Is(F64)) v = er.Double(); break;
                                                default: er.Skip(); break;
                                            }
                                        m.NumericProperties[k] = v;
                                    }
                                    break;
                                case 5: if (r.Is(B)) m.Must.Add(DecodeTerm(r.Message())); break;
                                case 6: if (r.Is(B)) m.Should.Add(DecodeTerm(r.Message())); break;
                                case 7: if (r.Is(B)) m.Party = r.String(); break;
                                case 8: if (r.Is(V)) m.PartySize = (uint)r.Varint(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
                case BodyCase.TicketCancel:
                    {
                        var m = new TicketCancel();
                        while (r.Next())
                            if (r.Field == 2) { if (r.Is(B)) m.Queue = r.String(); }
                            else r.Skip();
                        return m;
                    }
                case BodyCase.TicketStatus:
                    {
                        var m = new TicketStatus();
                        while (r.Next())
                            switch (r.Field)
                            {
                                case 1: if (r.Is(B)) m.TicketId = r.String(); break;
                                case 2: if (r.Is(B)) m.State = r.String(); break;
                                case 3: if (r.Is(B)) m.Queue = r.String(); break;
                                case 4: if (r.Is(V)) m.CreatedAtMs = (long)r.Varint(); break;
                                case 5: if (r.Is(B)) m.Reason = r.String(); break;
                                case 6: if (r.Is(B)) m.MatchId = r.String(); break;
                                case 7: if (r.Is(B)) m.Seat = DecodeSeat(r.Message()); break;
                                case 8: if (r.Is(V)) m.Team = (uint)r.Varint(); break;
                                default: r.Skip(); break;
                            }
                        return m;
                    }
            }
            throw new FormatException("protobuf: unknown body " + c);
        }

        static StreamPos DecodePos(ProtoReader r)
        {
            var p = new StreamPos();
            while (r.Next())
                switch (r.Field)
                {
                    case 1: if (r.Is(B)) p.Room = r.String(); break;
                    case 2: if (r.Is(V)) p.Epoch = (uint)r.Varint(); break;
                    case 3: if (r.Is(V)) p.Seq = r.Varint(); break;
                    default: r.Skip(); break;
                }
            return p;
        }

        static SeatReservation DecodeSeat(ProtoReader r)
        {
            var m = new SeatReservation();
            while (r.Next())
                switch (r.Field)
                {
                    case 1: if (r.Is(B)) m.RoomId = r.String(); break;
                    case 2: if (r.Is(B)) m.NodeUrl = r.String(); break;
                    case 3: if (r.Is(B)) m.SeatToken = r.String(); break;
                    case 4: if (r.Is(V)) m.ExpiresAtMs = (long)r.Varint(); break;
                    case 5: if (r.Is(B)) m.Node = r.String(); break;
                    default: r.Skip(); break;
                }
            return m;
        }

        static MatchTerm DecodeTerm(ProtoReader r)
        {
            var t = new MatchTerm();
            while (r.Next())
                switch (r.Field)
                {
                    case 1: if (r.Is(B)) t.Property = r.String(); break;
                    case 2: if (r.Is(B)) t.OneOf.Add(r.String()); break;
                    case 3: if (r.Is(F64)) t.Min = r.Double(); break;
                    case 4: if (r.Is(F64)) t.Max = r.Double(); break;
                    case 5: if (r.Is(F64)) t.Weight = r.Double(); break;
                    default: r.Skip(); break;
                }
            return t;
        }
    }
}
