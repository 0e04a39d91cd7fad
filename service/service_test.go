package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

func TestOwnerEnrolsMFAThenEveryLoginIsChallengedAndACodeWorksOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		secret, recovery := f.enrol(t, "owner", ownerPassword)
		if len(recovery) != 10 {
			t.Fatalf("%d recovery codes, want 10", len(recovery))
		}

		f.clock.Add(30 * time.Second)
		res := f.login(t, "owner", ownerPassword, "10.0.0.1", "")
		if got := res.Actor.MFAOutstanding(); got != service.MFAChallenge {
			t.Fatalf("login after enrolment asks for %q, want challenge", got)
		}
		_, err := f.svc.Admins(ctx, res.Actor)
		wantCode(t, err, tandem.EMFARequired)

		code := f.code(t, secret)
		if err := f.svc.CompleteMFA(ctx, res.Actor, code); err != nil {
			t.Fatalf("first use of a code: %v", err)
		}
		if _, err := f.svc.Admins(ctx, res.Actor); err != nil {
			t.Fatalf("after MFA: %v", err)
		}

		// The same code, in another session within its 30 seconds: refused.
		again := f.login(t, "owner", ownerPassword, "10.0.0.1", "")
		wantCode(t, f.svc.CompleteMFA(ctx, again.Actor, code), tandem.EValidation)

		// A recovery code works once, too.
		wantCode(t, f.svc.CompleteMFA(ctx, again.Actor, strings.ToUpper(recovery[3])), 0)
		third := f.login(t, "owner", ownerPassword, "10.0.0.1", "")
		wantCode(t, f.svc.CompleteMFA(ctx, third.Actor, recovery[3]), tandem.EValidation)

		// The next time step's code works.
		f.clock.Add(30 * time.Second)
		wantCode(t, f.svc.CompleteMFA(ctx, third.Actor, f.code(t, secret)), 0)
	})
}

func TestAttackerCannotLockTheOwnerOutWithFailedLogins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, func(c *service.Config) {
			// The address limit bites first, so the owner's browser is seen
			// to pass both.
			c.LoginFailuresPerAddress = 3
			c.LoginFailuresPerAccount = 5
		})
		// The owner has logged in from their browser before.
		device := f.login(t, "owner", ownerPassword, "192.0.2.10", "").Device

		// The attacker guesses from one address until it is stopped, then
		// from many addresses until the account is stopped for new browsers.
		var err error
		for range 10 {
			_, err = f.svc.Login(ctx, service.LoginRequest{Name: "owner", Password: "wrong guess 123", Address: "198.51.100.1"})
		}
		wantCode(t, err, tandem.ERateLimited)
		for i := range 10 {
			_, err = f.svc.Login(ctx, service.LoginRequest{Name: "owner", Password: "wrong guess 123", Address: fmt.Sprintf("203.0.113.%d", i)})
		}
		wantCode(t, err, tandem.ERateLimited)
		// Even the right password is refused from a new browser now, with
		// the time to wait…
		_, err = f.svc.Login(ctx, service.LoginRequest{Name: "owner", Password: ownerPassword, Address: "203.0.113.200"})
		wantCode(t, err, tandem.ERateLimited)
		var e *tandem.Error
		if !asError(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > 15*time.Minute {
			t.Errorf("retry after %v, want within the 15-minute window", e.RetryAfter)
		}

		// …but the owner's own browser logs in, from any address, even the
		// attacker's (a shared NAT).
		for _, addr := range []string{"192.0.2.99", "198.51.100.1"} {
			if res := f.login(t, "owner", ownerPassword, addr, device); res.Session == nil {
				t.Fatal("no session")
			}
		}
		failed := auditRecords(t, f, tandem.AuditFilter{Action: "session.login", Result: tandem.AuditFailed, Limit: 1000})
		if len(failed) < 6 {
			t.Errorf("%d failed logins audited, want every refused attempt", len(failed))
		}
	})
}

