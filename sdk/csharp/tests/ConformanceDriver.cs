// The C# SDK's conformance driver: runs one scenario of
// conformance/scenarios with the SDK, against the nodes the harness starts,
// each client dialling through fault proxies of its own (one per node). A
// port of conformance/driver_test.go (the reference): the same steps, event
// mapping and waits.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Tandem.Protocol;

namespace Tandem.Tests
{
    /// <summary>A step failed: the scenario stops there.</summary>
    public sealed class StepFailure : Exception
    {
        public StepFailure(string message) : base(message) { }
    }

    public sealed class ScenarioDriver
    {
        /// <summary>Bounds every wait of a step: generous, as a loaded machine is slow; no step measures time.</summary>
        public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(30);

        /// <summary>The fault ops: forwarded to every proxy of the client with these fields of the step.</summary>
        static readonly string[] FaultOps = { "reset", "silence", "throttle", "hold_away", "let_back", "inject_close" };
        static readonly string[] FaultFields = { "op", "direction", "after_bytes", "bytes_per_second", "code" };

        readonly ConformanceScenario s;
        readonly HarnessScenario hs;
        readonly Dictionary<string, Player> clients = new Dictionary<string, Player>();
        readonly List<Player> all = new List<Player>(); // every client dialled, for the cleanup
        readonly object mu = new object();
        readonly Dictionary<string, string> aliases = new Dictionary<string, string>(); // room alias → room id
        readonly Dictionary<string, string> names = new Dictionary<string, string>();   // room id → alias
        string where = ""; // the step running, for failures

        /// <summary>
        /// A scenario client: the SDK client, the log of its events, the fault proxies it dials through (by the
        /// node address they stand for), its rooms and the tap on the frames it reads.
        /// </summary>
        sealed class Player
        {
            public string Name;
            public CodecKind Codec;
            public TandemClient C;
            public EventLog Log;
            public int Cursor; // events before it have been checked by an expect step
            public readonly Dictionary<string, Uri> Proxies = new Dictionary<string, Uri>(); // node host:port → proxy URL
            public readonly Dictionary<string, Room> Rooms = new Dictionary<string, Room>();   // by alias
            readonly Dictionary<string, int> bodies = new Dictionary<string, int>();

            /// <summary>Counts a frame the client read by its body's name ("ping", "room_message"…).</summary>
            public void Tap(byte[] frame)
            {
                Envelope env;
                try { env = Tandem.Protocol.Codec.Decode(Codec, frame); }
                catch (FormatException) { return; }
                var name = Snake(env.Case.ToString());
                lock (bodies)
                {
                    int n;
                    bodies.TryGetValue(name, out n);
                    bodies[name] = n + 1;
                }
            }

            public int Frames(string body)
            {
                int n;
                lock (bodies) bodies.TryGetValue(body, out n);
                return n;
            }
        }

        /// <summary>
        /// The client's WebSocket: dials the client's proxy for the node the URL names (the node a seat
        /// reservation names too), and counts the bodies of the frames read, for expect_frames.
        /// </summary>
        sealed class ProxiedTransport : ITransport
        {
            readonly Player p;
            readonly ClientWebSocketTransport inner = new ClientWebSocketTransport();

            public ProxiedTransport(Player p) { this.p = p; }

            public Task ConnectAsync(Uri url, string subprotocol, CancellationToken ct)
            {
                Uri px;
                if (!p.Proxies.TryGetValue(url.Authority, out px)) throw new WebSocketException("no proxy for " + url.Authority);
                var to = new UriBuilder(url) { Host = px.Host, Port = px.Port }.Uri;
                return inner.ConnectAsync(to, subprotocol, ct);
            }

            public Task SendAsync(byte[] data, bool text, CancellationToken ct) { return inner.SendAsync(data, text, ct); }

            public async Task<TransportMessage> ReceiveAsync(CancellationToken ct)
            {
                var m = await inner.ReceiveAsync(ct).ConfigureAwait(false);
                if (m.Data != null) p.Tap(m.Data);
                return m;
            }

            public Task CloseAsync(int code, string reason, CancellationToken ct) { return inner.CloseAsync(code, reason, ct); }
            public void Abort() { inner.Abort(); }
            public void Dispose() { inner.Dispose(); }
        }

        /// <summary>Reads a client's events into a list until the client stops.</summary>
        sealed class EventLog
        {
            readonly List<TandemEvent> events = new List<TandemEvent>();
            public readonly Task Done;

