// Auth against a tiny local HTTP server: a redirect is not followed, so the
// device secret never goes where the redirect points.
using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Tandem.Tests
{
    [TestFixture]
    public class AuthTests
    {
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
