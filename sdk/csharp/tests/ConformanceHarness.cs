// The conformance harness server (conformance/cmd/harness) as a child
// process, and its HTTP API (conformance/README.md, "Harness"): it starts a
// scenario's nodes, mints tokens, runs each client's fault proxies and
// applies the faults, for a driver that cannot do so in its own process.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Tandem.Tests
{
    public sealed class Harness : IDisposable
    {
        const string Line = "harness: ";
        readonly Process proc;
        readonly StringBuilder stderr = new StringBuilder();
        // A drain answers once the node has drained (timeout_ms ≤ 60 s), so requests may take long.
        readonly HttpClient http = new HttpClient { Timeout = TimeSpan.FromSeconds(90) };

        /// <summary>The API's base URL, such as http://127.0.0.1:PORT.</summary>
        public string Url { get; private set; }

        /// <summary>
        /// Starts TANDEM_HARNESS_BIN with the scenarios of scenarioDir, or ignores the test when it is unset
        /// (fails it under CI=true).
        /// </summary>
        public static Harness Start(string scenarioDir)
        {
            var bin = Environment.GetEnvironmentVariable("TANDEM_HARNESS_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
            {
                var why = "TANDEM_HARNESS_BIN does not name the harness binary (go build -o /tmp/tandem-harness ./conformance/cmd/harness)";
                if (Environment.GetEnvironmentVariable("CI") == "true") Assert.Fail(why);
                Assert.Ignore(why);
            }
            return new Harness(bin, scenarioDir);
        }

        Harness(string bin, string scenarioDir)
        {
            // stdin is a pipe: the harness stops at its end, so it dies with this process.
            var psi = new ProcessStartInfo(bin, "--scenarios \"" + scenarioDir + "\"")
            {
                UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            };
            proc = new Process { StartInfo = psi };
            var ready = new ManualResetEventSlim();
            proc.OutputDataReceived += (s, e) =>
            {
                if (e.Data != null && e.Data.StartsWith(Line) && Url == null)
                {
                    Url = e.Data.Substring(Line.Length).Trim();
                    ready.Set();
                }
            };
            proc.ErrorDataReceived += (s, e) =>
            {
                if (e.Data == null) return;
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                    if (stderr.Length > 64 << 10) stderr.Remove(0, stderr.Length - (32 << 10)); // keep the last lines
                }
            };
            proc.Start();
            proc.BeginOutputReadLine();
            proc.BeginErrorReadLine();
            if (!ready.Wait(TimeSpan.FromSeconds(60)))
            {
                Dispose();
                Assert.Fail("the harness did not print its URL within 60 s:\n" + Log);
            }
        }

        /// <summary>The harness's log so far (its last lines).</summary>
        public string Log { get { lock (stderr) return stderr.ToString(); } }

        /// <summary>Closes its stdin (it stops every scenario and exits); kills it if it does not.</summary>
        public void Dispose()
        {
            try
            {
                if (!proc.HasExited)
                {
                    proc.StandardInput.Close();
                    if (!proc.WaitForExit(15000)) proc.Kill();
                }
            }
            catch (InvalidOperationException) { }
            catch (IOException) { }
            http.Dispose();
        }

        /// <summary>
        /// Sends a request with a JSON body (null: none) and returns the answer's JSON (null for 204); an
        /// answer of another status than want is a HarnessException with the harness's {code, message}.
        /// </summary>
        public async Task<JToken> Call(HttpMethod method, string path, object body, params HttpStatusCode[] want)
        {
            var req = new HttpRequestMessage(method, Url + path);
            if (body != null) req.Content = new StringContent(JsonConvert.SerializeObject(body), Encoding.UTF8, "application/json");
            using (var resp = await http.SendAsync(req).ConfigureAwait(false))
            {
                var text = resp.Content == null ? "" : await resp.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (Array.IndexOf(want, resp.StatusCode) < 0)
                    throw new HarnessException(method + " " + path + ": " + (int)resp.StatusCode + " " + text.Trim());
                return text.Trim() == "" ? null : JToken.Parse(text);
            }
        }
    }

    /// <summary>The harness refused a request.</summary>
    public sealed class HarnessException : Exception
    {
        public HarnessException(string message) : base("harness: " + message) { }
    }

    /// <summary>A running scenario of the harness: its nodes, and the requests about it.</summary>
    public sealed class HarnessScenario
    {
        readonly Harness h;
        public readonly string Id;
        /// <summary>The nodes' WebSocket URLs (ws://HOST:PORT/ws), by node id.</summary>
        public readonly Dictionary<string, string> NodeUrls = new Dictionary<string, string>();

        HarnessScenario(Harness h, JToken started)
        {
            this.h = h;
            Id = (string)started["id"];
            foreach (var p in ((JObject)started["nodes"]).Properties()) NodeUrls[p.Name] = (string)p.Value["url"];
        }

        /// <summary>POST /scenarios: starts the scenario's nodes.</summary>
        public static async Task<HarnessScenario> Start(Harness h, string name)
        {
            var started = await h.Call(HttpMethod.Post, "/scenarios", new Dictionary<string, object> { { "name", name } }, HttpStatusCode.Created).ConfigureAwait(false);
            return new HarnessScenario(h, started);
        }

        string P(string rest) { return "/scenarios/" + Uri.EscapeDataString(Id) + rest; }

        /// <summary>DELETE /scenarios/{id}: stops its proxies and nodes.</summary>
        public Task Delete() { return h.Call(HttpMethod.Delete, P(""), null, HttpStatusCode.NoContent); }

        /// <summary>A fresh realtime token for player; kind "forged" or "expired" for a bad one.</summary>
        public async Task<string> Token(string player, string kind)
        {
            var body = new Dictionary<string, object> { { "player", player } };
            if (!string.IsNullOrEmpty(kind)) body["kind"] = kind;
            var tok = await h.Call(HttpMethod.Post, P("/tokens"), body, HttpStatusCode.OK).ConfigureAwait(false);
            return (string)tok["token"];
        }

        /// <summary>The URL (ws://HOST:PORT/ws) of client's fault proxy in front of node; made at the first ask.</summary>
        public async Task<string> Proxy(string client, string node)
        {
            var body = new Dictionary<string, object> { { "client", client }, { "node", node } };
            var px = await h.Call(HttpMethod.Post, P("/proxies"), body, HttpStatusCode.Created, HttpStatusCode.OK).ConfigureAwait(false);
            return (string)px["url"];
        }

        /// <summary>Applies a fault step (its op and fields) to client's proxy in front of node.</summary>
        public Task Fault(string client, string node, JObject fault)
        {
            return h.Call(HttpMethod.Post, P("/proxies/" + Uri.EscapeDataString(client) + "/" + Uri.EscapeDataString(node) + "/fault"), fault, HttpStatusCode.NoContent);
        }

        /// <summary>How many connections client's proxy in front of node has accepted, and how many are open.</summary>
        public async Task<Tuple<int, int>> Connections(string client, string node)
        {
            var c = await h.Call(HttpMethod.Get, P("/proxies/" + Uri.EscapeDataString(client) + "/" + Uri.EscapeDataString(node)), null, HttpStatusCode.OK).ConfigureAwait(false);
            return Tuple.Create((int)c["accepted"], (int)c["open"]);
        }

        /// <summary>How many connections node has closed with the close code named code.</summary>
        public async Task<long> Closes(string node, string code)
        {
            var c = await h.Call(HttpMethod.Get, P("/closes?node=" + Uri.EscapeDataString(node)), null, HttpStatusCode.OK).ConfigureAwait(false);
            var n = c[code];
            return n == null ? 0 : n.Value<long>();
        }

        /// <summary>Drains node; answers once its sessions are closed with node_draining.</summary>
        public Task Drain(string node, int timeoutMs)
        {
            var body = new Dictionary<string, object> { { "node", node }, { "timeout_ms", timeoutMs } };
            return h.Call(HttpMethod.Post, P("/drain"), body, HttpStatusCode.NoContent);
        }
    }
}
