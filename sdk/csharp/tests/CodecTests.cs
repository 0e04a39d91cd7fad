// The codecs against conformance/vectors (conformance/README.md): each
// NAME.bin and NAME.json decode to the same envelope, equal to the values
// of NAME.json; re-encoding gives NAME.bin byte for byte and, in JSON, the
// same parsed values; the .unknown and .lenient variants decode to the
// same envelope as NAME.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Newtonsoft.Json.Linq;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class CodecTests
    {
        static string VectorDir()
        {
            for (var d = new DirectoryInfo(AppDomain.CurrentDomain.BaseDirectory); d != null; d = d.Parent)
            {
                var v = Path.Combine(d.FullName, "conformance", "vectors");
                if (Directory.Exists(v)) return v;
            }
            throw new DirectoryNotFoundException("conformance/vectors not found above " + AppDomain.CurrentDomain.BaseDirectory);
        }

        public static IEnumerable<string> Names()
        {
            return Directory.GetFiles(VectorDir(), "*.json").Select(Path.GetFileNameWithoutExtension)
                .Where(n => !n.Contains(".")).OrderBy(n => n, StringComparer.Ordinal);
        }

        public static IEnumerable<string> Variants()
        {
            return Directory.GetFiles(VectorDir()).Select(Path.GetFileName)
                .Where(n => n.Contains(".unknown.") || n.Contains(".lenient.")).OrderBy(n => n, StringComparer.Ordinal);
        }

        static string Read(string file) { return File.ReadAllText(Path.Combine(VectorDir(), file)); }
        static byte[] ReadBytes(string file) { return File.ReadAllBytes(Path.Combine(VectorDir(), file)); }

        [Test]
        public void TheVectorsAreThere()
        {
            Assert.That(Names().Count(), Is.GreaterThan(30));
            foreach (var n in Names()) Assert.That(File.Exists(Path.Combine(VectorDir(), n + ".bin")), n + ".bin");
        }

        [TestCaseSource("Names")]
        public void BinaryDecodesToTheJsonValuesAndEncodesByteForByte(string name)
        {
            var bin = ReadBytes(name + ".bin");
            var want = JsonCodec.Parse(Read(name + ".json"));
            var env = ProtoCodec.Decode(bin);
            AssertSameJson(want, JsonCodec.ToJson(env), name + ".bin decoded");
            Assert.AreEqual(Hex(bin), Hex(ProtoCodec.Encode(env)), name + ".bin re-encoded");
        }

        [TestCaseSource("Names")]
        public void JsonDecodesAndEncodesToTheSameValues(string name)
        {
            var text = Read(name + ".json");
            var want = JsonCodec.Parse(text);
            var env = JsonCodec.Decode(text);
            var encoded = JsonCodec.Encode(env);
            AssertSameJson(want, JsonCodec.Parse(System.Text.Encoding.UTF8.GetString(encoded)), name + ".json re-encoded");
            // And through the binary codec: the same bytes as the .bin vector.
            Assert.AreEqual(Hex(ReadBytes(name + ".bin")), Hex(ProtoCodec.Encode(JsonCodec.Decode(encoded))), name + " json → binary");
        }

        [TestCaseSource("Variants")]
        public void VariantsDecodeToTheSameEnvelope(string file)
        {
            var name = file.Substring(0, file.IndexOf('.'));
            var env = file.EndsWith(".bin") ? ProtoCodec.Decode(ReadBytes(file)) : JsonCodec.Decode(Read(file));
            AssertSameJson(JsonCodec.Parse(Read(name + ".json")), JsonCodec.ToJson(env), file);
        }

        [Test]
        public void UnknownEnumNumbersAreKept()
        {
            var env = new Envelope { Body = new Leave { RoomId = "r", Reason = (LeaveReason)77 } };
            Assert.AreEqual(77, (int)ProtoCodec.Decode(ProtoCodec.Encode(env)).Leave.Reason);
            var json = JsonCodec.ToJson(env);
            Assert.AreEqual(JTokenType.Integer, json["leave"]["reason"].Type);
            Assert.AreEqual(77, (int)JsonCodec.FromJson(json).Leave.Reason);
        }

        [Test]
        public void UnknownEnumNamesReadAsZero()
        {
            var env = JsonCodec.Decode("{\"leave\":{\"room_id\":\"r\",\"reason\":\"LEAVE_REASON_FROM_THE_FUTURE\"}}");
            Assert.AreEqual(LeaveReason.Unspecified, env.Leave.Reason);
        }

        [Test]
        public void MalformedFramesFailToDecode()
        {
            Assert.Throws<FormatException>(() => ProtoCodec.Decode(new byte[] { 0x0a, 0x05, 0x01 }));
            Assert.Throws<FormatException>(() => ProtoCodec.Decode(new byte[] { 0x1a, 0x02, 0xff, 0xfe })); // room: not UTF-8
            Assert.Throws<FormatException>(() => JsonCodec.Decode("{\"ping\":{},\"pong\":{}}"));
            Assert.Throws<FormatException>(() => JsonCodec.Decode("{\"seq\":true}"));
            Assert.Throws<FormatException>(() => JsonCodec.Decode("[1]"));
        }

        [Test]
        public void DoublesSpecialValuesRoundTrip()
        {
            var t = new TicketCreate { Queue = "q" };
            t.NumericProperties["a"] = double.NaN;
            t.NumericProperties["b"] = double.NegativeInfinity;
            t.NumericProperties["c"] = 0.1;
            var env = new Envelope { Body = t };
            foreach (var back in new[] { ProtoCodec.Decode(ProtoCodec.Encode(env)), JsonCodec.Decode(JsonCodec.Encode(env)) })
            {
                Assert.IsTrue(double.IsNaN(back.TicketCreate.NumericProperties["a"]));
                Assert.AreEqual(double.NegativeInfinity, back.TicketCreate.NumericProperties["b"]);
                Assert.AreEqual(0.1, back.TicketCreate.NumericProperties["c"]);
            }
        }

        static string Hex(byte[] b) { return BitConverter.ToString(b); }

        /// <summary>Compares parsed JSON values: objects by keys, numbers by value, never by text.</summary>
        public static void AssertSameJson(JToken want, JToken got, string what)
        {
            string diff = Diff(want, got, "$");
            if (diff != null) Assert.Fail(what + ": " + diff + "\nwant: " + want + "\ngot:  " + got);
        }

        static string Diff(JToken a, JToken b, string path)
        {
            bool an = a.Type == JTokenType.Integer || a.Type == JTokenType.Float;
            bool bn = b.Type == JTokenType.Integer || b.Type == JTokenType.Float;
            if (an && bn)
            {
                if (a.Type == JTokenType.Integer && b.Type == JTokenType.Integer)
                    return a.ToString() == b.ToString() ? null : path + ": " + a + " != " + b;
                return (double)a == (double)b ? null : path + ": " + a + " != " + b;
            }
            if (a.Type != b.Type) return path + ": " + a.Type + " != " + b.Type;
            switch (a.Type)
            {
                case JTokenType.Object:
                    {
                        var ao = (JObject)a;
                        var bo = (JObject)b;
                        foreach (var p in ao.Properties())
                        {
                            JToken bv;
                            if (!bo.TryGetValue(p.Name, out bv)) return path + "." + p.Name + ": missing";
                            var d = Diff(p.Value, bv, path + "." + p.Name);
                            if (d != null) return d;
                        }
                        foreach (var p in bo.Properties())
                            if (ao[p.Name] == null) return path + "." + p.Name + ": unexpected";
                        return null;
                    }
                case JTokenType.Array:
                    {
                        var aa = (JArray)a;
                        var ba = (JArray)b;
                        if (aa.Count != ba.Count) return path + ": " + aa.Count + " items != " + ba.Count;
                        for (int i = 0; i < aa.Count; i++)
                        {
                            var d = Diff(aa[i], ba[i], path + "[" + i + "]");
                            if (d != null) return d;
                        }
                        return null;
                    }
                default:
                    return JToken.DeepEquals(a, b) ? null : path + ": " + a + " != " + b;
            }
        }
    }
}