func TestDeniedActionIsAuditedAndARemovedPermissionCountsOnTheNextRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		role, err := f.svc.CreateRole(ctx, f.cli, service.RoleInput{Name: "auditor", Permissions: []tandem.Permission{tandem.PermAuditRead}})
		if err != nil {
			t.Fatal(err)
		}
		f.roles["auditor"] = role.ID
		f.createAdmin(t, "<img src=x onerror=alert(1)>", "a long enough password", "auditor")
		res := f.login(t, "<img src=x onerror=alert(1)>", "a long enough password", "10.0.0.2", "")

		actor, err := f.svc.Authenticate(ctx, res.Token, "10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AuditLog(ctx, actor, tandem.AuditFilter{}); err != nil {
			t.Fatalf("auditor reads the audit log: %v", err)
		}
		_, err = f.svc.Admins(ctx, actor)
		wantCode(t, err, tandem.EPermission)

		denied := auditRecords(t, f, tandem.AuditFilter{Result: tandem.AuditDenied})
		if len(denied) != 1 || denied[0].Action != "admin.list" || denied[0].ActorName != "<img src=x onerror=alert(1)>" || denied[0].Address != "10.0.0.2" {
			t.Fatalf("denied records: %+v", denied)
		}

		if _, err := f.svc.UpdateRole(ctx, f.cli, role.ID, service.RoleInput{Name: "auditor"}); err != nil {
			t.Fatal(err)
		}
		actor, err = f.svc.Authenticate(ctx, res.Token, "10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AuditLog(ctx, actor, tandem.AuditFilter{})
		wantCode(t, err, tandem.EPermission)
	})
}

func TestDisablingAnAdminOrChangingAPasswordEndsSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		f.createAdmin(t, "viewer", "viewer password 1", tandem.RoleViewer)
		v1 := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")
		v2 := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")

		actor, err := f.svc.Authenticate(ctx, v1.Token, "10.0.0.3")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.ChangePassword(ctx, actor, "viewer password 1", "viewer password 2"); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{v1.Token, v2.Token} {
			_, err = f.svc.Authenticate(ctx, tok, "10.0.0.3")
			wantCode(t, err, tandem.EUnauthenticated)
		}
		v1 = f.login(t, "viewer", "viewer password 2", "10.0.0.3", "")

		disabled := true
		admins, err := f.svc.Admins(ctx, f.cli)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		for _, a := range admins {
			if a.Name == "viewer" {
				id = a.ID
			}
		}
		if _, err := f.svc.UpdateAdmin(ctx, f.cli, id, service.AdminUpdate{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Authenticate(ctx, v1.Token, "10.0.0.3")
		wantCode(t, err, tandem.EUnauthenticated)
		_, err = f.svc.Login(ctx, service.LoginRequest{Name: "viewer", Password: "viewer password 2", Address: "10.0.0.3"})
		wantCode(t, err, tandem.EUnauthenticated)
	})
}

func TestSessionsExpireWhenIdleAndAtTheirAbsoluteEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, func(c *service.Config) {
			c.SessionIdle = 10 * time.Minute
			c.SessionLifetime = time.Hour
		})
		f.createAdmin(t, "viewer", "viewer password 1", tandem.RoleViewer)
		idle := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")
		busy := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")
		for range 6 {
			f.clock.Add(9 * time.Minute)
			if _, err := f.svc.Authenticate(ctx, busy.Token, "10.0.0.3"); err != nil {
				t.Fatalf("a session used every 9 minutes ended after %v: %v", f.clock.Now().Sub(busy.Session.CreatedAt), err)
			}
		}
		_, err := f.svc.Authenticate(ctx, idle.Token, "10.0.0.3")
		wantCode(t, err, tandem.EUnauthenticated)
		f.clock.Add(9 * time.Minute) // 63 minutes after login
		_, err = f.svc.Authenticate(ctx, busy.Token, "10.0.0.3")
		wantCode(t, err, tandem.EUnauthenticated)
	})
}

