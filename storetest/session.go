package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

// wantSession is s as a store returns it.
func wantSession(s tandem.AdminSession) *tandem.AdminSession {
	s.CreatedAt = norm(s.CreatedAt)
	s.LastSeenAt = norm(s.LastSeenAt)
	s.ExpiresAt = norm(s.ExpiresAt)
	s.ReauthAt = norm(s.ReauthAt)
	return &s
}

func newSession(adminID int64, token string, lastSeen, expires time.Time) *tandem.AdminSession {
	return &tandem.AdminSession{
		TokenHash:  []byte(token),
		AdminID:    adminID,
		CreatedAt:  at(0),
		LastSeenAt: lastSeen,
		ExpiresAt:  expires,
		ReauthAt:   at(0),
		Address:    "192.0.2.1",
		UserAgent:  "Mozilla/5.0",
	}
}

func createSessions(t *testing.T, s tandem.Store, sessions ...*tandem.AdminSession) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, sess := range sessions {
			if err := tx.CreateAdminSession(t.Context(), sess); err != nil {
				return err
			}
		}
		return nil
	})
}

// sessionExists reports whether the session with the token hash is stored.
func sessionExists(t *testing.T, s tandem.Store, tokenHash []byte) bool {
	t.Helper()
	var ok bool
	view(t, s, func(tx tandem.Tx) error {
		_, err := tx.AdminSession(t.Context(), tokenHash)
		switch tandem.ErrorCodeOf(err) {
		case 0:
			ok = true
		case tandem.ENotFound:
			ok = false
		default:
			return err
		}
		return nil
	})
	return ok
}

func testAdminSessionRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := createAdmin(t, s, "alice", 1)
	sess := tandem.AdminSession{
		TokenHash:  []byte{0, 1, 2, 0xff},
		AdminID:    a.ID,
		CreatedAt:  at(time.Second),
		LastSeenAt: at(time.Minute),
		ExpiresAt:  at(12 * time.Hour),
		MFAPassed:  true,
		ReauthAt:   at(2 * time.Second),
		Address:    "2001:db8::1",
		UserAgent:  "Mozilla/5.0 <script>",
	}
	createSessions(t, s, &sess)
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.AdminSession(ctx, sess.TokenHash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantSession(sess), got, exactTime()); diff != "" {
			t.Errorf("AdminSession (-want +got):\n%s", diff)
		}
		return nil
	})

	update(t, s, func(tx tandem.Tx) error { return tx.DeleteAdminSession(ctx, sess.TokenHash) })
	if sessionExists(t, s, sess.TokenHash) {
		t.Error("session still there after DeleteAdminSession")
	}
}

func testUpdateAdminSession(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := createAdmin(t, s, "alice", 1)
	sess := newSession(a.ID, "token", at(0), at(time.Hour))
	createSessions(t, s, sess)

	changed := *sess
	changed.LastSeenAt = at(5 * time.Minute)
	changed.MFAPassed = true
	changed.ReauthAt = at(4 * time.Minute)
	// Not written by UpdateAdminSession:
	changed.CreatedAt = at(-time.Hour)
	changed.ExpiresAt = at(48 * time.Hour)
	changed.Address = "198.51.100.7"
	changed.UserAgent = "curl"
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateAdminSession(ctx, &changed) })

	want := *sess
	want.LastSeenAt = changed.LastSeenAt
	want.MFAPassed = true
	want.ReauthAt = changed.ReauthAt
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.AdminSession(ctx, sess.TokenHash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantSession(want), got, exactTime()); diff != "" {
			t.Errorf("AdminSession after UpdateAdminSession (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testAdminSessionErrors(t *testing.T, s tandem.Store) {
	a := createAdmin(t, s, "alice", 1)
	sess := newSession(a.ID, "token", at(0), at(time.Hour))
	createSessions(t, s, sess)

	wantCode(t, s, tandem.EConflict, "CreateAdminSession with a taken token", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAdminSession(ctx, newSession(a.ID, "token", at(0), at(time.Hour)))
	})
	wantCode(t, s, tandem.EConflict, "CreateAdminSession of a missing admin", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAdminSession(ctx, newSession(999, "other-token", at(0), at(time.Hour)))
	})
	wantCode(t, s, tandem.ENotFound, "AdminSession", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.AdminSession(ctx, []byte("missing"))
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateAdminSession", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateAdminSession(ctx, newSession(a.ID, "missing", at(0), at(time.Hour)))
	})
	wantCode(t, s, tandem.ENotFound, "DeleteAdminSession", func(ctx context.Context, tx tandem.Tx) error {
		return tx.DeleteAdminSession(ctx, []byte("missing"))
	})
}

func testDeleteAdminSessions(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	alice := createAdmin(t, s, "alice", 1)
	bob := createAdmin(t, s, "bob", 1)
	kept := newSession(alice.ID, "alice-1", at(0), at(time.Hour))
	createSessions(t, s,
		kept,
		newSession(alice.ID, "alice-2", at(0), at(time.Hour)),
		newSession(alice.ID, "alice-3", at(0), at(time.Hour)),
		newSession(bob.ID, "bob-1", at(0), at(time.Hour)),
	)

	deleteAll := func(adminID int64, keep []byte) int {
		t.Helper()
		var n int
		update(t, s, func(tx tandem.Tx) error {
			var err error
			n, err = tx.DeleteAdminSessions(ctx, adminID, keep)
			return err
		})
		return n
	}
	if n := deleteAll(alice.ID, kept.TokenHash); n != 2 {
		t.Errorf("DeleteAdminSessions keeping one of 3 = %d, want 2", n)
	}
	for token, want := range map[string]bool{"alice-1": true, "alice-2": false, "alice-3": false, "bob-1": true} {
		if got := sessionExists(t, s, []byte(token)); got != want {
			t.Errorf("session %s exists = %v, want %v", token, got, want)
		}
	}
	if n := deleteAll(alice.ID, nil); n != 1 {
		t.Errorf("DeleteAdminSessions keeping none = %d, want 1", n)
	}
	if sessionExists(t, s, kept.TokenHash) {
		t.Error("session alice-1 still there after DeleteAdminSessions keeping none")
	}
	if !sessionExists(t, s, []byte("bob-1")) {
		t.Error("bob's session gone after deleting alice's")
	}
}

func testDeleteExpiredAdminSessions(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := createAdmin(t, s, "alice", 1)
	now := at(24 * time.Hour)
	idleBefore := now.Add(-30 * time.Minute)
	createSessions(t, s,
		newSession(a.ID, "fresh", now.Add(-time.Minute), now.Add(time.Hour)),
		newSession(a.ID, "expired", now.Add(-time.Minute), now.Add(-time.Second)),
		newSession(a.ID, "idle", idleBefore.Add(-time.Second), now.Add(time.Hour)),
		newSession(a.ID, "both", idleBefore.Add(-time.Hour), now.Add(-time.Hour)),
	)
	var n int
	update(t, s, func(tx tandem.Tx) error {
		var err error
		n, err = tx.DeleteExpiredAdminSessions(ctx, now, idleBefore)
		return err
	})
	if n != 3 {
		t.Errorf("DeleteExpiredAdminSessions = %d, want 3", n)
	}
	for token, want := range map[string]bool{"fresh": true, "expired": false, "idle": false, "both": false} {
		if got := sessionExists(t, s, []byte(token)); got != want {
			t.Errorf("session %s exists = %v, want %v", token, got, want)
		}
	}
}
