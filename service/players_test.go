package service_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/postgres"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/sqlite"
	"github.com/tandemhq/tandem/token"
)

const deviceSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ" // 27 base64url characters

func guest(t *testing.T, f *fixture, device, address string) *service.AuthResult {
	t.Helper()
	res, err := f.svc.GuestLogin(context.Background(), service.GuestLogin{DeviceID: device, Secret: deviceSecret,
		Client: service.Client{Address: address, UserAgent: "test"}})
	if err != nil {
		t.Fatalf("guest login of %s: %v", device, err)
	}
	return res
}

func actorOf(res *service.AuthResult) *service.PlayerActor {
	return &service.PlayerActor{PlayerID: res.Player.ID, SessionID: res.SessionID}
}

// verifyToken checks a realtime token against the keys the web server publishes now.
func verifyToken(t *testing.T, f *fixture, tok string, at time.Time) (tandem.Claims, error) {
	t.Helper()
	keys, err := f.svc.SigningPublicKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return token.NewKeySet(keys).Verify(tok, at, tandem.AudienceRealtime)
}

func TestGuestLoginCreatesTheAccountOnceAndChecksTheSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		first := guest(t, f, "device-1", "10.1.0.1")
		if !first.Created || first.Player.ID == "" {
			t.Fatalf("first login: created=%v id=%q, want a new account", first.Created, first.Player.ID)
		}
		again := guest(t, f, "device-1", "10.1.0.1")
		if again.Created || again.Player.ID != first.Player.ID {
			t.Fatalf("second login: created=%v id=%q, want the account %q", again.Created, again.Player.ID, first.Player.ID)
		}
		_, err := f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-1", Secret: deviceSecret + "x", Client: service.Client{Address: "10.1.0.1"}})
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-2", Secret: "short"})
		wantCode(t, err, tandem.EValidation)

		claims, err := verifyToken(t, f, first.RealtimeToken.Token, f.clock.Now())
		if err != nil {
			t.Fatalf("realtime token of the login: %v", err)
		}
		if claims.Subject != first.Player.ID || claims.ExpiresAt-claims.IssuedAt > int64(tandem.MaxTokenLifetime/time.Second) {
			t.Fatalf("claims %+v: want sub %s and a lifetime of at most 10 minutes", claims, first.Player.ID)
		}
		p, err := f.svc.AuthenticatePlayer(ctx, first.AccessToken, service.Client{})
		if err != nil || p.PlayerID != first.Player.ID {
			t.Fatalf("AuthenticatePlayer = %+v, %v; want player %s", p, err, first.Player.ID)
		}
	})
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-r", "10.2.0.1")
		next, err := f.svc.Refresh(ctx, login.RefreshToken, service.Client{Address: "10.2.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == login.RefreshToken || next.AccessToken == login.AccessToken || next.SessionID != login.SessionID {
			t.Fatal("refresh did not rotate both tokens within the session")
		}
		if _, err := f.svc.AuthenticatePlayer(ctx, login.AccessToken, service.Client{}); tandem.ErrorCodeOf(err) != tandem.EUnauthenticated {
			t.Fatalf("the replaced access token: %v, want unauthenticated", err)
		}
		// Someone replays the first refresh token later: the whole family
		// ends, so the thief's copy and the owner's newer token are both dead.
		f.clock.Add(31 * time.Second)
		_, err = f.svc.Refresh(ctx, login.RefreshToken, service.Client{Address: "10.9.9.9"})
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.Refresh(ctx, next.RefreshToken, service.Client{Address: "10.2.0.1"})
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.AuthenticatePlayer(ctx, next.AccessToken, service.Client{})
		wantCode(t, err, tandem.EUnauthenticated)

		// Another session of the same player is untouched.
		other := guest(t, f, "device-r", "10.2.0.1")
		if _, err := f.svc.Refresh(ctx, other.RefreshToken, service.Client{Address: "10.2.0.1"}); err != nil {
			t.Fatalf("refresh of another session after the reuse: %v", err)
		}
	})
}

