package service_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// revocationWatch is what a WatchRevocations of the bus has seen.
type revocationWatch struct {
	mu   sync.Mutex
	seen map[string]tandem.Revocation
}

func watchRevocations(t *testing.T, bus tandem.Cluster) *revocationWatch {
	t.Helper()
	w := &revocationWatch{seen: map[string]tandem.Revocation{}}
	stop, err := bus.WatchRevocations(t.Context(), func(r tandem.Revocation, deleted bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if deleted {
			delete(w.seen, r.PlayerID)
		} else {
			w.seen[r.PlayerID] = r
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return w
}

func (w *revocationWatch) get(id string) (tandem.Revocation, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.seen[id]
	return r, ok
}

func TestLogoutEverywhereAndAccountDeletionRevokeRealtimeTokensThroughTheBus(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus) // BanMirrorInterval is an hour: only the start and wake-ups mirror
		login := func(device string) *service.AuthResult {
			t.Helper()
			res, err := e.Service.GuestLogin(ctx, service.GuestLogin{DeviceID: device, Secret: deviceSecret})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		loggedOut, deleted := login("dev-1"), login("dev-2")

		// The service's clock runs two hours ahead of the real one, which
		// the bus judges TTLs by: a revocation can be expired for the
		// service while the bus would still take it.
		e.Clock.Advance(2 * time.Hour)

		// Committed while no replica mirrors (one killed right after the
		// commit, say): the mirror's start publishes it.
		before := e.Clock.Now()
		if _, err := e.Service.LogoutPlayerEverywhere(ctx, service.CLIActor("ops"), loggedOut.Player.ID); err != nil {
			t.Fatal(err)
		}
		after := e.Clock.Now()
		// An expired revocation, in the database only: never mirrored (only
		// the mirror's own filter keeps it out, the bus would take it).
		stale := tandem.Revocation{PlayerID: "stale-player", IssuedBefore: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(time.Hour)}
		if err := store.Update(ctx, func(tx tandem.Tx) error { return tx.PutRevocation(ctx, &stale) }); err != nil {
			t.Fatal(err)
		}
		w := watchRevocations(t, bus)
		stop := runJobs(t, e.Service)
		waitFor(t, "the logout's revocation mirrored", func() bool { _, ok := w.get(loggedOut.Player.ID); return ok })
		r, _ := w.get(loggedOut.Player.ID)
		// Rounded up to the next whole second after the logout: a token
		// issued in the second of the logout, even before it, is refused.
		// The service's clock runs on meanwhile: the logout fell between
		// before and after.
		lo, hi := before.Truncate(time.Second).Add(time.Second), after.Truncate(time.Second).Add(time.Second)
		if r.IssuedBefore.Before(lo) || r.IssuedBefore.After(hi) || !r.IssuedBefore.Equal(r.IssuedBefore.Truncate(time.Second)) ||
			!r.ExpiresAt.Equal(r.IssuedBefore.Add(tandem.MaxTokenLifetime+time.Minute)) {
			t.Errorf("mirrored revocation %+v, want issued_before a whole second in [%v, %v], expiring %v later",
				r, lo, hi, tandem.MaxTokenLifetime+time.Minute)
		}
		if !r.Revokes(before.Unix()) || r.Revokes(r.IssuedBefore.Unix()) {
			t.Errorf("revocation %+v: want tokens of the logout's second refused and later ones accepted", r)
		}
		recs := auditOf(t, store, "player.logout_all")
		if len(recs) != 1 || !strings.Contains(recs[0].After, `"tokens_issued_before"`) {
			t.Errorf("logout audit records %+v, want one naming the revocation", recs)
		}

		e.Clock.Advance(30 * time.Minute)
		if err := e.Service.DeleteAccount(ctx, actorOf(deleted), deleted.Player.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deletion's revocation mirrored", func() bool { _, ok := w.get(deleted.Player.ID); return ok })
		stop() // the pass that mirrored it has finished

		// A fresh watch has every entry present at its start.
		if _, ok := watchRevocations(t, bus).get(stale.PlayerID); ok {
			t.Error("an expired revocation was mirrored")
		}
		if err := e.Service.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		var left []tandem.Revocation
		err := store.View(ctx, func(tx tandem.Tx) (err error) {
			left, err = tx.RevocationsFrom(ctx, time.Time{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range left {
			ids = append(ids, r.PlayerID)
		}
		// The logout's revocation expired too, on the moved clock.
		if d := cmp.Diff([]string{deleted.Player.ID}, ids); d != "" {
			t.Errorf("revocations after the sweep (-want +got):\n%s", d)
		}
	})
}

func auditOf(t *testing.T, store tandem.Store, action string) []*tandem.AuditRecord {
	t.Helper()
	var out []*tandem.AuditRecord
	err := store.View(context.Background(), func(tx tandem.Tx) (err error) {
		out, err = tx.AuditRecords(context.Background(), tandem.AuditFilter{Action: action})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