func TestSensitiveChangesNeedARecentPasswordConfirmation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, func(c *service.Config) { c.ReauthWindow = 5 * time.Minute })
		secret, _ := f.enrol(t, "owner", ownerPassword)
		f.clock.Add(time.Minute)
		res := f.login(t, "owner", ownerPassword, "10.0.0.1", "")
		if err := f.svc.CompleteMFA(ctx, res.Actor, f.code(t, secret)); err != nil {
			t.Fatal(err)
		}
		in := service.RoleInput{Name: "support-lead", Permissions: []tandem.Permission{tandem.PermPlayersRead}}
		if _, err := f.svc.CreateRole(ctx, res.Actor, in); err != nil {
			t.Fatalf("right after login: %v", err)
		}
		f.clock.Add(6 * time.Minute)
		actor, err := f.svc.Authenticate(ctx, res.Token, "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		in.Name = "support-lead-2"
		_, err = f.svc.CreateRole(ctx, actor, in)
		wantCode(t, err, tandem.EReauthRequired)
		wantCode(t, f.svc.Reauthenticate(ctx, actor, "wrong password!!", f.code(t, secret)), tandem.EValidation)
		if err := f.svc.Reauthenticate(ctx, actor, ownerPassword, f.code(t, secret)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateRole(ctx, actor, in); err != nil {
			t.Fatalf("after re-authentication: %v", err)
		}
	})
}

func TestValidationNamesEveryInvalidFieldAndIsAuditedAsFailed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		_, err := f.svc.CreateAdmin(ctx, f.cli, service.NewAdmin{Name: " bad\x00", Password: "short"})
		var e *tandem.Error
		if !asError(err, &e) || e.Code != tandem.EValidation {
			t.Fatalf("got %v, want a validation error", err)
		}
		var fields []string
		for _, fe := range e.Fields {
			fields = append(fields, fe.Field)
		}
		if diff := cmp.Diff([]string{"name", "password", "role_id"}, fields); diff != "" {
			t.Errorf("invalid fields (-want +got):\n%s", diff)
		}
		recs := auditRecords(t, f, tandem.AuditFilter{Action: "admin.create", Result: tandem.AuditFailed})
		if len(recs) != 1 || !strings.HasPrefix(recs[0].Error, "validation_failed") {
			t.Fatalf("failed records: %+v", recs)
		}
		_, err = f.svc.CreateAdmin(ctx, f.cli, service.NewAdmin{Name: "owner", Password: "long enough password", RoleID: f.roles["viewer"]})
		wantCode(t, err, tandem.EValidation)
	})
}

func TestTheLastOwnerCannotBeDisabledOrDemoted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		admins, err := f.svc.Admins(ctx, f.cli)
		if err != nil {
			t.Fatal(err)
		}
		owner := admins[0]
		disabled := true
		_, err = f.svc.UpdateAdmin(ctx, f.cli, owner.ID, service.AdminUpdate{Disabled: &disabled})
		wantCode(t, err, tandem.EConflict)
		viewer := f.roles["viewer"]
		_, err = f.svc.UpdateAdmin(ctx, f.cli, owner.ID, service.AdminUpdate{RoleID: &viewer})
		wantCode(t, err, tandem.EConflict)
	})
}

func asError(err error, target **tandem.Error) bool { return errors.As(err, target) }