func TestRefreshRetriedWithinSecondsGetsANewPairAndTheMissedPairBecomesUsed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-lost", "10.2.1.1")
		if _, err := f.svc.Refresh(ctx, login.RefreshToken, service.Client{}); err != nil { // its answer never arrives
			t.Fatal(err)
		}
		f.clock.Add(5 * time.Second)
		retry, err := f.svc.Refresh(ctx, login.RefreshToken, service.Client{})
		if err != nil {
			t.Fatalf("a retry seconds after the refresh: %v", err)
		}
		// Honoured once: a second replay within the leeway revokes.
		f.clock.Add(5 * time.Second)
		_, err = f.svc.Refresh(ctx, login.RefreshToken, service.Client{})
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.AuthenticatePlayer(ctx, retry.AccessToken, service.Client{})
		wantCode(t, err, tandem.EUnauthenticated)

		// Again with a fresh session: the retried pair refreshes, and the
		// missed pair revokes the session when it turns up.
		login = guest(t, f, "device-lost", "10.2.1.1")
		missed, err := f.svc.Refresh(ctx, login.RefreshToken, service.Client{})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(5 * time.Second)
		if retry, err = f.svc.Refresh(ctx, login.RefreshToken, service.Client{}); err != nil {
			t.Fatal(err)
		}
		latest, err := f.svc.Refresh(ctx, retry.RefreshToken, service.Client{})
		if err != nil {
			t.Fatalf("the retried pair refreshes: %v", err)
		}
		if _, err := f.svc.AuthenticatePlayer(ctx, latest.AccessToken, service.Client{}); err != nil {
			t.Fatal(err)
		}
		// Whoever holds the pair the client missed revokes the session.
		f.clock.Add(time.Minute)
		_, err = f.svc.Refresh(ctx, missed.RefreshToken, service.Client{})
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.AuthenticatePlayer(ctx, latest.AccessToken, service.Client{})
		wantCode(t, err, tandem.EUnauthenticated)
	})
}

func TestAccessTokenExpiresAndRefreshTokenOutlivesIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, func(c *service.Config) { c.Players.AccessTTL = time.Minute })
		ctx := context.Background()
		login := guest(t, f, "device-e", "10.3.0.1")
		f.clock.Add(time.Minute)
		_, err := f.svc.AuthenticatePlayer(ctx, login.AccessToken, service.Client{})
		wantCode(t, err, tandem.ETokenExpired)
		next, err := f.svc.Refresh(ctx, login.RefreshToken, service.Client{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AuthenticatePlayer(ctx, next.AccessToken, service.Client{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBannedPlayerIsRefusedAtLoginRefreshAndTokenIssue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-b", "10.4.0.1")
		other := guest(t, f, "device-b", "10.4.0.1") // a second session, kept by the player
		until := f.clock.Now().Add(24 * time.Hour).Truncate(time.Second)
		ban, err := f.svc.BanPlayer(ctx, f.cli, service.BanRequest{PlayerID: login.Player.ID, Scope: tandem.BanAccount,
			Reason: "cheating", EndsAt: until})
		if err != nil {
			t.Fatal(err)
		}
		wantBanned := func(t *testing.T, what string, err error) {
			t.Helper()
			var te *tandem.Error
			if !asError(err, &te) || te.Code != tandem.EBanned || !te.Until.Equal(until) || !strings.Contains(te.Message, "cheating") {
				t.Fatalf("%s: %v, want banned until %s saying why", what, err, until)
			}
		}
		_, err = f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-b", Secret: deviceSecret})
		wantBanned(t, "guest login", err)
		// Sessions stay, but every use of them is refused saying until when.
		_, err = f.svc.Refresh(ctx, other.RefreshToken, service.Client{})
		wantBanned(t, "refresh", err)
		_, err = f.svc.AuthenticatePlayer(ctx, login.AccessToken, service.Client{})
		wantBanned(t, "player API call", err)
		_, err = f.svc.IssueRealtimeToken(ctx, actorOf(other), other.Player.ID)
		wantBanned(t, "realtime token", err)

		// A ban that starts later leaves sessions alone until it starts;
		// then refresh and token issue are refused too.
		later := guest(t, f, "device-c", "10.4.0.2")
		start := f.clock.Now().Add(time.Hour)
		if _, err := f.svc.BanPlayer(ctx, f.cli, service.BanRequest{PlayerID: later.Player.ID, Scope: tandem.BanAccount,
			Reason: "abuse", StartsAt: start}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.IssueRealtimeToken(ctx, actorOf(later), later.Player.ID); err != nil {
			t.Fatalf("token before the ban starts: %v", err)
		}
		f.clock.Add(time.Hour)
		_, err = f.svc.Refresh(ctx, later.RefreshToken, service.Client{})
		wantCode(t, err, tandem.EBanned)
		_, err = f.svc.IssueRealtimeToken(ctx, actorOf(later), later.Player.ID)
		wantCode(t, err, tandem.EBanned)

		// Lifted: the first player logs in again, and the kept session
		// refreshes.
		if _, err := f.svc.LiftBan(ctx, f.cli, ban.PlayerID, ban.ID); err != nil {
			t.Fatal(err)
		}
		guest(t, f, "device-b", "10.4.0.1")
		if _, err := f.svc.Refresh(ctx, other.RefreshToken, service.Client{}); err != nil {
			t.Fatalf("refresh after the ban was lifted: %v", err)
		}
	})
}

func TestDeviceBanKeepsTheDeviceOutWhateverTheAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-d", "10.5.0.1")
		if _, err := f.svc.LinkEmail(ctx, actorOf(login), login.Player.ID, "d@example.com", "password-d"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.BanPlayer(ctx, f.cli, service.BanRequest{PlayerID: login.Player.ID, Scope: tandem.BanDevice,
			DeviceID: "device-d", Reason: "shared cheat device"}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-d", Secret: deviceSecret})
		wantCode(t, err, tandem.EBanned)
		// The account from elsewhere is not banned; from the device it is.
		if _, err := f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: "D@example.com", Password: "password-d"}); err != nil {
			t.Fatalf("password login without the device: %v", err)
		}
		_, err = f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: "d@example.com", Password: "password-d", DeviceID: "device-d"})
		wantCode(t, err, tandem.EBanned)
		// Deleting the account does not free the device.
		fresh, err := f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: "d@example.com", Password: "password-d"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteAccount(ctx, actorOf(fresh), fresh.Player.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-d", Secret: deviceSecret})
		wantCode(t, err, tandem.EBanned)
	})
}