            public EventLog(TandemClient c)
            {
                Done = Task.Run(async () =>
                {
                    TandemEvent ev;
                    while ((ev = await c.NextEventAsync().ConfigureAwait(false)) != null)
                        lock (events) events.Add(ev);
                });
            }

            public List<TandemEvent> All() { lock (events) return events.ToList(); }
        }

        public ScenarioDriver(ConformanceScenario s, HarnessScenario hs)
        {
            this.s = s;
            this.hs = hs;
        }

        string FirstNode { get { return s.NodeIds[0]; } }

        /// <summary>Runs every step; a failure throws a StepFailure naming the step.</summary>
        public async Task Run()
        {
            for (int i = 0; i < s.Steps.Count; i++)
            {
                var st = s.Steps[i];
                where = "step " + (i + 1) + " (" + st.Op + (st.Client != "" ? " " + st.Client : "") + ")";
                try
                {
                    await Step(st).ConfigureAwait(false);
                }
                catch (StepFailure) { throw; }
                catch (Exception e)
                {
                    throw new StepFailure(where + ": " + e);
                }
            }
        }

        /// <summary>Closes every client (waiting for its event log to end), then stops the scenario's nodes.</summary>
        public async Task Cleanup()
        {
            List<Player> ps;
            lock (mu) ps = all.ToList();
            await Task.WhenAll(ps.Select(async p =>
            {
                try { await p.C.CloseAsync().ConfigureAwait(false); } catch (Exception) { }
                await Task.WhenAny(p.Log.Done, Task.Delay(WaitLimit)).ConfigureAwait(false);
            })).ConfigureAwait(false);
            await hs.Delete().ConfigureAwait(false);
        }

        void Fail(string msg) { throw new StepFailure(where + ": " + msg); }

        async Task Step(Step st)
        {
            using (var cts = new CancellationTokenSource(WaitLimit))
            {
                var ct = cts.Token;
                Player p;
                clients.TryGetValue(st.Client, out p);
                if (FaultOps.Contains(st.Op))
                {
                    // A fault acts on every connection of the client, to any node.
                    var f = new JObject();
                    foreach (var prop in st.Raw.Properties())
                        if (FaultFields.Contains(prop.Name)) f[prop.Name] = prop.Value;
                    foreach (var node in s.NodeIds) await hs.Fault(st.Client, node, f).ConfigureAwait(false);
                    return;
                }
                switch (st.Op)
                {
                    case "connect":
                        await Connect(st, ct).ConfigureAwait(false);
                        break;
                    case "join":
                        await Join(p, st, ct).ConfigureAwait(false);
                        break;
                    case "leave":
                        await RoomOf(p, st.Room).LeaveAsync(ct).ConfigureAwait(false);
                        break;
                    case "send":
                        await Send(p, st).ConfigureAwait(false);
                        break;
                    case "rpc":
                        {
                            byte[] reply = null;
                            Exception err = null;
                            try { reply = await p.C.RpcAsync(st.Method, Encoding.UTF8.GetBytes(st.Data), ct).ConfigureAwait(false); }
                            catch (Exception e) { err = e; }
                            if (st.Error != null) CheckServerError(err, st.Error.Code);
                            else if (err != null) Fail("rpc: " + err.Message);
                            else if (st.Reply != null && Encoding.UTF8.GetString(reply) != st.Reply)
                                Fail("reply " + JsonConvert.ToString(Encoding.UTF8.GetString(reply)) + ", want " + JsonConvert.ToString(st.Reply));
                            break;
                        }
                    case "expect":
                        await Expect(p, st).ConfigureAwait(false);
                        break;
                    case "expect_messages":
                        await ExpectMessages(p, st).ConfigureAwait(false);
                        break;
                    case "expect_none":
                        foreach (var ev in p.Log.All())
                            if (st.Kinds.Contains(Kind(ev))) Fail("got " + Normalize(ev).ToString(Formatting.None));
                        break;
                    case "expect_frames":
                        await WaitFor(() => p.Frames(st.Body) >= st.Count, () => st.Count + " " + st.Body + " frames (" + p.Frames(st.Body) + " so far)").ConfigureAwait(false);
                        break;
                    case "await_close":
                        {
                            var node = st.Node != "" ? st.Node : FirstNode;
                            long want = Math.Max(st.Count, 1), got = 0;
                            await WaitForAsync(async () => (got = await hs.Closes(node, st.Code).ConfigureAwait(false)) >= want,
                                () => "node " + node + " to close " + want + " connections with " + st.Code + " (" + got + " so far)").ConfigureAwait(false);
                            break;
                        }
                    case "connections":
                        {
                            var node = st.Node != "" ? st.Node : FirstNode;
                            Tuple<int, int> got = null;
                            await WaitForAsync(async () =>
                            {
                                got = await hs.Connections(st.Client, node).ConfigureAwait(false);
                                if (got.Item1 > st.Accepted) Fail("the client opened " + got.Item1 + " connections, want " + st.Accepted);
                                return got.Item1 == st.Accepted && (st.Open == null || got.Item2 == st.Open.Value);
                            }, () => st.Accepted + " connections accepted, " + (st.Open == null ? "any" : st.Open.ToString()) + " open (" +
                                     (got == null ? "none asked yet" : got.Item1 + " accepted, " + got.Item2 + " open") + ")").ConfigureAwait(false);
                            break;
                        }
                    case "close":
                        try { await p.C.CloseAsync().ConfigureAwait(false); } catch (Exception) { }
                        break;
                    case "drain":
                        await hs.Drain(st.Node != "" ? st.Node : FirstNode, st.TimeoutMs).ConfigureAwait(false);
                        break;
                    default:
                        Fail("unknown op"); // ConformanceScenario.Load refuses it first
                        break;
                }
            }
        }

