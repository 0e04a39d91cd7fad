// Player login against the web server's player API (/api/v1; docs/api.md),
// as sdk/go/auth.go: guest login, email and password, keeping the realtime token fresh (through
// the realtime-token route while the access token is fresh, by a refresh
// otherwise), and the realtime URL to use (Locate). Tokens and secrets are
// never put in an exception message.
using System;
using System.Globalization;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Tandem.Protocol;

namespace Tandem
{
    /// <summary>The login session is over (logged out, revoked or banned): log in again. Inner says why.</summary>
    public sealed class LoggedOutException : TandemException
    {
        public LoggedOutException(Exception why) : base("tandem: logged out" + (why != null ? ": " + why.Message : ""), why) { }
    }

    /// <summary>An answer of the web server that is not problem+json (a proxy's error page, say, or a redirect: none is followed).</summary>
    public sealed class HttpStatusException : TandemException
    {
        public readonly int StatusCode;
        public HttpStatusException(int status) : base("tandem: HTTP " + status) { StatusCode = status; }
    }

    /// <summary>A logged-in player: holds the tokens of one login session and keeps them fresh. Thread-safe.</summary>
    public sealed class Auth
    {
        static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
        readonly HttpClient http;
        readonly string baseUrl;
        readonly TimeSpan margin;
        readonly object mu = new object();

        // Guarded by mu.
        string access = "", refresh = "", realtime = "", realtimeUrl = "", sessionId = "";
        DateTime accessExp, realtimeExp;       // local clock (UTC)
        TimeSpan accessLife, realtimeLife;
        Call inflight;                         // the request for new tokens under way
        Exception ended;

        /// <summary>A request for new tokens; Refreshes once it uses (or falls back to) the refresh token. Guarded by mu.</summary>
        sealed class Call
        {
            public Task Done;
            public bool Refreshes;
        }

        Auth(HttpClient http, string baseUrl, TimeSpan margin)
        {
            this.http = http;
            this.baseUrl = baseUrl.TrimEnd('/');
            this.margin = margin;
        }

        public string PlayerId { get; private set; }
        /// <summary>The login created the player: RegisterAsync, or the first guest login of a device.</summary>
        public bool Created { get; private set; }
        public string SessionId { get { lock (mu) return sessionId; } }
        /// <summary>The realtime endpoint the web server named last, such as ws://127.0.0.1:7701/ws.</summary>
        public string RealtimeUrl { get { lock (mu) return realtimeUrl; } }

        public override string ToString() { return "Tandem.Auth{player " + PlayerId + "}"; }

        /// <summary>A new random device secret (128 bits, base64url): generate once per device and keep it.</summary>
        public static string NewDeviceSecret()
        {
            var b = new byte[16];
            using (var rng = System.Security.Cryptography.RandomNumberGenerator.Create()) rng.GetBytes(b);
            return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        }

        /// <summary>
        /// Logs in as the guest of a device (deviceId: 1–128 printable ASCII characters; secret: NewDeviceSecret
        /// kept with it). The first login of a device creates the player. margin: tokens are renewed when valid
        /// for less than this (default 30 s). The default HttpClient follows no redirect: a 307 or 308 would send
        /// the secret or a refresh token again to wherever it points, so any 3xx is an HttpStatusException. A
        /// client passed as http should not follow redirects either.
        /// </summary>
        public static Task<Auth> LoginGuestAsync(string baseUrl, string deviceId, string secret,
            CancellationToken ct = default(CancellationToken), HttpClient http = null, TimeSpan? margin = null)
        {
            var body = new JObject { { "device_id", deviceId }, { "secret", secret } };
            return LoginAsync("/api/v1/auth/guest", baseUrl, body, ct, http, margin);
        }

        /// <summary>
        /// Creates a player with an email and a password (at least 8 characters) and logs in; Created is true.
        /// displayName and deviceId may be null (deviceId names the device to the server, as for device bans). An
        /// email already taken, or an invalid field, is a ServerException with code validation_failed and Fields
        /// naming the field. margin and http as for LoginGuestAsync.
        /// </summary>
        public static Task<Auth> RegisterAsync(string baseUrl, string email, string password, string displayName = null,
            string deviceId = null, CancellationToken ct = default(CancellationToken), HttpClient http = null, TimeSpan? margin = null)
        {
            var body = new JObject { { "email", email }, { "password", password } };
            // The server refuses an empty display name or device id: absent means none.
            if (!string.IsNullOrEmpty(displayName)) body["display_name"] = displayName;
            if (!string.IsNullOrEmpty(deviceId)) body["device_id"] = deviceId;
            return LoginAsync("/api/v1/auth/register", baseUrl, body, ct, http, margin);
        }