func TestRealtimeTokenCarriesMatchmakingPropertiesAdminsSet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-mm", "10.6.0.1")
		mm := map[string]string{"skill": "1500", "region": "eu"}
		if _, err := f.svc.EditPlayer(ctx, f.cli, login.Player.ID, service.PlayerEdit{MM: mm}); err != nil {
			t.Fatal(err)
		}
		rt, err := f.svc.IssueRealtimeToken(ctx, actorOf(login), login.Player.ID)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := verifyToken(t, f, rt.Token, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if claims.MM["skill"] != "1500" || claims.MM["region"] != "eu" {
			t.Fatalf("mm claim %v, want %v", claims.MM, mm)
		}
		recs := auditRecords(t, f, tandem.AuditFilter{Action: "player.update"})
		if len(recs) != 1 || !strings.Contains(recs[0].After, `"skill":"1500"`) || recs[0].TargetID != login.Player.ID {
			t.Fatalf("audit of the change: %+v", recs)
		}
		_, err = f.svc.EditPlayer(ctx, f.cli, login.Player.ID, service.PlayerEdit{MM: map[string]string{"Bad Key": "x"}})
		wantCode(t, err, tandem.EValidation)
	})
}

func TestPlayerAdministrationNeedsItsPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		login := guest(t, f, "device-p", "10.7.0.1")
		f.createAdmin(t, "watcher", "a long enough password", tandem.RoleViewer)
		viewer := f.login(t, "watcher", "a long enough password", "10.7.0.9", "").Actor
		if _, err := f.svc.PlayerDetail(ctx, viewer, login.Player.ID); err != nil {
			t.Fatalf("viewer reads a player: %v", err)
		}
		_, err := f.svc.BanPlayer(ctx, viewer, service.BanRequest{PlayerID: login.Player.ID, Scope: tandem.BanAccount, Reason: "x"})
		wantCode(t, err, tandem.EPermission)
		_, err = f.svc.EditPlayer(ctx, viewer, login.Player.ID, service.PlayerEdit{MM: map[string]string{"skill": "1"}})
		wantCode(t, err, tandem.EPermission)
		_, err = f.svc.LogoutPlayerEverywhere(ctx, viewer, login.Player.ID)
		wantCode(t, err, tandem.EPermission)
		if recs := auditRecords(t, f, tandem.AuditFilter{Result: tandem.AuditDenied, Action: "player.ban"}); len(recs) != 1 {
			t.Fatalf("%d denied ban records, want 1", len(recs))
		}
		n, err := f.svc.LogoutPlayerEverywhere(ctx, f.cli, login.Player.ID)
		if err != nil || n != 1 {
			t.Fatalf("logout everywhere = %d, %v; want 1 session ended", n, err)
		}
	})
}

func TestPlayerLoginLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, func(c *service.Config) {
			c.Players.LimitPerAddress, c.Players.LimitPerDevice, c.Players.LimitPerAccount = 5, 3, 2
		})
		ctx := context.Background()
		login := func(device, secret, address string) error {
			_, err := f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: device, Secret: secret, Client: service.Client{Address: address}})
			return err
		}
		// Every call counts against the address.
		for _, d := range []string{"device-a", "device-b", "device-c", "device-d", "device-e"} {
			guest(t, f, d, "10.8.0.1")
		}
		wantLimited(t, login("device-f", deviceSecret, "10.8.0.1"))
		guest(t, f, "device-f", "10.8.0.2")

		// Only wrong secrets count against a device, and only from the
		// address they came from: its owner logs in as often as they like
		// and from anywhere else, a guesser three times.
		for range 4 {
			guest(t, f, "device-a", "10.8.1.1")
		}
		for range 3 {
			wantCode(t, login("device-a", deviceSecret+"x", "10.8.2.1"), tandem.EUnauthenticated)
		}
		wantLimited(t, login("device-a", deviceSecret, "10.8.2.1"))
		guest(t, f, "device-a", "10.8.3.1")
		// Only failures count against an account, and not at all for a
		// device the account logged in from before.
		if _, err := f.svc.Register(ctx, service.Registration{Email: "limits@example.com", Password: "limits password",
			DeviceID: "phone-1", Client: service.Client{Address: "10.8.4.1"}}); err != nil {
			t.Fatal(err)
		}
		pw := func(password, device, address string) error {
			_, err := f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: "limits@example.com", Password: password,
				DeviceID: device, Client: service.Client{Address: address}})
			return err
		}
		for range 3 {
			if err := pw("limits password", "", "10.8.4.1"); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2 {
			wantCode(t, pw("wrong password", "", fmt.Sprintf("10.8.5.%d", i)), tandem.EUnauthenticated)
		}
		wantLimited(t, pw("limits password", "", "10.8.6.1"))
		wantLimited(t, pw("limits password", "phone-2", "10.8.6.2"))
		if err := pw("limits password", "phone-1", "10.8.6.3"); err != nil {
			t.Fatalf("login from the account's own device while guessers are limited: %v", err)
		}

		// The next window starts afresh.
		f.clock.Add(time.Minute)
		if err := pw("limits password", "", "10.8.4.1"); err != nil {
			t.Fatal(err)
		}
		guest(t, f, "device-a", "10.8.0.1")
	})
}

func wantLimited(t *testing.T, err error) {
	t.Helper()
	var te *tandem.Error
	if !asError(err, &te) || te.Code != tandem.ERateLimited || te.RetryAfter <= 0 || te.RetryAfter > time.Minute {
		t.Fatalf("%v: want rate_limited with a retry-after within the window", err)
	}
}

func TestSigningKeyRotationKeepsTheOldKeyValidDuringTheRollover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		// Tokens live 1m, so the rollover is 2m (1m + 30s skew + 30s in
		// which another replica may still sign with the old key); a new key
		// is published 2m before it signs.
		f := newFixture(t, store, raw, func(c *service.Config) {
			c.Players.RealtimeTokenTTL, c.Players.KeyRotation = time.Minute, 5*time.Minute
		})
		ctx := context.Background()
		published := func() map[string]ed25519.PublicKey {
			t.Helper()
			keys, err := f.svc.SigningPublicKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return keys
		}
		first := guest(t, f, "device-k", "10.9.0.1") // makes the first key, which signs at once
		player := actorOf(first)
		k1 := kidOf(t, first.RealtimeToken.Token)

		// 3m in, the next key is published but does not sign yet.
		f.clock.Add(3 * time.Minute)
		if err := f.svc.RotateSigningKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if keys := published(); len(keys) != 2 {
			t.Fatalf("%d keys published before the switch, want 2", len(keys))
		}
		old, err := f.svc.IssueRealtimeToken(ctx, player, player.PlayerID)
		if err != nil {
			t.Fatal(err)
		}
		issued := f.clock.Now()
		if kidOf(t, old.Token) != k1 {
			t.Fatal("the new key signed before it was published for long enough")
		}

		// 5m in, the new key signs; the old one is retired and still published.
		f.clock.Add(2 * time.Minute)
		fresh, err := f.svc.IssueRealtimeToken(ctx, player, player.PlayerID)
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, fresh.Token) == k1 {
			t.Fatal("tokens issued after the switch are still signed with the old key")
		}
		if err := f.svc.RotateSigningKeys(ctx); err != nil {
			t.Fatal(err)
		}
		during := published()
		if len(during) != 2 {
			t.Fatalf("%d keys published during the rollover, want 2", len(during))
		}
		if _, err := token.NewKeySet(during).Verify(old.Token, issued.Add(time.Second), tandem.AudienceRealtime); err != nil {
			t.Fatalf("a token of the old key during the rollover: %v", err)
		}

		// After the rollover the old key is gone: its tokens fail even at a
		// time they would otherwise be valid.
		f.clock.Add(3 * time.Minute)
		if err := f.svc.RotateSigningKeys(ctx); err != nil {
			t.Fatal(err)
		}
		after := published()
		if _, ok := after[k1]; ok || len(after) != 2 {
			t.Fatalf("after the rollover %d keys are published, the first among them: %v; want 2 without it", len(after), ok)
		}
		_, err = token.NewKeySet(after).Verify(old.Token, issued.Add(time.Second), tandem.AudienceRealtime)
		wantCode(t, err, tandem.EUnauthenticated)
		if recs := auditRecords(t, f, tandem.AuditFilter{Action: "signing_key.create"}); len(recs) != 3 {
			t.Fatalf("%d key creations audited, want 3", len(recs))
		}
		if recs := auditRecords(t, f, tandem.AuditFilter{Action: "signing_key.retire"}); len(recs) != 1 {
			t.Fatalf("%d key retirements audited, want 1", len(recs))
		}
	})
}

