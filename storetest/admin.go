package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

// wantAdmin is a as a store returns it.
func wantAdmin(a tandem.Admin) *tandem.Admin {
	a.PasswordChangedAt = norm(a.PasswordChangedAt)
	a.CreatedAt = norm(a.CreatedAt)
	a.UpdatedAt = norm(a.UpdatedAt)
	return &a
}

func createAdmin(t *testing.T, s tandem.Store, name string, roleID int64) *tandem.Admin {
	t.Helper()
	a := &tandem.Admin{
		Name:              name,
		RoleID:            roleID,
		PasswordHash:      "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		PasswordChangedAt: at(0),
		CreatedAt:         at(0),
		UpdatedAt:         at(0),
	}
	update(t, s, func(tx tandem.Tx) error { return tx.CreateAdmin(t.Context(), a) })
	return a
}

func testAdminRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	first := tandem.Admin{
		Name:              "<img src=x onerror=alert(1)>",
		RoleID:            1,
		Disabled:          true,
		PasswordHash:      "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		PasswordChangedAt: at(time.Minute),
		MFASecret:         "JBSWY3DPEHPK3PXP",
		MFAPending:        "KRSXG5CTMVRXEZLU",
		MFALastStep:       57_000_000,
		CreatedAt:         at(time.Hour),
		UpdatedAt:         at(2 * time.Hour),
	}
	second := tandem.Admin{Name: "ο διαχειριστής", RoleID: 5, PasswordHash: "h", CreatedAt: at(0), UpdatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error {
		if err := tx.CreateAdmin(ctx, &first); err != nil {
			return err
		}
		return tx.CreateAdmin(ctx, &second)
	})
	if first.ID <= 0 || second.ID <= first.ID {
		t.Fatalf("CreateAdmin set ids %d then %d, want positive and increasing", first.ID, second.ID)
	}

	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Admin(ctx, first.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAdmin(first), got, exactTime()); diff != "" {
			t.Errorf("Admin (-want +got):\n%s", diff)
		}
		got, err = tx.AdminByName(ctx, second.Name)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAdmin(second), got, exactTime()); diff != "" {
			t.Errorf("AdminByName (-want +got):\n%s", diff)
		}
		all, err := tx.Admins(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.Admin{wantAdmin(first), wantAdmin(second)}, all, exactTime()); diff != "" {
			t.Errorf("Admins (-want +got):\n%s", diff)
		}
		n, err := tx.CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n != 2 {
			t.Errorf("CountAdmins = %d, want 2", n)
		}
		return nil
	})
}

func testZeroTimesRoundTripAsZero(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := tandem.Admin{Name: "timeless", RoleID: 1}
	k := tandem.APIKey{Name: "timeless", RoleID: 1, Prefix: "tdm_", Hash: []byte("zero-times")}
	sess := tandem.AdminSession{TokenHash: []byte("zero-times")}
	update(t, s, func(tx tandem.Tx) error {
		if err := tx.CreateAdmin(ctx, &a); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(ctx, &k); err != nil {
			return err
		}
		sess.AdminID = a.ID
		return tx.CreateAdminSession(ctx, &sess)
	})
	view(t, s, func(tx tandem.Tx) error {
		gotAdmin, err := tx.Admin(ctx, a.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(&a, gotAdmin, exactTime()); diff != "" {
			t.Errorf("Admin with zero times (-want +got):\n%s", diff)
		}
		gotKey, err := tx.APIKey(ctx, k.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(&k, gotKey, exactTime()); diff != "" {
			t.Errorf("APIKey with zero times (-want +got):\n%s", diff)
		}
		gotSession, err := tx.AdminSession(ctx, sess.TokenHash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(&sess, gotSession, exactTime()); diff != "" {
			t.Errorf("AdminSession with zero times (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testUpdateAdmin(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := createAdmin(t, s, "before", 5)
	changed := tandem.Admin{
		ID:                a.ID,
		Name:              "after",
		RoleID:            2,
		Disabled:          true,
		PasswordHash:      "new-hash",
		PasswordChangedAt: at(time.Hour),
		MFASecret:         "SECRET",
		MFAPending:        "PENDING",
		MFALastStep:       42,
		CreatedAt:         at(24 * time.Hour), // not written
		UpdatedAt:         at(time.Hour),
	}
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateAdmin(ctx, &changed) })

	want := changed
	want.CreatedAt = a.CreatedAt
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Admin(ctx, a.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAdmin(want), got, exactTime()); diff != "" {
			t.Errorf("Admin after UpdateAdmin (-want +got):\n%s", diff)
		}
		return nil
	})

	// Clearing fields writes them too.
	cleared := want
	cleared.Disabled = false
	cleared.PasswordChangedAt = time.Time{}
	cleared.MFASecret = ""
	cleared.MFAPending = ""
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateAdmin(ctx, &cleared) })
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Admin(ctx, a.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAdmin(cleared), got, exactTime()); diff != "" {
			t.Errorf("Admin after clearing fields (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testTakenAdminNameIsConflict(t *testing.T, s tandem.Store) {
	createAdmin(t, s, "alice", 1)
	bob := createAdmin(t, s, "bob", 1)
	wantCode(t, s, tandem.EConflict, "CreateAdmin(alice) again", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAdmin(ctx, &tandem.Admin{Name: "alice", RoleID: 2})
	})
	wantCode(t, s, tandem.EConflict, "UpdateAdmin renaming bob to alice", func(ctx context.Context, tx tandem.Tx) error {
		renamed := *bob
		renamed.Name = "alice"
		return tx.UpdateAdmin(ctx, &renamed)
	})
}

func testAdminWithMissingRoleIsConflict(t *testing.T, s tandem.Store) {
	a := createAdmin(t, s, "alice", 1)
	wantCode(t, s, tandem.EConflict, "CreateAdmin with role 999", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAdmin(ctx, &tandem.Admin{Name: "bob", RoleID: 999})
	})
	wantCode(t, s, tandem.EConflict, "UpdateAdmin to role 999", func(ctx context.Context, tx tandem.Tx) error {
		moved := *a
		moved.RoleID = 999
		return tx.UpdateAdmin(ctx, &moved)
	})
}

func testMissingAdminIsNotFound(t *testing.T, s tandem.Store) {
	wantCode(t, s, tandem.ENotFound, "Admin", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Admin(ctx, 999)
		return err
	})
	wantCode(t, s, tandem.ENotFound, "AdminByName", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.AdminByName(ctx, "nobody")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateAdmin", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateAdmin(ctx, &tandem.Admin{ID: 999, Name: "ghost", RoleID: 1})
	})
	view(t, s, func(tx tandem.Tx) error {
		admins, err := tx.Admins(t.Context())
		if err != nil {
			return err
		}
		if len(admins) != 0 {
			t.Errorf("Admins of a new store = %v, want none", admins)
		}
		n, err := tx.CountAdmins(t.Context())
		if err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("CountAdmins of a new store = %d, want 0", n)
		}
		return nil
	})
}