        /// <summary>
        /// Logs in with an email and a password. A wrong email or password is a ServerException with code
        /// unauthenticated (the server does not say which). deviceId may be null; margin and http as for
        /// LoginGuestAsync.
        /// </summary>
        public static Task<Auth> LoginEmailAsync(string baseUrl, string email, string password, string deviceId = null,
            CancellationToken ct = default(CancellationToken), HttpClient http = null, TimeSpan? margin = null)
        {
            var body = new JObject { { "email", email }, { "password", password } };
            if (!string.IsNullOrEmpty(deviceId)) body["device_id"] = deviceId;
            return LoginAsync("/api/v1/auth/login", baseUrl, body, ct, http, margin);
        }

        /// <summary>POSTs a login-type request (its answer is an AuthResult) and holds the tokens of the answer.</summary>
        static async Task<Auth> LoginAsync(string path, string baseUrl, JObject body, CancellationToken ct, HttpClient http, TimeSpan? margin)
        {
            if (http == null) http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { Timeout = RequestTimeout };
            var a = new Auth(http, baseUrl, margin ?? TimeSpan.FromSeconds(30));
            var sent = DateTime.UtcNow;
            var res = await a.CallAsync(path, null, body, ct).ConfigureAwait(false);
            a.PlayerId = (string)res.Item1["player_id"] ?? "";
            a.Created = (bool?)res.Item1["created"] ?? false;
            if (a.PlayerId == "") throw new TandemException("tandem: the login answer lacks the player id");
            lock (a.mu) a.Take(res.Item1, sent, res.Item2, true);
            return a;
        }

        /// <summary>A fresh realtime token (use as ClientOptions.Token). LoggedOutException when the login is over.</summary>
        public Task<string> RealtimeTokenAsync(CancellationToken ct) { return TokenAsync(true, ct); }

        /// <summary>A fresh access token (bearer of the player API).</summary>
        public Task<string> AccessTokenAsync(CancellationToken ct) { return TokenAsync(false, ct); }

        /// <summary>
        /// Gets new tokens now and returns the realtime URL of the answer (use as ClientOptions.Locate): the node
        /// holding the player's session while it is registered, otherwise a live one.
        /// </summary>
        public async Task<string> LocateAsync(CancellationToken ct)
        {
            Task call;
            lock (mu)
            {
                if (ended != null) throw ended;
                call = (inflight ?? StartCall(!Fresh(accessExp, accessLife))).Done;
            }
            await Wait(call, ct).ConfigureAwait(false);
            lock (mu)
            {
                if (ended != null) throw ended;
                if (realtimeUrl == "") throw new TandemException("tandem: the web server named no realtime URL");
                return realtimeUrl;
            }
        }

        /// <summary>
        /// Refreshes now with the refresh token (single-use, rotated), joining a refresh under way: two at once
        /// would present the same token twice, and the server takes that for a stolen copy.
        /// </summary>
        public async Task RefreshAsync(CancellationToken ct)
        {
            while (true)
            {
                Call call;
                lock (mu)
                {
                    if (ended != null) throw ended;
                    call = inflight ?? StartCall(true);
                }
                await Wait(call.Done, ct).ConfigureAwait(false);
                lock (mu)
                {
                    if (ended != null) throw ended;
                    if (call.Refreshes) return;
                }
            }
        }

        /// <summary>Ends the login session on the server and forgets the tokens.</summary>
        public async Task LogoutAsync(CancellationToken ct)
        {
            lock (mu)
                if (ended != null) return;
            try
            {
                // A fresh access token: a stale one would be refused and the session left open.
                var bearer = await AccessTokenAsync(ct).ConfigureAwait(false);
                await CallAsync("/api/v1/auth/logout", bearer, null, ct).ConfigureAwait(false);
            }
            catch (LoggedOutException) { }
            catch (ServerException e) when (e.Code == ErrorCodes.Unauthenticated) { }
            lock (mu)
                if (ended == null) End(new LoggedOutException(null));
        }