func TestSigningKeyRowWrittenIntoTheDatabaseIsNotPublished(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		guest(t, f, "device-f", "10.11.0.1")
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		forged := &tandem.SigningKey{ID: token.KeyID(pub), PublicKey: pub, PrivateKeyEnc: []byte{1, 2, 3}, CreatedAt: f.clock.Now()}
		if err := store.Update(ctx, func(tx tandem.Tx) error { return tx.CreateSigningKey(ctx, forged) }); err != nil {
			t.Fatal(err)
		}
		keys, err := f.svc.SigningPublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := keys[forged.ID]; ok || len(keys) != 1 {
			t.Fatalf("published %d keys, the forged one among them: %v", len(keys), ok)
		}
	})
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("token header %s: %v", b, err)
	}
	return h.Kid
}

func TestSigningKeysAreStoredEncrypted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		guest(t, f, "device-s", "10.10.0.1")
		// A service with another key encryption key cannot sign with them.
		other, err := service.New(service.Config{Store: store, Now: f.clock.Now,
			Passwords: service.PasswordConfig{MemoryKiB: 64, Iterations: 1},
			Players:   service.PlayerConfig{KeyEncryptionKey: []byte(strings.Repeat("k", 32))}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.GuestLogin(ctx, service.GuestLogin{DeviceID: "device-s", Secret: deviceSecret})
		if err == nil || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("login signed with a key sealed under another KEK: %v", err)
		}
		// The server's start checks this, so a wrong KEK stops it there.
		if err := other.CheckSigningKey(ctx); err == nil || !strings.Contains(err.Error(), "--key-encryption-key") {
			t.Fatalf("CheckSigningKey under another KEK: %v", err)
		}
		if err := f.svc.CheckSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		if keys, err := other.SigningPublicKeys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("a server with another KEK publishes %d keys (%v), want none", len(keys), err)
		}
	})
}

// textFinder returns the "table.column" of every text column holding s.
type textFinder func(t *testing.T, s string) []string

