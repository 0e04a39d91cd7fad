package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

// wantSigningKey is k as a store returns it.
func wantSigningKey(k tandem.SigningKey) *tandem.SigningKey {
	k.CreatedAt = norm(k.CreatedAt)
	k.RetiredAt = norm(k.RetiredAt)
	k.ExpiresAt = norm(k.ExpiresAt)
	return &k
}

func newSigningKey(id string, created time.Time) *tandem.SigningKey {
	return &tandem.SigningKey{
		ID:            id,
		PublicKey:     []byte("public-" + id),
		PrivateKeyEnc: []byte{0, 1, 0xfe, 0xff},
		CreatedAt:     created,
	}
}

func createSigningKeys(t *testing.T, s tandem.Store, keys ...*tandem.SigningKey) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, k := range keys {
			if err := tx.CreateSigningKey(t.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
}

func signingKeys(t *testing.T, s tandem.Store) []*tandem.SigningKey {
	t.Helper()
	var keys []*tandem.SigningKey
	view(t, s, func(tx tandem.Tx) (err error) {
		keys, err = tx.SigningKeys(t.Context())
		return err
	})
	return keys
}

func testSigningKeysRoundTripNewestFirst(t *testing.T, s tandem.Store) {
	if got := signingKeys(t, s); len(got) != 0 {
		t.Errorf("SigningKeys of a new store = %d keys, want none", len(got))
	}
	retired := newSigningKey("kid-old", at(0))
	retired.RetiredAt = at(time.Hour)
	retired.ExpiresAt = at(2 * time.Hour)
	signing := newSigningKey("kid-new", at(time.Hour))
	// Created at the same time as kid-new: the larger id first.
	tie := newSigningKey("kid-tie", at(time.Hour))
	createSigningKeys(t, s, retired, signing, tie)
	want := []*tandem.SigningKey{wantSigningKey(*tie), wantSigningKey(*signing), wantSigningKey(*retired)}
	if diff := cmp.Diff(want, signingKeys(t, s), exactTime()); diff != "" {
		t.Errorf("SigningKeys (-want +got):\n%s", diff)
	}
}

func testRetireSigningKey(t *testing.T, s tandem.Store) {
	k := newSigningKey("kid", at(0))
	createSigningKeys(t, s, k)
	retired := *k
	retired.RetiredAt = at(time.Hour)
	retired.ExpiresAt = at(time.Hour + 10*time.Minute)
	// Not written by RetireSigningKey:
	retired.PublicKey = []byte("other")
	retired.PrivateKeyEnc = []byte("other")
	retired.CreatedAt = at(-time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.RetireSigningKey(t.Context(), &retired) })
	want := *k
	want.RetiredAt = retired.RetiredAt
	want.ExpiresAt = retired.ExpiresAt
	if diff := cmp.Diff([]*tandem.SigningKey{wantSigningKey(want)}, signingKeys(t, s), exactTime()); diff != "" {
		t.Errorf("SigningKeys after RetireSigningKey (-want +got):\n%s", diff)
	}
}

func testSigningKeyErrors(t *testing.T, s tandem.Store) {
	createSigningKeys(t, s, newSigningKey("kid", at(0)))
	wantCode(t, s, tandem.EConflict, "CreateSigningKey with a taken kid", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateSigningKey(ctx, newSigningKey("kid", at(time.Hour)))
	})
	wantCode(t, s, tandem.ENotFound, "RetireSigningKey", func(ctx context.Context, tx tandem.Tx) error {
		return tx.RetireSigningKey(ctx, &tandem.SigningKey{ID: "missing", RetiredAt: at(0), ExpiresAt: at(0)})
	})
}

func testDeleteExpiredSigningKeys(t *testing.T, s tandem.Store) {
	now := at(24 * time.Hour)
	expiring := func(id string, expires time.Time) *tandem.SigningKey {
		k := newSigningKey(id, at(0))
		k.RetiredAt = now.Add(-time.Hour)
		k.ExpiresAt = expires
		return k
	}
	signing := newSigningKey("signing", at(time.Hour))
	createSigningKeys(t, s,
		expiring("expired", now.Add(-time.Microsecond)),
		expiring("expires-now", now),
		expiring("valid", now.Add(time.Minute)),
		signing,
	)
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteExpiredSigningKeys(t.Context(), now)
		return err
	})
	if n != 1 {
		t.Errorf("DeleteExpiredSigningKeys = %d, want 1", n)
	}
	var ids []string
	for _, k := range signingKeys(t, s) {
		ids = append(ids, k.ID)
	}
	if diff := cmp.Diff([]string{"signing", "valid", "expires-now"}, ids); diff != "" {
		t.Errorf("keys left (-want +got):\n%s", diff)
	}
}

// testLockSigningKeysSerializesRotation runs rotations that each read the
// keys and add the next one, named after how many there were: without the
// lock, two of them would read the same count and add the same kid.
func testLockSigningKeysSerializesRotation(t *testing.T, s tandem.Store) {
	const rotations = 8
	errs := make([]error, rotations)
	var wg sync.WaitGroup
	for i := range rotations {
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), func(tx tandem.Tx) error {
				if err := tx.LockSigningKeys(t.Context()); err != nil {
					return err
				}
				keys, err := tx.SigningKeys(t.Context())
				if err != nil {
					return err
				}
				n := len(keys)
				return tx.CreateSigningKey(t.Context(), newSigningKey(fmt.Sprintf("kid-%02d", n), at(time.Duration(n)*time.Second)))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	var want, got []string
	for i := rotations - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("kid-%02d", i))
	}
	for _, k := range signingKeys(t, s) {
		got = append(got, k.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys after concurrent rotations (-want +got):\n%s", diff)
	}
}