        async Task Connect(Step st, CancellationToken ct)
        {
            var id = st.Player != "" ? st.Player : st.Client;
            var p = new Player { Name = st.Client, Codec = st.Codec == "proto" ? CodecKind.Binary : CodecKind.Json };
            foreach (var node in s.NodeIds)
            {
                var px = await hs.Proxy(st.Client, node).ConfigureAwait(false);
                p.Proxies[new Uri(hs.NodeUrls[node]).Authority] = new Uri(px);
            }
            var o = new ClientOptions
            {
                Url = hs.NodeUrls[st.Node != "" ? st.Node : FirstNode],
                Codec = p.Codec,
                Token = _ => hs.Token(id, st.Token), // a fresh token at every dial
                Transport = () => new ProxiedTransport(p),
                MinBackoff = TimeSpan.FromMilliseconds(1),
                MaxBackoff = TimeSpan.FromMilliseconds(5),
                AckInterval = TimeSpan.FromMilliseconds(10),
                // HeartbeatTimeout: the SDK's default (2.5 × the node's heartbeat) unless the step sets one.
            };
            if (st.HeartbeatTimeoutMs > 0) o.HeartbeatTimeout = TimeSpan.FromMilliseconds(st.HeartbeatTimeoutMs);
            TandemClient c = null;
            Exception err = null;
            try { c = await TandemClient.ConnectAsync(o, ct).ConfigureAwait(false); }
            catch (Exception e) { err = e; }
            if (st.Error != null)
            {
                if (c != null)
                {
                    await c.CloseAsync().ConfigureAwait(false);
                    Fail("connected; want the connect refused");
                }
                var ce = Find<CloseException>(err);
                if (ce == null) Fail("connect failed with " + err + ", want a close");
                if (st.Error.Close != "" && CloseName(ce.Code) != st.Error.Close)
                    Fail("connect closed with " + CloseName(ce.Code) + ", want " + st.Error.Close);
                CheckServerError(err, st.Error.Code);
                return;
            }
            if (err != null) Fail("dial: " + err);
            p.C = c;
            p.Log = new EventLog(c);
            clients[st.Client] = p;
            lock (mu) all.Add(p);
        }

        async Task Join(Player p, Step st, CancellationToken ct)
        {
            var o = new JoinOptions { RoomType = st.RoomType };
            if (st.Room != "") o.RoomId = RoomId(st.Room);
            switch (st.Mode)
            {
                case "join": o.Mode = JoinMode.Join; break;
                case "create": o.Mode = JoinMode.Create; break;
                case "join_or_create": o.Mode = JoinMode.JoinOrCreate; break;
            }
            Room r = null;
            Exception err = null;
            if (st.AwaitDirectory)
            {
                // The directory learns of a room on another node a moment after the room starts: until then
                // the join is not_found.
                await WaitForAsync(async () =>
                {
                    err = null;
                    try { r = await p.C.JoinAsync(o, ct).ConfigureAwait(false); }
                    catch (Exception e) { err = e; }
                    var se = Find<ServerException>(err);
                    return se == null || (se.Code != ErrorCodes.NotFound && se.Code != ErrorCodes.Unavailable);
                }, () => "the room directory to know " + st.Room + " (last: " + (err == null ? "none" : err.Message) + ")").ConfigureAwait(false);
            }
            else
            {
                try { r = await p.C.JoinAsync(o, ct).ConfigureAwait(false); }
                catch (Exception e) { err = e; }
            }
            if (st.Error != null)
            {
                CheckServerError(err, st.Error.Code);
                return;
            }
            if (err != null) Fail("join: " + err);
            var alias = st.As != "" ? st.As : st.Room;
            if (alias != "")
            {
                lock (mu)
                {
                    aliases[alias] = r.Id;
                    names[r.Id] = alias;
                }
                p.Rooms[alias] = r;
            }
        }