func TestAccountDeletionLeavesNoPersonalData(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(t *testing.T) (tandem.Store, textFinder)
	}{{"sqlite", openSQLiteFinder}, {"postgres", openPostgresFinder}} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			store, find := db.open(t)
			f := newFixture(t, store, func(t *testing.T, q string, args ...any) { t.Fatal("no raw access") }, nil)
			ctx := context.Background()
			const (
				email, name, renamed, device = "zebulon.scrub@example.com", "Zebulon Scrubbable", "Zebulon Renamed", "device-scrub-4711"
				addr1, addr2, addr3, agent   = "198.51.100.77", "203.0.113.99", "192.0.2.55", "ScrubAgent/1.0"
				avatar                       = "https://cdn.example.com/zebulon-avatar.png"
			)
			login, err := f.svc.GuestLogin(ctx, service.GuestLogin{DeviceID: device, Secret: deviceSecret, DisplayName: name,
				Client: service.Client{Address: addr1, UserAgent: agent}})
			if err != nil {
				t.Fatal(err)
			}
			me := actorOf(login)
			if _, err := f.svc.LinkEmail(ctx, me, me.PlayerID, email, "a player password"); err != nil {
				t.Fatal(err)
			}
			avatarURL, locale := avatar, "pt-BR"
			if _, err := f.svc.UpdateProfile(ctx, me, me.PlayerID, service.ProfileUpdate{AvatarURL: &avatarURL, Locale: &locale}); err != nil {
				t.Fatal(err)
			}
			second, err := f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: email, Password: "a player password", DeviceID: device,
				Client: service.Client{Address: addr2, UserAgent: agent}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Refresh(ctx, second.RefreshToken, service.Client{Address: addr3, UserAgent: agent}); err != nil {
				t.Fatal(err)
			}
			// A wrong password and a refused device leave counters behind.
			_, _ = f.svc.PasswordLogin(ctx, service.PasswordLogin{Email: email, Password: "wrong password", Client: service.Client{Address: addr3}})
			nm := renamed
			if _, err := f.svc.EditPlayer(ctx, f.cli, me.PlayerID, service.PlayerEdit{DisplayName: &nm, MM: map[string]string{"region": "eu"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.AddPlayerNote(ctx, f.cli, me.PlayerID, "called in from "+addr1+" as "+name); err != nil {
				t.Fatal(err)
			}
			ban, err := f.svc.BanPlayer(ctx, f.cli, service.BanRequest{PlayerID: me.PlayerID, Scope: tandem.BanDevice, DeviceID: device,
				Reason: "spam", EndsAt: f.clock.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.LiftBan(ctx, f.cli, ban.PlayerID, ban.ID); err != nil {
				t.Fatal(err)
			}
			third := guest(t, f, device, addr1)

			needles := []string{email, "Zebulon", device, addr1, addr2, addr3, agent, "zebulon-avatar"}
			if got := find(t, "Zebulon"); len(got) == 0 {
				t.Fatal("the finder sees no display name before the deletion: it is not looking")
			}
			if err := f.svc.DeleteAccount(ctx, actorOf(third), me.PlayerID); err != nil {
				t.Fatal(err)
			}
			for _, s := range needles {
				if where := find(t, s); len(where) > 0 {
					t.Errorf("after the deletion %q is still in %v", s, where)
				}
			}
			d, err := f.svc.PlayerDetail(ctx, f.cli, me.PlayerID)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Player.Deleted() || len(d.Devices)+len(d.Logins)+len(d.Sessions)+len(d.Notes) != 0 || len(d.Bans) != 1 {
				t.Fatalf("tombstone %+v: want deleted, no devices, logins, sessions or notes, the ban kept", d)
			}
			if rep, err := service.VerifyAudit(ctx, store, f.key.Public().(ed25519.PublicKey), 0, 0); err != nil || !rep.OK() {
				t.Fatalf("audit after the deletion: %+v, %v", rep, err)
			}
		})
	}
}

func openSQLiteFinder(t *testing.T) (tandem.Store, textFinder) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	find := func(t *testing.T, s string) []string {
		t.Helper()
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		cols := queryPairs(t, db, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND upper(p.type) = 'TEXT' ORDER BY 1, 2`)
		var where []string
		for _, c := range cols {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE instr(lower("%s"), lower(?)) > 0`, c[0], c[1])
			if err := db.QueryRow(q, s).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if n > 0 {
				where = append(where, c[0]+"."+c[1])
			}
		}
		return where
	}
	return st, find
}

func queryPairs(t *testing.T, db *sql.DB, q string) [][2]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{a, b})
	}
	if len(out) == 0 {
		t.Fatal("the schema lists no text columns")
	}
	return out
}

func openPostgresFinder(t *testing.T) (tandem.Store, textFinder) {
	url := pgtest.URL(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	find := func(t *testing.T, s string) []string {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
			ORDER BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		var cols [][2]string
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, [2]string{a, b})
		}
		rows.Close()
		if len(cols) == 0 {
			t.Fatal("the schema lists no text columns")
		}
		var where []string
		for _, c := range cols {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE strpos(lower(%s::text), lower($1)) > 0`,
				pgx.Identifier{c[0]}.Sanitize(), pgx.Identifier{c[1]}.Sanitize())
			if err := conn.QueryRow(ctx, q, s).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if n > 0 {
				where = append(where, c[0]+"."+c[1])
			}
		}
		return where
	}
	return st, find
}
