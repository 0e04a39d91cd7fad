// The protobuf binary wire format, as far as tandem.proto needs it:
// varints, fixed64 (doubles), length-delimited fields, and the skipping of
// fields a decoder does not know (every wire type, groups included).
using System;
using System.IO;
using System.Text;

namespace Tandem.Protocol
{
    /// <summary>Writes protobuf fields in the order they are called.</summary>
    public sealed class ProtoWriter
    {
        const int WireVarint = 0, WireFixed64 = 1, WireBytes = 2;
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        readonly MemoryStream buf = new MemoryStream();

        public byte[] ToArray() { return buf.ToArray(); }

        void Tag(int field, int wire) { Varint(((ulong)field << 3) | (uint)wire); }

        void Varint(ulong v)
        {
            while (v >= 0x80)
            {
                buf.WriteByte((byte)(v | 0x80));
                v >>= 7;
            }
            buf.WriteByte((byte)v);
        }

        // The Write* methods leave out proto3 zero values; the *Always ones
        // (oneof members, map entries, optional fields) do not.

        public void UInt64(int field, ulong v) { if (v != 0) { Tag(field, WireVarint); Varint(v); } }
        public void Int64(int field, long v) { UInt64(field, (ulong)v); }
        public void UInt32(int field, uint v) { UInt64(field, v); }
        public void Enum(int field, int v) { UInt64(field, (ulong)(long)v); }
        public void Bool(int field, bool v) { if (v) { Tag(field, WireVarint); Varint(1); } }

        public void Double(int field, double v)
        {
            // proto3 leaves out +0.0 only (-0.0 has a sign bit and is written).
            if (BitConverter.DoubleToInt64Bits(v) != 0) DoubleAlways(field, v);
        }

        public void DoubleAlways(int field, double v)
        {
            Tag(field, WireFixed64);
            ulong bits = (ulong)BitConverter.DoubleToInt64Bits(v);
            for (int i = 0; i < 8; i++) buf.WriteByte((byte)(bits >> (8 * i)));
        }

        public void String(int field, string v) { if (!string.IsNullOrEmpty(v)) StringAlways(field, v); }
        public void StringAlways(int field, string v) { BytesAlways(field, Utf8.GetBytes(v ?? "")); }
        public void Bytes(int field, byte[] v) { if (v != null && v.Length > 0) BytesAlways(field, v); }

        public void BytesAlways(int field, byte[] v)
        {
            Tag(field, WireBytes);
            Varint((ulong)v.Length);
            buf.Write(v, 0, v.Length);
        }

        /// <summary>A nested message, written even when empty.</summary>
        public void Message(int field, ProtoWriter m) { BytesAlways(field, m.ToArray()); }
    }

    /// <summary>Reads the fields of one message.</summary>
    public sealed class ProtoReader
    {
        public const int WireVarint = 0, WireFixed64 = 1, WireBytes = 2, WireStartGroup = 3, WireEndGroup = 4, WireFixed32 = 5;
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        readonly byte[] data;
        int pos;
        readonly int end;

        public ProtoReader(byte[] data) : this(data, 0, data.Length) { }

        ProtoReader(byte[] data, int start, int end)
        {
            this.data = data;
            pos = start;
            this.end = end;
        }

        public int Field { get; private set; }
        public int Wire { get; private set; }

        /// <summary>Reads the next tag; false at the end of the message.</summary>
        public bool Next()
        {
            if (pos >= end) return false;
            ulong tag = Varint();
            Field = (int)(tag >> 3);
            Wire = (int)(tag & 7);
            if (Field <= 0 || tag >> 3 > int.MaxValue) throw new FormatException("protobuf: bad field number");
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 70; shift += 7)
            {
                if (pos >= end) throw new FormatException("protobuf: truncated varint");
                byte b = data[pos++];
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw new FormatException("protobuf: varint too long");
        }

        public ulong Fixed64()
        {
            if (end - pos < 8) throw new FormatException("protobuf: truncated fixed64");
            ulong v = 0;
            for (int i = 0; i < 8; i++) v |= (ulong)data[pos + i] << (8 * i);
            pos += 8;
            return v;
        }

        public double Double() { return BitConverter.Int64BitsToDouble((long)Fixed64()); }

        int Length()
        {
            ulong n = Varint();
            if (n > (ulong)(end - pos)) throw new FormatException("protobuf: truncated length-delimited field");
            return (int)n;
        }

        public byte[] Bytes()
        {
            int n = Length();
            var b = new byte[n];
            Array.Copy(data, pos, b, 0, n);
            pos += n;
            return b;
        }

        public string String()
        {
            int n = Length();
            string s;
            try { s = Utf8.GetString(data, pos, n); }
            catch (ArgumentException e) { throw new FormatException("protobuf: string is not UTF-8", e); }
            pos += n;
            return s;
        }

        /// <summary>A reader over the nested message of this field.</summary>
        public ProtoReader Message()
        {
            int n = Length();
            var r = new ProtoReader(data, pos, pos + n);
            pos += n;
            return r;
        }

        /// <summary>True when the current field has wire type wire; otherwise skips it (a known field
        /// of another wire type is treated as unknown, as protobuf-go does) and returns false.</summary>
        public bool Is(int wire)
        {
            if (Wire == wire) return true;
            Skip();
            return false;
        }

        /// <summary>Skips the value of the current field (an unknown one, or a known one of another wire type).</summary>
        public void Skip() { Skip(Wire, Field, 0); }

        void Skip(int wire, int field, int depth)
        {
            switch (wire)
            {
                case WireVarint: Varint(); break;
                case WireFixed64: if (end - pos < 8) throw new FormatException("protobuf: truncated"); pos += 8; break;
                case WireBytes: { int n = Length(); pos += n; break; }
                case WireFixed32: if (end - pos < 4) throw new FormatException("protobuf: truncated"); pos += 4; break;
                case WireStartGroup:
                    if (depth > 64) throw new FormatException("protobuf: groups nested too deep");
                    while (true)
                    {
                        if (!Next()) throw new FormatException("protobuf: unterminated group");
                        if (Wire == WireEndGroup)
                        {
                            if (Field != field) throw new FormatException("protobuf: mismatched end group");
                            return;
                        }
                        Skip(Wire, Field, depth + 1);
                    }
                default: throw new FormatException("protobuf: bad wire type " + wire);
            }
        }
    }
}