func TestSweepRemovesExpiredSessionsAndOldCounters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, func(c *service.Config) { c.SessionIdle = 10 * time.Minute })
		f.createAdmin(t, "viewer", "viewer password 1", tandem.RoleViewer)
		res := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")
		_, err := f.svc.Login(ctx, service.LoginRequest{Name: "viewer", Password: "wrong password 1", Address: "10.0.0.4"})
		wantCode(t, err, tandem.EUnauthenticated)

		f.clock.Add(time.Hour)
		if err := f.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		err = store.View(ctx, func(tx tandem.Tx) error {
			if _, err := tx.AdminSession(ctx, res.Session.TokenHash); tandem.ErrorCodeOf(err) != tandem.ENotFound {
				t.Errorf("idle session after the sweep: %v, want not_found", err)
			}
			n, err := tx.RateLimitCount(ctx, "login:addr:10.0.0.4", 15*time.Minute, f.clock.Now().Add(-time.Hour))
			if err != nil {
				return err
			}
			if n != 0 {
				t.Errorf("the failed login's counter survived the sweep: %d", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestNobodyGrantsOrTakesOverPermissionsTheyDoNotHold(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		// A role manager and an admin manager, neither an owner, each with
		// MFA done and a fresh password confirmation.
		for name, perms := range map[string][]tandem.Permission{
			"role-manager":  {tandem.PermRolesManage, tandem.PermAuditRead},
			"admin-manager": {tandem.PermAdminsManage},
		} {
			r, err := f.svc.CreateRole(ctx, f.cli, service.RoleInput{Name: name, Permissions: perms})
			if err != nil {
				t.Fatal(err)
			}
			f.roles[name] = r.ID
			f.createAdmin(t, name, "a long enough password", name)
		}
		roles, admins := f.mfaSession(t, "role-manager"), f.mfaSession(t, "admin-manager")

		_, err := f.svc.CreateRole(ctx, roles, service.RoleInput{Name: "escalate", Permissions: []tandem.Permission{tandem.PermAdminsManage}})
		wantCode(t, err, tandem.EPermission)
		_, err = f.svc.UpdateRole(ctx, roles, f.roles["role-manager"], service.RoleInput{Name: "role-manager",
			Permissions: []tandem.Permission{tandem.PermRolesManage, tandem.PermAuditRead, tandem.PermLedgerApprove}})
		wantCode(t, err, tandem.EPermission)
		if _, err := f.svc.CreateRole(ctx, roles, service.RoleInput{Name: "readers", Permissions: []tandem.Permission{tandem.PermAuditRead}}); err != nil {
			t.Fatalf("granting a permission one holds: %v", err)
		}

		_, err = f.svc.CreateAdmin(ctx, admins, service.NewAdmin{Name: "new owner", Password: "a long enough password", RoleID: f.roles[tandem.RoleOwner]})
		wantCode(t, err, tandem.EPermission)
		all, err := f.svc.Admins(ctx, f.cli)
		if err != nil {
			t.Fatal(err)
		}
		password := "taken over password"
		_, err = f.svc.UpdateAdmin(ctx, admins, all[0].ID, service.AdminUpdate{Password: &password}) // the owner
		wantCode(t, err, tandem.EPermission)
		_, _, err = f.svc.CreateAPIKey(ctx, admins, service.NewAPIKey{Name: "root", RoleID: f.roles[tandem.RoleOwner]})
		wantCode(t, err, tandem.EPermission)
	})
}

func TestLoginWithANameNoAdminCanHaveFailsAndIsAuditedBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		for _, name := range []string{"own\x00er", "\xff\xfeowner", "owner" + strings.Repeat("x", 100)} {
			_, err := f.svc.Login(ctx, service.LoginRequest{Name: name, Password: ownerPassword, Address: "10.0.0.7"})
			wantCode(t, err, tandem.EUnauthenticated)
		}
		for _, r := range auditRecords(t, f, tandem.AuditFilter{Action: "session.login"}) {
			if len([]rune(r.ActorName)) > 65 {
				t.Errorf("audited login name of %d characters", len([]rune(r.ActorName)))
			}
		}
	})
}

func TestAPromotedAdminMustEnrolBeforeTheNextRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		v := f.createAdmin(t, "viewer", "viewer password 1", tandem.RoleViewer)
		res := f.login(t, "viewer", "viewer password 1", "10.0.0.3", "")
		owner := f.roles[tandem.RoleOwner]
		if _, err := f.svc.UpdateAdmin(ctx, f.cli, v.ID, service.AdminUpdate{RoleID: &owner}); err != nil {
			t.Fatal(err)
		}
		actor, err := f.svc.Authenticate(ctx, res.Token, "10.0.0.3")
		if err != nil {
			t.Fatal(err)
		}
		if got := actor.MFAOutstanding(); got != service.MFAEnrol {
			t.Fatalf("promoted to owner mid-session: MFA outstanding %q, want enrol", got)
		}
		_, err = f.svc.Admins(ctx, actor)
		wantCode(t, err, tandem.EMFARequired)
	})
}

