package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

// wantAPIKey is k as a store returns it.
func wantAPIKey(k tandem.APIKey) *tandem.APIKey {
	k.CreatedAt = norm(k.CreatedAt)
	k.LastUsedAt = norm(k.LastUsedAt)
	k.RevokedAt = norm(k.RevokedAt)
	return &k
}

func testAPIKeyRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := createAdmin(t, s, "alice", 1)
	revoked := tandem.APIKey{
		Name:       "old deploy bot",
		RoleID:     2,
		Prefix:     "tdm_abcd",
		Hash:       []byte{0xde, 0xad, 0, 0xbe, 0xef},
		CreatedBy:  a.ID,
		CreatedAt:  at(time.Second),
		LastUsedAt: at(time.Minute),
		RevokedAt:  at(time.Hour),
	}
	live := tandem.APIKey{
		Name:      "deploy bot",
		RoleID:    5,
		Prefix:    "tdm_efgh",
		Hash:      []byte("live-key-hash"),
		CreatedBy: a.ID,
		CreatedAt: at(2 * time.Second),
	}
	update(t, s, func(tx tandem.Tx) error {
		if err := tx.CreateAPIKey(ctx, &revoked); err != nil {
			return err
		}
		return tx.CreateAPIKey(ctx, &live)
	})
	if revoked.ID <= 0 || live.ID <= revoked.ID {
		t.Fatalf("CreateAPIKey set ids %d then %d, want positive and increasing", revoked.ID, live.ID)
	}

	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.APIKey(ctx, revoked.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAPIKey(revoked), got, exactTime()); diff != "" {
			t.Errorf("APIKey (-want +got):\n%s", diff)
		}
		got, err = tx.APIKeyByHash(ctx, live.Hash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAPIKey(live), got, exactTime()); diff != "" {
			t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
		}
		all, err := tx.APIKeys(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.APIKey{wantAPIKey(revoked), wantAPIKey(live)}, all, exactTime()); diff != "" {
			t.Errorf("APIKeys (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testUpdateAPIKey(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	k := tandem.APIKey{Name: "bot", RoleID: 5, Prefix: "tdm_1234", Hash: []byte("hash"), CreatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error { return tx.CreateAPIKey(ctx, &k) })

	changed := k
	changed.LastUsedAt = at(time.Minute)
	changed.RevokedAt = at(time.Hour)
	// Not written by UpdateAPIKey:
	changed.Name = "renamed"
	changed.RoleID = 1
	changed.Prefix = "tdm_9999"
	changed.CreatedAt = at(-time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateAPIKey(ctx, &changed) })

	want := k
	want.LastUsedAt = changed.LastUsedAt
	want.RevokedAt = changed.RevokedAt
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.APIKey(ctx, k.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantAPIKey(want), got, exactTime()); diff != "" {
			t.Errorf("APIKey after UpdateAPIKey (-want +got):\n%s", diff)
		}
		if !got.Revoked() {
			t.Error("Revoked() = false after setting RevokedAt")
		}
		return nil
	})
}

func testAPIKeyErrors(t *testing.T, s tandem.Store) {
	k := tandem.APIKey{Name: "bot", RoleID: 5, Hash: []byte("hash"), CreatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error { return tx.CreateAPIKey(t.Context(), &k) })

	wantCode(t, s, tandem.EConflict, "CreateAPIKey with a taken hash", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAPIKey(ctx, &tandem.APIKey{Name: "other", RoleID: 5, Hash: []byte("hash")})
	})
	wantCode(t, s, tandem.EConflict, "CreateAPIKey with a missing role", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateAPIKey(ctx, &tandem.APIKey{Name: "other", RoleID: 999, Hash: []byte("other-hash")})
	})
	wantCode(t, s, tandem.ENotFound, "APIKey", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.APIKey(ctx, 999)
		return err
	})
	wantCode(t, s, tandem.ENotFound, "APIKeyByHash", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.APIKeyByHash(ctx, []byte("missing"))
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateAPIKey", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateAPIKey(ctx, &tandem.APIKey{ID: 999, RevokedAt: at(0)})
	})
}
