// Auth against a tiny local HTTP server: a redirect is not followed, so the
// device secret never goes where the redirect points. Email login against a
// real `tandem dev` (TANDEM_BIN): register, log in and connect, a wrong
// password, an email taken.
using System;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tandem.Protocol;

namespace Tandem.Tests
{
    [TestFixture]
    public class AuthTests
    {
        DevServer server; // started by the first test that needs it

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        DevServer Server()
        {
            if (server == null) server = DevServer.Start();
            return server;
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