func testRecoveryCodesWorkOnce(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	alice := createAdmin(t, s, "alice", 1)
	bob := createAdmin(t, s, "bob", 1)
	codes := [][]byte{[]byte("code-1"), []byte("code-2"), []byte("code-3")}

	unused := func(adminID int64) int {
		t.Helper()
		var n int
		view(t, s, func(tx tandem.Tx) error {
			var err error
			n, err = tx.UnusedRecoveryCodes(ctx, adminID)
			return err
		})
		return n
	}
	use := func(adminID int64, code []byte) bool {
		t.Helper()
		var ok bool
		update(t, s, func(tx tandem.Tx) error {
			var err error
			ok, err = tx.UseRecoveryCode(ctx, adminID, code, at(time.Minute))
			return err
		})
		return ok
	}

	update(t, s, func(tx tandem.Tx) error { return tx.ReplaceRecoveryCodes(ctx, alice.ID, codes) })
	if n := unused(alice.ID); n != 3 {
		t.Errorf("UnusedRecoveryCodes after storing 3 = %d, want 3", n)
	}
	if !use(alice.ID, codes[0]) {
		t.Error("first use of a code: false, want true")
	}
	if use(alice.ID, codes[0]) {
		t.Error("second use of the same code: true, want false")
	}
	if use(alice.ID, []byte("not-a-code")) {
		t.Error("use of an unknown code: true, want false")
	}
	if use(bob.ID, codes[1]) {
		t.Error("use of alice's code by bob: true, want false")
	}
	if n := unused(alice.ID); n != 2 {
		t.Errorf("UnusedRecoveryCodes after one use = %d, want 2", n)
	}

	fresh := [][]byte{[]byte("code-4"), []byte("code-5")}
	update(t, s, func(tx tandem.Tx) error { return tx.ReplaceRecoveryCodes(ctx, alice.ID, fresh) })
	if n := unused(alice.ID); n != 2 {
		t.Errorf("UnusedRecoveryCodes after replacing with 2 = %d, want 2", n)
	}
	if use(alice.ID, codes[1]) {
		t.Error("use of a replaced code: true, want false")
	}
	if !use(alice.ID, fresh[1]) {
		t.Error("use of a new code: false, want true")
	}

	update(t, s, func(tx tandem.Tx) error { return tx.ReplaceRecoveryCodes(ctx, alice.ID, nil) })
	if n := unused(alice.ID); n != 0 {
		t.Errorf("UnusedRecoveryCodes after replacing with none = %d, want 0", n)
	}
}

func testDevices(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	alice := createAdmin(t, s, "alice", 1)
	bob := createAdmin(t, s, "bob", 1)
	device := []byte("device-hash")

	has := func(adminID int64, hash []byte) bool {
		t.Helper()
		var ok bool
		view(t, s, func(tx tandem.Tx) error {
			var err error
			ok, err = tx.HasDevice(ctx, adminID, hash)
			return err
		})
		return ok
	}

	if has(alice.ID, device) {
		t.Error("HasDevice before AddDevice: true")
	}
	update(t, s, func(tx tandem.Tx) error { return tx.AddDevice(ctx, alice.ID, device, at(0)) })
	// Logging in again from the same browser adds it again.
	update(t, s, func(tx tandem.Tx) error { return tx.AddDevice(ctx, alice.ID, device, at(time.Hour)) })
	if !has(alice.ID, device) {
		t.Error("HasDevice after AddDevice: false")
	}
	if has(bob.ID, device) {
		t.Error("HasDevice of another admin: true")
	}
	if has(alice.ID, []byte("other-device")) {
		t.Error("HasDevice of another device: true")
	}
}
