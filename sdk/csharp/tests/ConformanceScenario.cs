// The conformance scenarios (conformance/README.md): a file's model and
// its strict check, ported from conformance/scenario.go (Load, Validate,
// Ops, EventFields). A file with an unknown op, field, event kind or event
// field does not load: the driver fails it, never skips it.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Tandem.Tests
{
    /// <summary>One scripted session: the nodes and their settings, and the steps, in order.</summary>
    public sealed class ConformanceScenario
    {
        public string Name;
        public List<string> Nodes = new List<string>();
        public List<Step> Steps = new List<Step>();

        /// <summary>The node ids; the first is the default node of connect, connections, await_close and drain.</summary>
        public List<string> NodeIds { get { return Nodes.Count > 0 ? Nodes : new List<string> { "a" }; } }

        // The fields of a file, of its node settings, of a step and of a step's error, with their JSON types
        // (scenario.go's structs, which decode with DisallowUnknownFields).
        static readonly Dictionary<string, JTokenType> FileFields = new Dictionary<string, JTokenType>
        {
            { "description", JTokenType.String }, { "covers", JTokenType.Array }, { "nodes", JTokenType.Array },
            { "node", JTokenType.Object }, { "steps", JTokenType.Array },
        };

        static readonly string[] NodeFields =
        {
            "heartbeat_ms", "seat_hold_ms", "send_queue", "replay_count", "replay_bytes", "msg_rate", "msg_burst",
            "byte_rate", "max_frame_bytes", "flood_refusals",
        };

        /// <summary>The step ops and the fields each requires (scenario.go's Ops).</summary>
        public static readonly Dictionary<string, string[]> Ops = new Dictionary<string, string[]>
        {
            { "connect", new[] { "client" } },
            { "join", new[] { "client" } },
            { "leave", new[] { "client", "room" } },
            { "send", new[] { "client", "room", "topic" } },
            { "rpc", new[] { "client", "method" } },
            { "expect", new[] { "client" } },
            { "expect_messages", new[] { "client", "room", "topic", "data", "count" } },
            { "expect_none", new[] { "client", "kinds" } },
            { "expect_frames", new[] { "client", "body", "count" } },
            { "reset", new[] { "client" } },
            { "silence", new[] { "client", "direction" } },
            { "throttle", new[] { "client" } },
            { "hold_away", new[] { "client" } },
            { "let_back", new[] { "client" } },
            { "inject_close", new[] { "client", "code" } },
            { "await_close", new[] { "code" } },
            { "connections", new[] { "client", "accepted" } },
            { "close", new[] { "client" } },
            { "drain", new string[0] },
        };

        /// <summary>The event kinds a driver reports and the fields of each (scenario.go's EventFields).</summary>
        public static readonly Dictionary<string, string[]> EventFields = new Dictionary<string, string[]>
        {
            { "joined", new[] { "room", "room_type", "players" } },
            { "message", new[] { "room", "from", "topic", "data" } },
            { "room_event", new[] { "room", "player", "event", "reason" } },
            { "left", new[] { "room", "reason", "missed" } },
            { "gap", new[] { "room", "epoch", "state" } },
            { "snapshot", new[] { "room" } },
            { "delta", new[] { "room" } },
            { "error", new[] { "code", "room", "topic" } },
            { "notice", new[] { "notice_kind", "text" } },
            { "disconnected", new[] { "class", "code" } },
            { "resumed", new string[0] },
            { "session_lost", new[] { "rooms", "code" } },
            { "closed", new[] { "class", "code", "error" } },
        };

        /// <summary>Reads and checks one scenario file; throws FormatException naming what is wrong.</summary>
        public static ConformanceScenario Load(string path)
        {
            var name = Path.GetFileNameWithoutExtension(path);
            try
            {
                JObject root;
                using (var r = new JsonTextReader(new StringReader(File.ReadAllText(path))) { DateParseHandling = DateParseHandling.None })
                    root = JObject.Load(r);
                var s = new ConformanceScenario { Name = name };
                foreach (var p in root.Properties())
                {
                    JTokenType t;
                    if (!FileFields.TryGetValue(p.Name, out t)) throw new FormatException("unknown field \"" + p.Name + "\"");
                    ScenarioJson.Check(p.Value, t, p.Name);
                }
                var covers = ScenarioJson.Strings(root["covers"], "covers");
                s.Nodes = ScenarioJson.Strings(root["nodes"], "nodes");
                var node = root["node"] as JObject;
                if (node != null)
                    foreach (var p in node.Properties())
                    {
                        if (!NodeFields.Contains(p.Name)) throw new FormatException("node: unknown field \"" + p.Name + "\"");
                        ScenarioJson.Check(p.Value, JTokenType.Integer, "node." + p.Name);
                    }
                var steps = root["steps"] as JArray;
                if (steps != null)
                    for (int i = 0; i < steps.Count; i++)
                    {
                        try { s.Steps.Add(Step.Parse(steps[i])); }
                        catch (FormatException e) { throw new FormatException("step " + (i + 1) + ": " + e.Message); }
                    }
                s.Validate(covers);
                return s;
            }
            catch (JsonException e)
            {
                throw new FormatException(path + ": " + e.Message);
            }
            catch (FormatException e)
            {
                throw new FormatException(path + ": " + e.Message);
            }
        }

        /// <summary>scenario.go's Validate: known ops with their required fields, known values, events, nodes, and clients connected before use.</summary>
        void Validate(List<string> covers)
        {
            if (Steps.Count == 0) throw new FormatException("no steps");
            if (covers.Count == 0) throw new FormatException("covers is empty: say what the scenario proves");
            var clients = new HashSet<string>();
            for (int i = 0; i < Steps.Count; i++)
            {
                var st = Steps[i];
                try { st.Validate(NodeIds, clients); }
                catch (FormatException e) { throw new FormatException("step " + (i + 1) + " (" + st.Op + "): " + e.Message); }
                if (st.Op == "connect" && st.Error == null) clients.Add(st.Client);
            }
        }

        /// <summary>
        /// The data of the i-th (1-based) message of a numbered series: "{i}" replaced by i, then padded with
        /// spaces to size bytes (0: no padding). conformance.Expand.
        /// </summary>
        public static string Expand(string template, int i, int size)
        {
            var s = (template ?? "").Replace("{i}", i.ToString());
            int n = Encoding.UTF8.GetByteCount(s);
            return n < size ? s + new string(' ', size - n) : s;
        }
    }

    /// <summary>The expected failure of connect, join or rpc: an error code name and, for connect, a close code name.</summary>
    public sealed class ExpectedError
    {
        public string Code = "", Close = "";
    }

    /// <summary>One step. Op names it; the other fields are its arguments. Absent strings are "", absent numbers 0.</summary>
    public sealed class Step
    {
        public string Op = "", Client = "", Node = "";
        public string Player = "", Codec = "", Token = "";
        public int HeartbeatTimeoutMs;
        public string Room = "", RoomType = "", Mode = "", As = "";
        public bool AwaitDirectory;
        public string Topic = "", Data = "", Delivery = "";
        public List<string> To = new List<string>();
        public int Count, First, Size;
        public string Method = "";
        public string Reply; // null: not checked
        public ExpectedError Error;
        public List<JObject> Events = new List<JObject>();
        public List<string> Skip = new List<string>(), Kinds = new List<string>();
        public string Body = "";
        public string Direction = "";
        public long AfterBytes;
        public int BytesPerSecond;
        public string Code = "";
        public int Accepted;
        public int? Open;
        public int TimeoutMs;
        /// <summary>The step as written (a fault step forwards its fields to the harness).</summary>
        public JObject Raw;

        static readonly Dictionary<string, JTokenType> Fields = new Dictionary<string, JTokenType>
        {
            { "op", JTokenType.String }, { "client", JTokenType.String }, { "node", JTokenType.String },
            { "player", JTokenType.String }, { "codec", JTokenType.String }, { "token", JTokenType.String },
            { "heartbeat_timeout_ms", JTokenType.Integer },
            { "room", JTokenType.String }, { "room_type", JTokenType.String }, { "mode", JTokenType.String },
            { "as", JTokenType.String }, { "await_directory", JTokenType.Boolean },
            { "topic", JTokenType.String }, { "data", JTokenType.String }, { "delivery", JTokenType.String },
            { "to", JTokenType.Array }, { "count", JTokenType.Integer }, { "first", JTokenType.Integer },
            { "size", JTokenType.Integer },
            { "method", JTokenType.String }, { "reply", JTokenType.String }, { "error", JTokenType.Object },
            { "events", JTokenType.Array }, { "skip", JTokenType.Array }, { "kinds", JTokenType.Array },
            { "body", JTokenType.String },
            { "direction", JTokenType.String }, { "after_bytes", JTokenType.Integer }, { "bytes_per_second", JTokenType.Integer },
            { "code", JTokenType.String }, { "accepted", JTokenType.Integer }, { "open", JTokenType.Integer },
            { "timeout_ms", JTokenType.Integer },
        };

        internal static Step Parse(JToken tok)
        {
            var o = tok as JObject;
            if (o == null) throw new FormatException("a step is an object");
            foreach (var p in o.Properties())
            {
                JTokenType t;
                if (!Fields.TryGetValue(p.Name, out t)) throw new FormatException("unknown field \"" + p.Name + "\"");
                ScenarioJson.Check(p.Value, t, p.Name);
            }
            var st = new Step
            {
                Raw = o,
                Op = ScenarioJson.Str(o, "op"), Client = ScenarioJson.Str(o, "client"), Node = ScenarioJson.Str(o, "node"),
                Player = ScenarioJson.Str(o, "player"), Codec = ScenarioJson.Str(o, "codec"), Token = ScenarioJson.Str(o, "token"),
                HeartbeatTimeoutMs = (int)ScenarioJson.Int(o, "heartbeat_timeout_ms"),
                Room = ScenarioJson.Str(o, "room"), RoomType = ScenarioJson.Str(o, "room_type"), Mode = ScenarioJson.Str(o, "mode"), As = ScenarioJson.Str(o, "as"),
                AwaitDirectory = o["await_directory"] != null && o["await_directory"].Type == JTokenType.Boolean && (bool)o["await_directory"],
                Topic = ScenarioJson.Str(o, "topic"), Data = ScenarioJson.Str(o, "data"), Delivery = ScenarioJson.Str(o, "delivery"),
                To = ScenarioJson.Strings(o["to"], "to"),
                Count = (int)ScenarioJson.Int(o, "count"), First = (int)ScenarioJson.Int(o, "first"), Size = (int)ScenarioJson.Int(o, "size"),
                Method = ScenarioJson.Str(o, "method"),
                Reply = o["reply"] != null && o["reply"].Type == JTokenType.String ? (string)o["reply"] : null,
                Skip = ScenarioJson.Strings(o["skip"], "skip"), Kinds = ScenarioJson.Strings(o["kinds"], "kinds"),
                Body = ScenarioJson.Str(o, "body"), Direction = ScenarioJson.Str(o, "direction"),
                AfterBytes = ScenarioJson.Int(o, "after_bytes"), BytesPerSecond = (int)ScenarioJson.Int(o, "bytes_per_second"),
                Code = ScenarioJson.Str(o, "code"), Accepted = (int)ScenarioJson.Int(o, "accepted"),
                Open = o["open"] != null && o["open"].Type == JTokenType.Integer ? (int?)(int)ScenarioJson.Int(o, "open") : null,
                TimeoutMs = (int)ScenarioJson.Int(o, "timeout_ms"),
            };
            var err = o["error"] as JObject;
            if (err != null)
            {
                foreach (var p in err.Properties())
                {
                    if (p.Name != "code" && p.Name != "close") throw new FormatException("error: unknown field \"" + p.Name + "\"");
                    ScenarioJson.Check(p.Value, JTokenType.String, "error." + p.Name);
                }
                st.Error = new ExpectedError { Code = ScenarioJson.Str(err, "code"), Close = ScenarioJson.Str(err, "close") };
            }
            var evs = o["events"] as JArray;
            if (evs != null)
                foreach (var e in evs)
                {
                    if (!(e is JObject)) throw new FormatException("events: an event is an object");
                    st.Events.Add((JObject)e);
                }
            return st;
        }

        internal void Validate(List<string> nodes, HashSet<string> clients)
        {
            string[] required;
            if (!ConformanceScenario.Ops.TryGetValue(Op, out required)) throw new FormatException("unknown op \"" + Op + "\"");
            foreach (var f in required)
                if (!Has(f)) throw new FormatException(f + " is required");
            if (Node != "" && !nodes.Contains(Node)) throw new FormatException("unknown node \"" + Node + "\"");
            if (Client != "" && Op != "connect" && !clients.Contains(Client))
                throw new FormatException("client \"" + Client + "\" is not connected by an earlier step");
            switch (Op)
            {
                case "connect":
                    OneOf("codec", Codec, "", "json", "proto");
                    OneOf("token", Token, "", "forged", "expired");
                    break;
                case "join":
                    if ((Room == "") == (RoomType == "")) throw new FormatException("give exactly one of room and room_type");
                    OneOf("mode", Mode, "", "join", "create", "join_or_create");
                    break;
                case "send":
                    OneOf("delivery", Delivery, "", "all", "others", "list", "room");
                    break;
                case "silence":
                case "reset":
                case "throttle":
                    OneOf("direction", Direction, "", "up", "down", "both");
                    break;
                case "inject_close":
                case "await_close":
                    if (!CloseCodeNames.ContainsKey(Code)) throw new FormatException("code \"" + Code + "\" is not a close code name");
                    break;
                case "expect":
                case "expect_none":
                    foreach (var k in Skip.Concat(Kinds))
                        if (!ConformanceScenario.EventFields.ContainsKey(k)) throw new FormatException("unknown event kind \"" + k + "\"");
                    for (int j = 0; j < Events.Count; j++)
                    {
                        var ev = Events[j];
                        var kind = ev["kind"] != null && ev["kind"].Type == JTokenType.String ? (string)ev["kind"] : null;
                        string[] fields;
                        if (kind == null || !ConformanceScenario.EventFields.TryGetValue(kind, out fields))
                            throw new FormatException("event " + (j + 1) + ": unknown event kind " + (ev["kind"] == null ? "(none)" : ev["kind"].ToString(Formatting.None)));
                        foreach (var p in ev.Properties())
                            if (p.Name != "kind" && !fields.Contains(p.Name))
                                throw new FormatException("event " + (j + 1) + ": " + kind + " has no field \"" + p.Name + "\"");
                    }
                    break;
            }
        }

        /// <summary>The close codes by name (protocol/closecode.go).</summary>
        public static readonly Dictionary<string, int> CloseCodeNames = new Dictionary<string, int>
        {
            { "abnormal", 4000 }, { "heartbeat_timeout", 4001 }, { "slow_consumer", 4002 }, { "server_restart", 4003 },
            { "replaced", 4004 }, { "session_expired", 4300 }, { "node_draining", 4301 }, { "node_gone", 4302 },
            { "bad_token", 4500 }, { "banned", 4501 }, { "kicked", 4502 }, { "protocol_violation", 4503 },
            { "duplicate_session", 4504 }, { "moved", 4505 }, { "connect_timeout", 4506 }, { "too_large", 4507 },
            { "policy_violation", 4508 },
        };

        static void OneOf(string field, string v, params string[] allowed)
        {
            if (!allowed.Contains(v)) throw new FormatException(field + " \"" + v + "\": want one of " + string.Join(", ", allowed.Where(a => a != "")));
        }

        bool Has(string field)
        {
            switch (field)
            {
                case "client": return Client != "";
                case "room": return Room != "";
                case "topic": return Topic != "";
                case "data": return Data != "";
                case "count": return Count > 0;
                case "kinds": return Kinds.Count > 0;
                case "body": return Body != "";
                case "method": return Method != "";
                case "direction": return Direction != "";
                case "code": return Code != "";
                case "accepted": return Accepted > 0;
            }
            throw new InvalidOperationException("no check for required field " + field);
        }
    }

    /// <summary>Typed reads of a scenario's JSON, as Go's decoder does them (null: absent).</summary>
    static class ScenarioJson
    {
        internal static void Check(JToken v, JTokenType want, string field)
        {
            if (v.Type == JTokenType.Null) return; // Go leaves the field as it was
            if (v.Type != want) throw new FormatException(field + ": a " + v.Type + ", want a " + want);
            if (want == JTokenType.Integer)
            {
                try { v.Value<long>(); }
                catch (OverflowException) { throw new FormatException(field + ": out of range"); }
            }
        }

        internal static string Str(JObject o, string f)
        {
            var v = o[f];
            return v != null && v.Type == JTokenType.String ? (string)v : "";
        }

        internal static long Int(JObject o, string f)
        {
            var v = o[f];
            return v != null && v.Type == JTokenType.Integer ? v.Value<long>() : 0;
        }

        internal static List<string> Strings(JToken v, string field)
        {
            var out_ = new List<string>();
            if (v == null || v.Type == JTokenType.Null) return out_;
            var a = v as JArray;
            if (a == null) throw new FormatException(field + ": want a list of strings");
            foreach (var x in a)
            {
                if (x.Type != JTokenType.String) throw new FormatException(field + ": want a list of strings");
                out_.Add((string)x);
            }
            return out_;
        }
    }
}