        async Task Send(Player p, Step st)
        {
            var r = RoomOf(p, st.Room);
            var delivery = Delivery.All;
            List<string> to = null;
            switch (st.Delivery)
            {
                case "others": delivery = Delivery.Others; break;
                case "list": delivery = Delivery.List; to = st.To; break;
                case "room": delivery = Delivery.Room; break;
            }
            if (st.Count == 0)
            {
                await r.SendAsync(st.Topic, Encoding.UTF8.GetBytes(ConformanceScenario.Expand(st.Data, 0, st.Size)), delivery, to).ConfigureAwait(false);
                return;
            }
            int first = Math.Max(st.First, 1);
            for (int i = first; i < first + st.Count; i++)
            {
                try { await r.SendAsync(st.Topic, Encoding.UTF8.GetBytes(ConformanceScenario.Expand(st.Data, i, st.Size)), delivery, to).ConfigureAwait(false); }
                catch (Exception e)
                {
                    // The server closed the client mid-series: the next steps check how.
                    if (p.Log.All().Any(ev => ev is ClosedEvent)) return;
                    Fail("send " + i + ": " + e.Message);
                }
            }
        }

        Room RoomOf(Player p, string alias)
        {
            Room r;
            if (!p.Rooms.TryGetValue(alias, out r)) Fail(p.Name + " has not joined room \"" + alias + "\"");
            return r;
        }

        string RoomId(string alias)
        {
            lock (mu)
            {
                string id;
                return aliases.TryGetValue(alias, out id) ? id : alias; // a room id of no room: the scenario expects not_found
            }
        }

        string RoomAlias(string id)
        {
            lock (mu)
            {
                string a;
                return names.TryGetValue(id ?? "", out a) ? a : id ?? "";
            }
        }

        /// <summary>
        /// Checks that the client's next events, those of the kinds in st.Skip passed over, are exactly
        /// st.Events, in order; the next expect continues after the last one matched.
        /// </summary>
        async Task Expect(Player p, Step st)
        {
            int pos = p.Cursor;
            await WaitFor(() =>
            {
                var evs = p.Log.All();
                int k = 0;
                for (pos = p.Cursor; pos < evs.Count && k < st.Events.Count; pos++)
                {
                    if (st.Skip.Contains(Kind(evs[pos]))) continue;
                    var got = Normalize(evs[pos]);
                    if (!Matches(st.Events[k], got))
                        Fail("event " + (k + 1) + ": got " + got.ToString(Formatting.None) + ", want " + st.Events[k].ToString(Formatting.None) +
                             " (events since the last expect: " + Show(evs.Skip(p.Cursor).Take(pos + 1 - p.Cursor)) + ")");
                    k++;
                }
                return k == st.Events.Count;
            }, () => Show(st.Events) + "; the events since the last expect: " + Show(p.Log.All().Skip(p.Cursor))).ConfigureAwait(false);
            p.Cursor = pos;
        }

        /// <summary>Checks the client's room messages of a room and topic: exactly the numbered series, in order, each once.</summary>
        async Task ExpectMessages(Player p, Step st)
        {
            var want = Enumerable.Range(1, st.Count).Select(i => ConformanceScenario.Expand(st.Data, i, st.Size)).ToList();
            var msgs = new List<MessageEvent>();
            // The wait only counts: decoding every message at every poll would take the CPU the client reads with.
            await WaitFor(() =>
            {
                msgs = p.Log.All().OfType<MessageEvent>().Where(m => m.Topic == st.Topic && RoomAlias(m.Room.Id) == st.Room).ToList();
                return msgs.Count >= st.Count;
            }, () => st.Count + " messages \"" + st.Topic + "\" in " + st.Room + " (" + msgs.Count + " so far; the last events: " +
                     Show(LastNonMessages(p.Log.All(), 8)) + ")").ConfigureAwait(false);
            var got = msgs.Select(m => Encoding.UTF8.GetString(m.Data)).ToList();
            if (!got.SequenceEqual(want))
                Fail("got " + got.Count + " messages, not the " + st.Count + " of the series exactly once in order: " + Short(got));
        }