        async Task<string> TokenAsync(bool realtimeKind, CancellationToken ct)
        {
            while (true)
            {
                Call call;
                lock (mu)
                {
                    if (ended != null) throw ended;
                    call = inflight;
                    if (call == null)
                    {
                        if (realtimeKind ? Fresh(realtimeExp, realtimeLife) : Fresh(accessExp, accessLife))
                            return realtimeKind ? realtime : access;
                        call = StartCall(!realtimeKind || !Fresh(accessExp, accessLife));
                    }
                }
                await Wait(call.Done, ct).ConfigureAwait(false);
                lock (mu)
                {
                    if (ended != null) throw ended;
                    // What the call just got is as fresh as the server allows: no second look, which against
                    // very short lifetimes would ask forever. Only a refresh gets an access token.
                    if (realtimeKind && realtime != "") return realtime;
                    if (!realtimeKind && (call.Refreshes || Fresh(accessExp, accessLife))) return access;
                }
            }
        }

        bool Fresh(DateTime exp, TimeSpan life)
        {
            var m = margin < TimeSpan.FromTicks(life.Ticks / 2) ? margin : TimeSpan.FromTicks(life.Ticks / 2);
            return DateTime.UtcNow < exp - m;
        }

        static async Task Wait(Task call, CancellationToken ct)
        {
            var cancelled = new TaskCompletionSource<bool>();
            using (ct.Register(() => cancelled.TrySetCanceled()))
                await (await Task.WhenAny(call, cancelled.Task).ConfigureAwait(false)).ConfigureAwait(false);
        }

        /// <summary>
        /// Starts the request for new tokens (the caller holds mu). It runs apart from any caller's
        /// cancellation: a refresh uses the refresh token up, so an answer nobody reads would leave a used one.
        /// </summary>
        Call StartCall(bool doRefresh)
        {
            if (inflight != null) return inflight;
            var c = new Call { Refreshes = doRefresh };
            inflight = c;
            c.Done = Task.Run(async () =>
            {
                try
                {
                    if (doRefresh) await DoRefreshAsync().ConfigureAwait(false);
                    else await RenewRealtimeAsync(c).ConfigureAwait(false);
                }
                finally
                {
                    lock (mu)
                        if (inflight == c) inflight = null;
                }
            });
            return c;
        }

