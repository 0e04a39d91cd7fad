// Auth against a tiny local HTTP server: a redirect is not followed, so the
// device secret never goes where the redirect points. Email login against a
// real `tandem dev` (TANDEM_BIN): register, log in and connect, a wrong
// password, an email taken. Refresh against a `tandem dev` whose tokens are
// stale as they arrive: shared by concurrent callers, rotated, and a reused
// refresh token ending the session.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json.Linq;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class AuthTests
    {
        DevServer server, staleServer; // started by the first test that needs each

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
            if (staleServer != null) staleServer.Dispose();
        }

        DevServer Server()
        {
            if (server == null) server = DevServer.Start();
            return server;
        }

        /// <summary>
        /// A server whose tokens are stale as they arrive, without waiting: access tokens live 1 ns; realtime
        /// tokens expire at the next whole second, and the Auth counts from the Date header (whole seconds) + 1 s,
        /// so it sees them expired already. Every token wanted takes a request.
        /// </summary>
        DevServer StaleServer()
        {
            if (staleServer == null) staleServer = DevServer.Start("--player-access-ttl", "1ns", "--realtime-token-ttl", "1s");
            return staleServer;
        }

        /// <summary>One call of an Auth: its path, the refresh token sent, the answer's status and refresh token.</summary>
        sealed class Call
        {
            public string Path, Sent, Got;
            public int Status;
            public override string ToString() { return Path + " " + Status; }
        }

        /// <summary>The Auth's HTTP client, recording every call (and following no redirect, as the SDK's own).</summary>
        sealed class Recording : DelegatingHandler
        {
            readonly List<Call> calls = new List<Call>();

            public Recording() : base(new HttpClientHandler { AllowAutoRedirect = false }) { }

            public List<Call> Calls { get { lock (calls) return calls.ToList(); } }

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage req, CancellationToken ct)
            {
                var call = new Call { Path = req.RequestUri.AbsolutePath };
                if (req.Content != null) call.Sent = RefreshToken(await req.Content.ReadAsStringAsync());
                var resp = await base.SendAsync(req, ct);
                call.Status = (int)resp.StatusCode;
                await resp.Content.LoadIntoBufferAsync();
                call.Got = RefreshToken(await resp.Content.ReadAsStringAsync());
                lock (calls) calls.Add(call);
                return resp;
            }

            static string RefreshToken(string json)
            {
                var o = json.Trim() == "" ? null : JsonCodec.Parse(json) as JObject;
                return o != null ? (string)o["refresh_token"] : null;
            }
        }

        static Task<Auth> LoginRecorded(DevServer s, Recording rec)
        {
            return Auth.LoginGuestAsync(s.Web, "device-" + Guid.NewGuid().ToString("N"), Auth.NewDeviceSecret(), http: new HttpClient(rec));
        }

        static string[] Paths(Recording rec) { return rec.Calls.Select(c => c.ToString()).ToArray(); }

        [Test]
        public async Task ARealtimeTokenWhileTheAccessTokenIsStaleRefreshesOnceRotatedAndAReuseEndsTheSession()
        {
            var s = StaleServer();
            var rec = new Recording();
            var auth = await LoginRecorded(s, rec);
            var first = rec.Calls[0].Got;

            // Two callers at once share one refresh, which uses the login's refresh token.
            var both = await Task.WhenAll(auth.RealtimeTokenAsync(CancellationToken.None), auth.RealtimeTokenAsync(CancellationToken.None));
            Assert.AreEqual(both[0], both[1]);
            CollectionAssert.AreEqual(new[] { "/api/v1/auth/guest 200", "/api/v1/auth/refresh 200" }, Paths(rec));
            Assert.AreEqual(first, rec.Calls[1].Sent);
            var rotated = rec.Calls[1].Got;
            StringAssert.StartsWith("tpr_", rotated);
            Assert.AreNotEqual(first, rotated, "the refresh rotated the refresh token");

            // The rotated token works.
            await auth.RefreshAsync(CancellationToken.None);
            Assert.AreEqual(3, rec.Calls.Count);
            Assert.AreEqual(rotated, rec.Calls[2].Sent);
            Assert.AreEqual(200, rec.Calls[2].Status);
            var current = rec.Calls[2].Got;

            // The login's token again: a reuse. (Not the token used up last, which the server honours once within
            // 30 s, for a client whose answer was lost: docs/players.md.) It is refused and the whole session ends.
            using (var http = new HttpClient())
            {
                var reuse = await http.PostAsync(s.Web + "/api/v1/auth/refresh",
                    new StringContent(new JObject { { "refresh_token", first } }.ToString(), System.Text.Encoding.UTF8, "application/json"));
                Assert.AreEqual(401, (int)reuse.StatusCode);
                Assert.AreEqual(ErrorCodes.Unauthenticated, (uint)JObject.Parse(await reuse.Content.ReadAsStringAsync())["code"]);
            }

            // So the Auth's own refresh token is refused too: it is logged out, and stays so without asking again.
            var e = Assert.Throws<LoggedOutException>(() => auth.RealtimeTokenAsync(CancellationToken.None).GetAwaiter().GetResult());
            Assert.IsInstanceOf<ServerException>(e.InnerException);
            Assert.AreEqual(ErrorCodes.Unauthenticated, ((ServerException)e.InnerException).Code);
            Assert.AreEqual(4, rec.Calls.Count);
            Assert.AreEqual("/api/v1/auth/refresh", rec.Calls[3].Path);
            Assert.AreEqual(current, rec.Calls[3].Sent);
            Assert.AreEqual(401, rec.Calls[3].Status);
            Assert.Throws<LoggedOutException>(() => auth.AccessTokenAsync(CancellationToken.None).GetAwaiter().GetResult());
            Assert.Throws<LoggedOutException>(() => auth.RefreshAsync(CancellationToken.None).GetAwaiter().GetResult());
            Assert.AreEqual(4, rec.Calls.Count);
        }

        [Test]
        public async Task TwoRefreshesAtOnceShareOneRequest()
        {
            var rec = new Recording();
            var auth = await LoginRecorded(StaleServer(), rec);
            // Two requests would present one refresh token twice: the server honours the second as a retry and
            // takes the pair the first got as used, so the Auth could keep a dead token.
            await Task.WhenAll(auth.RefreshAsync(CancellationToken.None), auth.RefreshAsync(CancellationToken.None));
            CollectionAssert.AreEqual(new[] { "/api/v1/auth/guest 200", "/api/v1/auth/refresh 200" }, Paths(rec));
            // The Auth holds the token that refresh got, and it works.
            await auth.RefreshAsync(CancellationToken.None);
            Assert.AreEqual(rec.Calls[1].Got, rec.Calls[2].Sent);
            Assert.AreEqual(200, rec.Calls[2].Status);
        }

        [Test]
        public async Task AnAccessTokenWantedWhileStaleTakesOneRefresh()
        {
            var rec = new Recording();
            var auth = await LoginRecorded(StaleServer(), rec);
            // The new access token is as fresh as the server allows: the Auth does not ask again.
            var access = await auth.AccessTokenAsync(CancellationToken.None);
            StringAssert.StartsWith("tpa_", access);
            CollectionAssert.AreEqual(new[] { "/api/v1/auth/guest 200", "/api/v1/auth/refresh 200" }, Paths(rec));
        }

        [Test]
        public async Task ALogoutEndsTheSessionOnTheServer()
        {
            var rec = new Recording();
            var auth = await LoginRecorded(Server(), rec);
            await auth.LogoutAsync(CancellationToken.None);
            CollectionAssert.AreEqual(new[] { "/api/v1/auth/guest 200", "/api/v1/auth/logout 204" }, Paths(rec));
            // Its refresh token is refused now, and the Auth is logged out without asking.
            using (var http = new HttpClient())
            {
                var after = await http.PostAsync(Server().Web + "/api/v1/auth/refresh",
                    new StringContent(new JObject { { "refresh_token", rec.Calls[0].Got } }.ToString(), System.Text.Encoding.UTF8, "application/json"));
                Assert.AreEqual(401, (int)after.StatusCode);
            }
            Assert.Throws<LoggedOutException>(() => auth.AccessTokenAsync(CancellationToken.None).GetAwaiter().GetResult());
            Assert.AreEqual(2, rec.Calls.Count);
        }

        static string NewEmail() { return "ann-" + Guid.NewGuid().ToString("N").Substring(0, 12) + "@example.com"; }

        [Test]
        public async Task RegisterThenLogInWithTheEmailAndConnect()
        {
            var web = Server().Web;
            var email = NewEmail();
            var reg = await Auth.RegisterAsync(web, email, "correct horse", "Ann", "device-ann");
            Assert.IsTrue(reg.Created);
            Assert.IsNotEmpty(reg.PlayerId);
            Assert.IsNotEmpty(reg.SessionId);

            var again = await Auth.LoginEmailAsync(web, email.ToUpperInvariant(), "correct horse", "device-ann");
            Assert.AreEqual(reg.PlayerId, again.PlayerId, "the login is the registered player (the email's case does not matter)");
            Assert.IsFalse(again.Created);
            Assert.AreNotEqual(reg.SessionId, again.SessionId, "each login is a session of its own");

            // The tokens of the login work: a realtime connection as the player.
            var c = await E2E.Connect(again, CodecKind.Json);
            Assert.AreEqual(reg.PlayerId, c.PlayerId);
            await E2E.CloseAndExpectClosed(c);
        }

        [Test]
        public async Task AWrongPasswordIsUnauthenticated()
        {
            var web = Server().Web;
            var email = NewEmail();
            await Auth.RegisterAsync(web, email, "correct horse");
            var e = Assert.Throws<ServerException>(() => Auth.LoginEmailAsync(web, email, "wrong horse").GetAwaiter().GetResult());
            Assert.AreEqual(ErrorCodes.Unauthenticated, e.Code);
            Assert.AreEqual("unauthenticated", e.Name);
            Assert.IsFalse(e.Temporary);
            // An unknown email gets the same answer: a login tells nothing about which emails have accounts.
            var unknown = Assert.Throws<ServerException>(() => Auth.LoginEmailAsync(web, NewEmail(), "correct horse").GetAwaiter().GetResult());
            Assert.AreEqual(ErrorCodes.Unauthenticated, unknown.Code);
            StringAssert.DoesNotContain("wrong horse", e.Message + unknown.Message);
        }

        [Test]
        public async Task ATakenEmailIsAValidationError()
        {
            var web = Server().Web;
            var email = NewEmail();
            await Auth.RegisterAsync(web, email, "correct horse");
            var e = Assert.Throws<ServerException>(() => Auth.RegisterAsync(web, email, "another horse").GetAwaiter().GetResult());
            Assert.AreEqual(ErrorCodes.ValidationFailed, e.Code);
            CollectionAssert.Contains(e.Fields.Select(f => f.Key).ToList(), "email");
        }

        [Test]
        public void AShortPasswordIsAValidationErrorNamingIt()
        {
            var e = Assert.Throws<ServerException>(() => Auth.RegisterAsync(Server().Web, NewEmail(), "short").GetAwaiter().GetResult());
            Assert.AreEqual(ErrorCodes.ValidationFailed, e.Code);
            CollectionAssert.AreEqual(new[] { "password" }, e.Fields.Select(f => f.Key).ToList());
        }

        /// <summary>An HttpListener on a free port of 127.0.0.1.</summary>
        static HttpListener Listen(out string url)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            url = "http://127.0.0.1:" + port + "/";
            var l = new HttpListener();
            l.Prefixes.Add(url);
            l.Start();
            return l;
        }

        [TestCase(307)]
        [TestCase(308)]
        [TestCase(302)]
        public void ALoginRedirectIsNotFollowed(int status)
        {
            string url, elsewhere;
            using (var redirecting = Listen(out url))
            using (var target = Listen(out elsewhere))
            {
                int hits = 0;
                // The redirect's target counts what reaches it; it should be nothing.
                var counting = Task.Run(async () =>
                {
                    while (true)
                    {
                        HttpListenerContext ctx;
                        try { ctx = await target.GetContextAsync(); }
                        catch (Exception) { return; }
                        Interlocked.Increment(ref hits);
                        ctx.Response.StatusCode = 500;
                        ctx.Response.Close();
                    }
                });
                var answering = Task.Run(async () =>
                {
                    var ctx = await redirecting.GetContextAsync();
                    ctx.Response.StatusCode = status;
                    ctx.Response.RedirectLocation = elsewhere + "api/v1/auth/guest";
                    ctx.Response.Close();
                });
                var e = Assert.Throws<HttpStatusException>(() =>
                    Auth.LoginGuestAsync(url.TrimEnd('/'), "device-1", Auth.NewDeviceSecret()).GetAwaiter().GetResult());
                Assert.AreEqual(status, e.StatusCode);
                Assert.IsTrue(answering.Wait(E2E.Deadline), "the login reached the server");
                Assert.AreEqual(0, Interlocked.CompareExchange(ref hits, 0, 0), "the redirect was followed");
                target.Stop();
                Assert.IsTrue(counting.Wait(E2E.Deadline));
            }
        }
    }
}