func TestThePasswordAloneCannotReplaceAnEnrolledFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		f.enrol(t, "owner", ownerPassword)
		attacker := f.login(t, "owner", ownerPassword, "203.0.113.9", "")
		_, err := f.svc.BeginMFAEnrolment(ctx, attacker.Actor)
		wantCode(t, err, tandem.EMFARequired)
		_, err = f.svc.ConfirmMFAEnrolment(ctx, attacker.Actor, "123456")
		wantCode(t, err, tandem.EMFARequired)
		_, err = f.svc.PendingMFAQRCode(attacker.Actor)
		wantCode(t, err, tandem.EMFARequired)
	})
}

func TestParallelWrongCodesCannotExceedTheAttemptLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		f.enrol(t, "owner", ownerPassword)
		f.clock.Add(time.Minute)
		res := f.login(t, "owner", ownerPassword, "10.0.0.1", "")
		errs := make(chan error, 40)
		for range 40 {
			go func() { errs <- f.svc.CompleteMFA(ctx, res.Actor, "000000") }()
		}
		checked := 0
		for range 40 {
			if tandem.ErrorCodeOf(<-errs) != tandem.ERateLimited {
				checked++
			}
		}
		if checked > 10 {
			t.Fatalf("%d of 40 parallel codes were checked, want at most 10 per session", checked)
		}
	})
}

func TestDisablingAnAdminRevokesTheAPIKeysTheyMade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		a := f.createAdmin(t, "second owner", "a long enough password", tandem.RoleOwner)
		actor := f.mfaSession(t, "second owner")
		secret, _, err := f.svc.CreateAPIKey(ctx, actor, service.NewAPIKey{Name: "ci", RoleID: f.roles[tandem.RoleViewer]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AuthenticateAPIKey(ctx, secret, "10.0.0.8"); err != nil {
			t.Fatal(err)
		}
		disabled := true
		if _, err := f.svc.UpdateAdmin(ctx, f.cli, a.ID, service.AdminUpdate{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AuthenticateAPIKey(ctx, secret, "10.0.0.8")
		wantCode(t, err, tandem.EUnauthenticated)
	})
}

func TestTextThatLooksLikeSQLIsOnlyText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		ctx := context.Background()
		f := newFixture(t, store, raw, nil)
		name := `x'); DROP TABLE admins; --`
		r, err := f.svc.CreateRole(ctx, f.cli, service.RoleInput{Name: name, Description: `%_\' OR 1=1 --`})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.Role(ctx, f.cli, r.ID); err != nil || got.Name != name {
			t.Fatalf("role read back as %+v, %v", got, err)
		}
		// LIKE wildcards in a filter match themselves only.
		if recs := auditRecords(t, f, tandem.AuditFilter{Action: "%."}); len(recs) != 0 {
			t.Errorf("action filter %%. matched %d records", len(recs))
		}
		if recs := auditRecords(t, f, tandem.AuditFilter{Action: "role."}); len(recs) != 1 {
			t.Errorf("action filter role. matched %d records, want 1", len(recs))
		}
		if _, err := f.svc.Admins(ctx, f.cli); err != nil {
			t.Fatalf("admins after the hostile role: %v", err)
		}
	})
}

func TestALoginFromABrowserWithAStrangeUserAgentWorks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		// 255 ASCII bytes and a two-byte character: a cut at 256 bytes would
		// split it; and a NUL and invalid UTF-8 that PostgreSQL refuses.
		ua := strings.Repeat("a", 255) + "é" + "\x00\xff"
		res, err := f.svc.Login(context.Background(), service.LoginRequest{Name: "owner", Password: ownerPassword, Address: "10.0.0.1", UserAgent: ua})
		if err != nil {
			t.Fatalf("login with user agent %q: %v", ua, err)
		}
		if !utf8.ValidString(res.Session.UserAgent) {
			t.Errorf("stored user agent %q is not valid UTF-8", res.Session.UserAgent)
		}
	})
}