        static readonly Dictionary<Type, string> Kinds = new Dictionary<Type, string>
        {
            { typeof(JoinedEvent), "joined" }, { typeof(MessageEvent), "message" }, { typeof(RoomMemberEvent), "room_event" },
            { typeof(LeftEvent), "left" }, { typeof(GapEvent), "gap" }, { typeof(SnapshotEvent), "snapshot" },
            { typeof(DeltaEvent), "delta" }, { typeof(ErrorEvent), "error" }, { typeof(NoticeEvent), "notice" },
            { typeof(DisconnectedEvent), "disconnected" }, { typeof(ResumedEvent), "resumed" },
            { typeof(SessionLostEvent), "session_lost" }, { typeof(ClosedEvent), "closed" },
        };

        /// <summary>An event's kind, as Normalize names it, without normalizing it (cheap: expect passes over many).</summary>
        static string Kind(TandemEvent ev)
        {
            string k;
            return Kinds.TryGetValue(ev.GetType(), out k) ? k : ev.GetType().Name;
        }

        /// <summary>The scenario's form of an SDK event (conformance/README.md's event table), through JSON as Go's driver does.</summary>
        JObject Normalize(TandemEvent ev)
        {
            var e = new JObject();
            if (ev is JoinedEvent j)
            {
                e["kind"] = "joined";
                e["room"] = RoomAlias(j.Room.Id);
                e["room_type"] = j.Room.Type;
                e["players"] = j.Players == null ? (JToken)JValue.CreateNull() : new JArray(j.Players);
            }
            else if (ev is MessageEvent m)
            {
                e["kind"] = "message";
                e["room"] = RoomAlias(m.Room.Id);
                e["from"] = m.From;
                e["topic"] = m.Topic;
                e["data"] = Encoding.UTF8.GetString(m.Data ?? new byte[0]);
            }
            else if (ev is RoomMemberEvent re)
            {
                e["kind"] = "room_event";
                e["room"] = RoomAlias(re.Room.Id);
                e["player"] = re.PlayerId;
                e["event"] = Snake(re.Kind.ToString());
                if (re.Reason != LeaveReason.Unspecified) e["reason"] = Snake(re.Reason.ToString());
            }
            else if (ev is LeftEvent l)
            {
                e["kind"] = "left";
                e["room"] = RoomAlias(l.Room.Id);
                e["reason"] = Snake(l.Reason.ToString());
                e["missed"] = l.Missed;
            }
            else if (ev is GapEvent g)
            {
                e["kind"] = "gap";
                e["room"] = RoomAlias(g.Room.Id);
                e["epoch"] = (long)g.Epoch;
                e["state"] = Encoding.UTF8.GetString(g.State ?? new byte[0]);
            }
            else if (ev is SnapshotEvent sn)
            {
                e["kind"] = "snapshot";
                e["room"] = RoomAlias(sn.Room.Id);
            }
            else if (ev is DeltaEvent d)
            {
                e["kind"] = "delta";
                e["room"] = RoomAlias(d.Room.Id);
            }
            else if (ev is ErrorEvent er)
            {
                e["kind"] = "error";
                e["code"] = er.Error.Name;
                e["room"] = RoomAlias(er.Room);
                e["topic"] = er.Topic ?? "";
            }
            else if (ev is NoticeEvent n)
            {
                e["kind"] = "notice";
                e["notice_kind"] = n.Kind;
                e["text"] = n.Text;
            }
            else if (ev is DisconnectedEvent dc)
            {
                e["kind"] = "disconnected";
                CloseFields(e, dc.Error);
            }
            else if (ev is ResumedEvent)
            {
                e["kind"] = "resumed";
            }
            else if (ev is SessionLostEvent sl)
            {
                e["kind"] = "session_lost";
                e["rooms"] = new JArray((sl.Rooms ?? new List<string>()).Select(RoomAlias).OrderBy(x => x, StringComparer.Ordinal));
                CloseFields(e, sl.Error);
                e.Remove("class");
            }
            else if (ev is ClosedEvent cl)
            {
                e["kind"] = "closed";
                CloseFields(e, cl.Error);
                var se = Find<ServerException>(cl.Error);
                if (se != null) e["error"] = se.Name;
            }
            else
            {
                e["kind"] = ev.GetType().Name;
            }
            return (JObject)JToken.Parse(e.ToString(Formatting.None));
        }