        async Task DoRefreshAsync()
        {
            string rt;
            lock (mu)
            {
                if (ended != null) throw ended;
                rt = refresh;
            }
            var sent = DateTime.UtcNow;
            Tuple<JObject, HttpResponseHeaders> res;
            try
            {
                res = await CallAsync("/api/v1/auth/refresh", null, new JObject { { "refresh_token", rt } }, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ServerException e) when (e.Code == ErrorCodes.Unauthenticated || e.Code == ErrorCodes.TokenExpired || e.Code == ErrorCodes.Banned)
            {
                var lo = new LoggedOutException(e);
                lock (mu) End(lo);
                throw lo;
            }
            lock (mu)
            {
                if (ended != null) throw ended;
                Take(res.Item1, sent, res.Item2, true);
            }
        }

        async Task RenewRealtimeAsync(Call call)
        {
            string bearer;
            lock (mu)
            {
                if (ended != null) throw ended;
                bearer = access;
            }
            var sent = DateTime.UtcNow;
            Tuple<JObject, HttpResponseHeaders> res;
            try
            {
                res = await CallAsync("/api/v1/players/" + Uri.EscapeDataString(PlayerId) + "/realtime-token", bearer, null, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ServerException e) when (e.Code == ErrorCodes.Banned)
            {
                var lo = new LoggedOutException(e);
                lock (mu) End(lo);
                throw lo;
            }
            catch (ServerException e) when (!e.Temporary)
            {
                // The access token is no longer valid by the server's clock: one refresh says for good.
                lock (mu) call.Refreshes = true;
                await DoRefreshAsync().ConfigureAwait(false);
                return;
            }
            lock (mu)
            {
                if (ended != null) throw ended;
                Take(res.Item1, sent, res.Item2, false);
            }
        }

        /// <summary>
        /// Records the tokens of an answer, their expiries moved to the local clock: the server's Date header
        /// says when it answered, so expires_at − (Date + 1 s), counted from when the request was sent, errs early
        /// whatever the device's clock says. The caller holds mu.
        /// </summary>
        void Take(JObject res, DateTime sent, HttpResponseHeaders hdr, bool all)
        {
            Func<string, DateTime> local = key =>
            {
                var s = (string)res[key];
                DateTimeOffset at;
                if (s == null || !DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at))
                    throw new TandemException("tandem: the answer lacks " + key);
                if (hdr.Date.HasValue) return sent + (at - (hdr.Date.Value + TimeSpan.FromSeconds(1)));
                return at.UtcDateTime;
            };
            var rt = (string)res["realtime_token"];
            if (string.IsNullOrEmpty(rt)) throw new TandemException("tandem: the answer lacks the realtime token");
            realtime = rt;
            realtimeExp = local("realtime_expires_at");
            realtimeLife = realtimeExp > sent ? realtimeExp - sent : TimeSpan.Zero;
            realtimeUrl = (string)res["realtime_url"] ?? "";
            if (!all) return;
            access = (string)res["access_token"] ?? "";
            refresh = (string)res["refresh_token"] ?? "";
            sessionId = (string)res["session_id"] ?? "";
            if (access == "" || refresh == "") throw new TandemException("tandem: the answer lacks a token");
            accessExp = local("access_expires_at");
            accessLife = accessExp > sent ? accessExp - sent : TimeSpan.Zero;
        }

        void End(Exception err)
        {
            ended = err;
            access = refresh = realtime = "";
        }

        /// <summary>POSTs body (JSON, unless null) with bearer (unless null); a problem+json answer throws ServerException.</summary>
        async Task<Tuple<JObject, HttpResponseHeaders>> CallAsync(string path, string bearer, JObject body, CancellationToken ct)
        {
            using (var req = new HttpRequestMessage(HttpMethod.Post, baseUrl + path))
            {
                if (body != null) req.Content = new StringContent(body.ToString(Newtonsoft.Json.Formatting.None), Encoding.UTF8, "application/json");
                req.Headers.Accept.ParseAdd("application/json, application/problem+json");
                if (bearer != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    cts.CancelAfter(RequestTimeout);
                    using (var resp = await http.SendAsync(req, cts.Token).ConfigureAwait(false))
                    {
                        var text = await resp.Content.ReadAsStringAsync().ConfigureAwait(false);
                        int status = (int)resp.StatusCode;
                        if (status < 200 || status > 299) throw AnswerError(resp, status, text);
                        JObject o = null;
                        if (text.Trim() != "") o = JsonCodec.Parse(text) as JObject;
                        return Tuple.Create(o ?? new JObject(), resp.Headers);
                    }
                }
            }
        }

        static Exception AnswerError(HttpResponseMessage resp, int status, string text)
        {
            if (status >= 300 && status <= 399) return new HttpStatusException(status); // a redirect, not followed
            var ctype = resp.Content.Headers.ContentType;
            if (ctype == null || ctype.MediaType != "application/problem+json") return new HttpStatusException(status);
            JObject doc;
            try { doc = JsonCodec.Parse(text) as JObject; }
            catch (Exception) { return new HttpStatusException(status); }
            uint code = doc != null && doc["code"] != null ? (uint)doc["code"] : 0;
            if (code == 0) return new HttpStatusException(status);
            var fields = new System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<string, string>>();
            var errs = doc["errors"] as JArray;
            if (errs != null)
                foreach (var e in errs)
                    fields.Add(new System.Collections.Generic.KeyValuePair<string, string>((string)e["field"] ?? "", (string)e["message"] ?? ""));
            var se = new ServerException(code, (string)doc["detail"] ?? "", (bool?)doc["temporary"] ?? false, fields);
            if (doc["retry_after"] != null) se.RetryAfter = TimeSpan.FromSeconds((long)doc["retry_after"]);
            var until = doc["until"];
            DateTimeOffset u;
            if (until != null && until.Type == JTokenType.String && DateTimeOffset.TryParse((string)until, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out u))
                se.Until = u;
            return se;
        }
    }
}
