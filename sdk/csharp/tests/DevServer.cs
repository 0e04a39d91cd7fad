// A real `tandem dev` for the end-to-end tests: the binary named by
// TANDEM_BIN, on 127.0.0.1:0 ports, with a data directory of its own.
using System;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.IO;
using System.Text.RegularExpressions;
using System.Threading;
using NUnit.Framework;

namespace Tandem.Tests
{
    public sealed class DevServer : IDisposable
    {
        static readonly Regex WebLine = new Regex(@"^web: +(http://\S+)/admin$");
        static readonly Regex RealtimeLine = new Regex(@"^realtime: +(ws://\S+)$");

        readonly Process proc;
        readonly string bin;
        readonly string dataDir;
        readonly System.Text.StringBuilder output = new System.Text.StringBuilder();
        readonly object adminMu = new object();
        bool adminCreated; // guarded by adminMu

        public string Web { get; private set; }
        public string Realtime { get; private set; }

        /// <summary>Starts the server, or ignores the tests when TANDEM_BIN is unset (fails them under CI=true).</summary>
        public static DevServer Start(params string[] extra)
        {
            var bin = Environment.GetEnvironmentVariable("TANDEM_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
            {
                var why = "TANDEM_BIN does not name the tandem binary (go build -o /tmp/tandem ./cmd/tandem)";
                if (Environment.GetEnvironmentVariable("CI") == "true") Assert.Fail(why);
                Assert.Ignore(why);
            }
            return new DevServer(bin, extra);
        }

        DevServer(string bin, string[] extra)
        {
            dataDir = Path.Combine(Path.GetTempPath(), "tandem-csharp-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dataDir);
            this.bin = bin;
            // Rooms left open by a test must not hold the shutdown up; matches form fast.
            var args = "dev --data-dir " + dataDir + " --web-listen 127.0.0.1:0 --realtime-listen 127.0.0.1:0" +
                " --drain-timeout 200ms --match-tick 100ms " + string.Join(" ", extra);
            var psi = new ProcessStartInfo(bin, args)
            {
                UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
            };
            proc = new Process { StartInfo = psi };
            var ready = new ManualResetEventSlim();
            proc.OutputDataReceived += (s, e) =>
            {
                if (e.Data == null) return;
                lock (output) output.AppendLine(e.Data);
                var m = WebLine.Match(e.Data);
                if (m.Success) Web = m.Groups[1].Value;
                m = RealtimeLine.Match(e.Data);
                if (m.Success) Realtime = m.Groups[1].Value;
                if (Web != null && Realtime != null) ready.Set();
            };
            proc.ErrorDataReceived += (s, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
            proc.Start();
            proc.BeginOutputReadLine();
            proc.BeginErrorReadLine();
            if (!ready.Wait(TimeSpan.FromSeconds(60)))
            {
                Dispose();
                Assert.Fail("tandem dev did not print its URLs within 60 s:\n" + Output);
            }
        }

        /// <summary>
        /// PUTs a matchmaking queue through the admin API, as an operator admin made with `tandem admin create`
        /// (no MFA for that role) at the first call.
        /// </summary>
        public void PutQueue(string name, string queueJson)
        {
            const string admin = "op", password = "operator-password-1";
            lock (adminMu)
            {
                if (!adminCreated) CreateAdmin(admin, password);
                adminCreated = true;
            }
            using (var http = new HttpClient(new HttpClientHandler { UseCookies = false }))
            {
                var login = http.PostAsync(Web + "/api/admin/v1/session",
                    new StringContent("{\"name\":\"" + admin + "\",\"password\":\"" + password + "\"}", Encoding.UTF8, "application/json")).Result;
                Assert.IsTrue(login.IsSuccessStatusCode, "admin login: " + login.StatusCode + " " + login.Content.ReadAsStringAsync().Result);
                var cookie = string.Join("; ", login.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]));
                var put = new HttpRequestMessage(HttpMethod.Put, Web + "/api/admin/v1/matchmaking/queues/" + name)
                {
                    Content = new StringContent(queueJson, Encoding.UTF8, "application/json"),
                };
                put.Headers.Add("Cookie", cookie);
                var resp = http.SendAsync(put).Result;
                Assert.IsTrue(resp.IsSuccessStatusCode, "PUT queue: " + resp.StatusCode + " " + resp.Content.ReadAsStringAsync().Result);
            }
        }

        void CreateAdmin(string admin, string password)
        {
            var psi = new ProcessStartInfo(bin, "admin create --db sqlite:" + Path.Combine(dataDir, "tandem.db") +
                " --audit-key " + Path.Combine(dataDir, "audit-key.pem") + " --admin-name " + admin + " --role operator --password-stdin")
            {
                UseShellExecute = false, RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true,
            };
            using (var p = Process.Start(psi))
            {
                p.StandardInput.WriteLine(password);
                p.StandardInput.Close();
                var err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                if (p.ExitCode != 0) Assert.Fail("admin create: " + p.ExitCode + ": " + err);
            }
        }

        public string Output { get { lock (output) return output.ToString(); } }

        public void Dispose()
        {
            try
            {
                if (!proc.HasExited)
                {
                    // SIGTERM: the server drains and exits.
                    using (var kill = Process.Start(new ProcessStartInfo("kill", "-TERM " + proc.Id) { UseShellExecute = false }))
                        kill.WaitForExit();
                    if (!proc.WaitForExit(15000)) proc.Kill();
                }
            }
            catch (InvalidOperationException) { }
            try { Directory.Delete(dataDir, true); } catch (IOException) { }
        }
    }
}