        /// <summary>Sets class and, for a close from the server (a close code), code.</summary>
        static void CloseFields(JObject e, Exception err)
        {
            var ce = Find<CloseException>(err);
            if (ce != null && ce.Code.HasValue)
            {
                e["class"] = ce.Class.ToString().ToLowerInvariant();
                e["code"] = CloseName(ce.Code);
                return;
            }
            e["class"] = "resume"; // a reset, EOF, a silent connection
        }

        /// <summary>Whether got has every field of want, with an equal JSON value.</summary>
        static bool Matches(JObject want, JObject got)
        {
            foreach (var p in want.Properties())
            {
                var g = got[p.Name];
                if (g == null || !JToken.DeepEquals(p.Value, g)) return false;
            }
            return true;
        }

        void CheckServerError(Exception err, string code)
        {
            var se = Find<ServerException>(err);
            if (se == null) Fail("got " + (err == null ? "no error" : err.ToString()) + ", want a server error " + code);
            if (code != "" && se.Name != code) Fail("got error " + se.Name + " (" + se.Code + "), want " + code);
        }

        /// <summary>The first T in err's chain of inner exceptions.</summary>
        static T Find<T>(Exception err) where T : Exception
        {
            for (var e = err; e != null; e = e.InnerException)
            {
                if (e is T t) return t;
                if (e is AggregateException ae && ae.InnerExceptions.Count == 1) return Find<T>(ae.InnerExceptions[0]);
            }
            return null;
        }

        /// <summary>A close code's name (protocol/closecode.go); "unknown" for another code or none.</summary>
        static string CloseName(int? code)
        {
            var n = code.HasValue ? Tandem.Tests.Step.CloseCodeNames.FirstOrDefault(c => c.Value == code.Value).Key : null;
            return n ?? "unknown";
        }

        /// <summary>An enum name in the scenario's form: RoomMessage → room_message.</summary>
        static string Snake(string name) { return Regex.Replace(name, "(?<!^)([A-Z])", "_$1").ToLowerInvariant(); }

        /// <summary>Polls cond until it holds, failing after WaitLimit; what describes the wait (and the state) on failure.</summary>
        async Task WaitFor(Func<bool> cond, Func<string> what)
        {
            var until = DateTime.UtcNow + WaitLimit;
            while (!cond())
            {
                if (DateTime.UtcNow > until) Fail("timed out after " + WaitLimit.TotalSeconds + " s waiting for " + what());
                await Task.Delay(5).ConfigureAwait(false);
            }
        }

        async Task WaitForAsync(Func<Task<bool>> cond, Func<string> what)
        {
            var until = DateTime.UtcNow + WaitLimit;
            while (!await cond().ConfigureAwait(false))
            {
                if (DateTime.UtcNow > until) Fail("timed out after " + WaitLimit.TotalSeconds + " s waiting for " + what());
                await Task.Delay(5).ConfigureAwait(false);
            }
        }

        string Show(IEnumerable<TandemEvent> evs) { return Show(evs.Select(Normalize)); }

        /// <summary>Events for a failure message; long data (a padded message) cut short.</summary>
        static string Show(IEnumerable<JObject> evs)
        {
            return "[" + string.Join(", ", evs.Select(e =>
            {
                var d = e["data"];
                if (d != null && d.Type == JTokenType.String && ((string)d).Length > 80)
                {
                    e = (JObject)e.DeepClone();
                    e["data"] = ((string)d).TrimEnd().Substring(0, Math.Min(80, ((string)d).TrimEnd().Length)) + "… (" + ((string)d).Length + " characters)";
                }
                return e.ToString(Formatting.None);
            })) + "]";
        }

        static IEnumerable<TandemEvent> LastNonMessages(List<TandemEvent> evs, int n)
        {
            return evs.Where(e => !(e is MessageEvent)).Reverse().Take(n).Reverse();
        }

        static string Short(List<string> s)
        {
            var shown = s.Count <= 20 ? s : s.Take(10).Concat(new[] { "…" }).Concat(s.Skip(s.Count - 10)).ToList();
            return "[" + string.Join(", ", shown.Select(x => JsonConvert.ToString(x.TrimEnd()))) + "]";
        }
    }
}
