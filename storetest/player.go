package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	tandem "github.com/tandemhq/tandem"
)

// pid returns the n-th test player id, shaped like the UUIDv7 the service
// chooses.
func pid(n int) string {
	return fmt.Sprintf("01890000-0000-7000-8000-%012d", n)
}

// wantPlayer is a as a store returns it: times in UTC at microseconds, no
// properties as nil.
func wantPlayer(a tandem.PlayerAccount) *tandem.PlayerAccount {
	a.CreatedAt = norm(a.CreatedAt)
	a.UpdatedAt = norm(a.UpdatedAt)
	a.LastLoginAt = norm(a.LastLoginAt)
	a.DeletedAt = norm(a.DeletedAt)
	if len(a.MM) == 0 {
		a.MM = nil
	}
	return &a
}

func newPlayer(n int, name, email string, created time.Time) *tandem.PlayerAccount {
	return &tandem.PlayerAccount{ID: pid(n), DisplayName: name, Email: email, CreatedAt: created, UpdatedAt: created}
}

func createPlayers(t *testing.T, s tandem.Store, players ...*tandem.PlayerAccount) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, a := range players {
			if err := tx.CreatePlayer(t.Context(), a); err != nil {
				return err
			}
		}
		return nil
	})
}

func readPlayer(t *testing.T, s tandem.Store, id string) *tandem.PlayerAccount {
	t.Helper()
	var a *tandem.PlayerAccount
	view(t, s, func(tx tandem.Tx) (err error) {
		a, err = tx.Player(t.Context(), id)
		return err
	})
	return a
}

func testPlayerRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	full := tandem.PlayerAccount{
		ID:           pid(1),
		DisplayName:  "<b>Zoë</b> '; DROP TABLE players; --",
		Email:        "zoe@example.com",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Locale:       "pt-BR",
		AvatarURL:    "https://example.com/a.png?x=1&y=<2>",
		MM:           map[string]string{"skill": "1500", "region": "eu", "platform": "pc", "quote\"": "ü\n"},
		CreatedAt:    at(time.Hour),
		UpdatedAt:    at(2 * time.Hour),
		LastLoginAt:  at(3 * time.Hour),
	}
	guest := tandem.PlayerAccount{ID: pid(2), CreatedAt: at(0), UpdatedAt: at(0)}
	emptyMM := tandem.PlayerAccount{ID: pid(3), MM: map[string]string{}, CreatedAt: at(0), UpdatedAt: at(0)}
	createPlayers(t, s, &full, &guest, &emptyMM)

	view(t, s, func(tx tandem.Tx) error {
		for _, a := range []tandem.PlayerAccount{full, guest, emptyMM} {
			got, err := tx.Player(ctx, a.ID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(wantPlayer(a), got, exactTime()); diff != "" {
				t.Errorf("Player(%s) (-want +got):\n%s", a.ID, diff)
			}
			if got.Deleted() {
				t.Errorf("Player(%s) is deleted", a.ID)
			}
		}
		got, err := tx.PlayerByEmail(ctx, full.Email)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantPlayer(full), got, exactTime()); diff != "" {
			t.Errorf("PlayerByEmail (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testGuestsWithoutEmailCoexist(t *testing.T, s tandem.Store) {
	createPlayers(t, s,
		newPlayer(1, "guest one", "", at(0)),
		newPlayer(2, "guest two", "", at(0)),
		newPlayer(3, "", "", at(0)),
	)
	// The guests' "" is no email, not an email to look up.
	wantCode(t, s, tandem.ENotFound, `PlayerByEmail("")`, func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.PlayerByEmail(ctx, "")
		return err
	})
	for n := 1; n <= 3; n++ {
		if got := readPlayer(t, s, pid(n)).Email; got != "" {
			t.Errorf("guest %d email = %q, want empty", n, got)
		}
	}
}

func testPlayerByEmailMatchesExactly(t *testing.T, s tandem.Store) {
	createPlayers(t, s, newPlayer(1, "Ann", "ann@example.com", at(0)))
	for _, email := range []string{"ANN@example.com", "ann@example.com ", "ann@example", "%@example.com"} {
		wantCode(t, s, tandem.ENotFound, fmt.Sprintf("PlayerByEmail(%q)", email), func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerByEmail(ctx, email)
			return err
		})
	}
}

func testUpdatePlayer(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	a := newPlayer(1, "Guest", "", at(0))
	createPlayers(t, s, a)

	linked := *a
	linked.DisplayName = "Linked"
	linked.Email = "linked@example.com"
	linked.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3"
	linked.Locale = "en"
	linked.AvatarURL = "https://example.com/b.png"
	linked.MM = map[string]string{"skill": "1200"}
	linked.UpdatedAt = at(time.Minute)
	linked.LastLoginAt = at(2 * time.Minute)
	// Not written by UpdatePlayer:
	linked.CreatedAt = at(-time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.UpdatePlayer(ctx, &linked) })
	want := linked
	want.CreatedAt = a.CreatedAt
	if diff := cmp.Diff(wantPlayer(want), readPlayer(t, s, a.ID), exactTime()); diff != "" {
		t.Errorf("Player after UpdatePlayer (-want +got):\n%s", diff)
	}

	// Deleting the account erases its data and keeps the row; the email is
	// free for a new account.
	tombstone := tandem.PlayerAccount{ID: a.ID, UpdatedAt: at(time.Hour), DeletedAt: at(time.Hour)}
	update(t, s, func(tx tandem.Tx) error { return tx.UpdatePlayer(ctx, &tombstone) })
	got := readPlayer(t, s, a.ID)
	want = tombstone
	want.CreatedAt = a.CreatedAt
	if diff := cmp.Diff(wantPlayer(want), got, exactTime()); diff != "" {
		t.Errorf("Player after deletion (-want +got):\n%s", diff)
	}
	if !got.Deleted() {
		t.Error("deleted player is not Deleted()")
	}
	wantCode(t, s, tandem.ENotFound, "PlayerByEmail of the deleted email", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.PlayerByEmail(ctx, linked.Email)
		return err
	})
	createPlayers(t, s, newPlayer(2, "New", linked.Email, at(0)))
}

func testTakenPlayerEmailOrIDIsConflict(t *testing.T, s tandem.Store) {
	createPlayers(t, s, newPlayer(1, "Ann", "ann@example.com", at(0)), newPlayer(2, "Bob", "bob@example.com", at(0)))
	wantCode(t, s, tandem.EConflict, "CreatePlayer with a taken email", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayer(ctx, newPlayer(3, "Other Ann", "ann@example.com", at(0)))
	})
	wantCode(t, s, tandem.EConflict, "CreatePlayer with a taken id", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayer(ctx, newPlayer(1, "Ann again", "", at(0)))
	})
	wantCode(t, s, tandem.EConflict, "UpdatePlayer to a taken email", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdatePlayer(ctx, newPlayer(2, "Bob", "ann@example.com", at(0)))
	})
	if got := readPlayer(t, s, pid(2)).Email; got != "bob@example.com" {
		t.Errorf("email after the refused update = %q, want bob@example.com", got)
	}
}

func testMissingPlayerIsNotFound(t *testing.T, s tandem.Store) {
	wantCode(t, s, tandem.ENotFound, "Player", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Player(ctx, pid(404))
		return err
	})
	wantCode(t, s, tandem.ENotFound, "PlayerByEmail", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.PlayerByEmail(ctx, "nobody@example.com")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdatePlayer", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdatePlayer(ctx, newPlayer(404, "ghost", "", at(0)))
	})
}

// searchIDs returns the ids SearchPlayers finds for f.
func searchIDs(t *testing.T, s tandem.Store, f tandem.PlayerFilter) []string {
	t.Helper()
	var ids []string
	view(t, s, func(tx tandem.Tx) error {
		players, err := tx.SearchPlayers(t.Context(), f)
		if err != nil {
			return err
		}
		for _, a := range players {
			ids = append(ids, a.ID)
		}
		return nil
	})
	return ids
}

func testSearchPlayers(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s,
		newPlayer(1, "Alice Smith", "alice@example.com", at(1*time.Hour)),
		newPlayer(2, "Bob", "", at(2*time.Hour)),
		newPlayer(3, "100% real_name", "", at(3*time.Hour)),
		newPlayer(4, "100 percent realXname", "", at(4*time.Hour)),
		newPlayer(5, "Zoë Ångström", "", at(5*time.Hour)),
		newPlayer(6, "ALICE in caps", "", at(6*time.Hour)),
		newPlayer(7, `back\slash`, "", at(7*time.Hour)),
	)
	update(t, s, func(tx tandem.Tx) error {
		for _, id := range []string{"dev-bob-1", "Bob"} {
			d := &tandem.PlayerDevice{ID: id, PlayerID: pid(2), SecretHash: []byte("secret"), CreatedAt: at(0)}
			if err := tx.CreatePlayerDevice(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})

	for _, tc := range []struct {
		query string
		want  []int
	}{
		{"", []int{7, 6, 5, 4, 3, 2, 1}},
		{pid(2), []int{2}},
		{"01890000-0000", nil}, // an id matches whole, not by prefix
		{"ALICE@EXAMPLE.COM", []int{1}},
		{"alice@example", nil}, // an email matches whole
		{"alice", []int{6, 1}}, // a name part, case-insensitively
		{"smith", []int{1}},
		{"dev-bob-1", []int{2}},
		{"dev-bob", nil},  // a device id matches whole
		{"Bob", []int{2}}, // name and device: listed once
		{"%", []int{3}},
		{"_", []int{3}},
		{"l_n", []int{3}},
		{"0% r", []int{3}},
		{`\`, []int{7}},
		{`k\s`, []int{7}},
		{"Ångström", []int{5}},
		{"ngstr", []int{5}},
		{"Zoë", []int{5}},
		{"nobody", nil},
	} {
		var want []string
		for _, n := range tc.want {
			want = append(want, pid(n))
		}
		got := searchIDs(t, s, tandem.PlayerFilter{Query: tc.query})
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("SearchPlayers(%q) (-want +got):\n%s", tc.query, diff)
		}
	}
}

func testSearchPlayersLimit(t *testing.T, s tandem.Store) {
	var players []*tandem.PlayerAccount
	for n := 1; n <= 205; n++ {
		players = append(players, newPlayer(n, fmt.Sprintf("player %d", n), "", at(time.Duration(n)*time.Second)))
	}
	// Two more created at the same time as player 205: the larger id first.
	players = append(players, newPlayer(207, "tie b", "", at(205*time.Second)), newPlayer(206, "tie a", "", at(205*time.Second)))
	createPlayers(t, s, players...)

	for _, tc := range []struct {
		limit, want int
	}{{0, 50}, {-1, 50}, {3, 3}, {200, 200}, {500, 200}} {
		got := searchIDs(t, s, tandem.PlayerFilter{Limit: tc.limit})
		if len(got) != tc.want {
			t.Errorf("SearchPlayers with limit %d returned %d players, want %d", tc.limit, len(got), tc.want)
		}
	}
	got := searchIDs(t, s, tandem.PlayerFilter{Limit: 4})
	if diff := cmp.Diff([]string{pid(207), pid(206), pid(205), pid(204)}, got); diff != "" {
		t.Errorf("SearchPlayers newest first (-want +got):\n%s", diff)
	}
	got = searchIDs(t, s, tandem.PlayerFilter{Query: "player", Limit: 2})
	if diff := cmp.Diff([]string{pid(205), pid(204)}, got); diff != "" {
		t.Errorf("SearchPlayers(player) with limit 2 (-want +got):\n%s", diff)
	}
}

func testCountPlayersCountsTombstones(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	count := func() int {
		t.Helper()
		var n int
		view(t, s, func(tx tandem.Tx) (err error) {
			n, err = tx.CountPlayers(ctx)
			return err
		})
		return n
	}
	if n := count(); n != 0 {
		t.Errorf("CountPlayers of an empty store = %d, want 0", n)
	}
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "b@example.com", at(0)))
	update(t, s, func(tx tandem.Tx) error {
		return tx.UpdatePlayer(ctx, &tandem.PlayerAccount{ID: pid(2), DeletedAt: at(time.Hour)})
	})
	if n := count(); n != 2 {
		t.Errorf("CountPlayers = %d, want 2", n)
	}
}

// wantDevice is d as a store returns it.
func wantDevice(d tandem.PlayerDevice) *tandem.PlayerDevice {
	d.CreatedAt = norm(d.CreatedAt)
	d.LastSeenAt = norm(d.LastSeenAt)
	return &d
}

func testPlayerDevices(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)))
	first := tandem.PlayerDevice{ID: "device <1>", PlayerID: pid(1), SecretHash: []byte{0, 1, 0xff},
		CreatedAt: at(time.Minute), LastSeenAt: at(time.Minute)}
	second := tandem.PlayerDevice{ID: "device-2", PlayerID: pid(1), SecretHash: []byte("h2"), CreatedAt: at(2 * time.Minute)}
	other := tandem.PlayerDevice{ID: "device-3", PlayerID: pid(2), SecretHash: []byte("h3"), CreatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error {
		for _, d := range []*tandem.PlayerDevice{&second, &first, &other} {
			if err := tx.CreatePlayerDevice(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.PlayerDevice(ctx, first.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantDevice(first), got, exactTime()); diff != "" {
			t.Errorf("PlayerDevice (-want +got):\n%s", diff)
		}
		all, err := tx.PlayerDevices(ctx, pid(1))
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.PlayerDevice{wantDevice(first), wantDevice(second)}, all, exactTime()); diff != "" {
			t.Errorf("PlayerDevices, oldest first (-want +got):\n%s", diff)
		}
		return nil
	})

	update(t, s, func(tx tandem.Tx) error { return tx.TouchPlayerDevice(ctx, second.ID, at(time.Hour)) })
	touched := second
	touched.LastSeenAt = at(time.Hour)
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.PlayerDevice(ctx, second.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantDevice(touched), got, exactTime()); diff != "" {
			t.Errorf("PlayerDevice after TouchPlayerDevice (-want +got):\n%s", diff)
		}
		return nil
	})

	update(t, s, func(tx tandem.Tx) error { return tx.DeletePlayerDevices(ctx, pid(1)) })
	view(t, s, func(tx tandem.Tx) error {
		all, err := tx.PlayerDevices(ctx, pid(1))
		if err != nil {
			return err
		}
		if len(all) != 0 {
			t.Errorf("PlayerDevices after DeletePlayerDevices = %d devices, want none", len(all))
		}
		if _, err := tx.PlayerDevice(ctx, other.ID); err != nil {
			t.Errorf("the other player's device after DeletePlayerDevices: %v", err)
		}
		return nil
	})
	// The deleted device ids are free again.
	update(t, s, func(tx tandem.Tx) error {
		return tx.CreatePlayerDevice(ctx, &tandem.PlayerDevice{ID: first.ID, PlayerID: pid(2), SecretHash: []byte("h")})
	})
}

func testPlayerDeviceErrors(t *testing.T, s tandem.Store) {
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)))
	update(t, s, func(tx tandem.Tx) error {
		return tx.CreatePlayerDevice(t.Context(), &tandem.PlayerDevice{ID: "taken", PlayerID: pid(1), SecretHash: []byte("h")})
	})
	wantCode(t, s, tandem.EConflict, "CreatePlayerDevice with a device id of another player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayerDevice(ctx, &tandem.PlayerDevice{ID: "taken", PlayerID: pid(2), SecretHash: []byte("h")})
	})
	wantCode(t, s, tandem.EConflict, "CreatePlayerDevice of a missing player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayerDevice(ctx, &tandem.PlayerDevice{ID: "free", PlayerID: pid(404), SecretHash: []byte("h")})
	})
	wantCode(t, s, tandem.ENotFound, "PlayerDevice", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.PlayerDevice(ctx, "missing")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "TouchPlayerDevice", func(ctx context.Context, tx tandem.Tx) error {
		return tx.TouchPlayerDevice(ctx, "missing", at(0))
	})
}

// wantPlayerSession is s as a store returns it.
func wantPlayerSession(s tandem.PlayerSession) *tandem.PlayerSession {
	s.AccessExpiresAt = norm(s.AccessExpiresAt)
	s.RefreshExpiresAt = norm(s.RefreshExpiresAt)
	s.CreatedAt = norm(s.CreatedAt)
	s.LastUsedAt = norm(s.LastUsedAt)
	return &s
}

func newPlayerSession(id, playerID string, created time.Time) *tandem.PlayerSession {
	return &tandem.PlayerSession{
		ID:               id,
		PlayerID:         playerID,
		Method:           tandem.LoginPassword,
		AccessHash:       []byte("access-" + id),
		AccessExpiresAt:  created.Add(15 * time.Minute),
		RefreshHash:      []byte("refresh-" + id),
		RefreshExpiresAt: created.Add(30 * 24 * time.Hour),
		Address:          "192.0.2.1",
		UserAgent:        "tandem-sdk/1",
		CreatedAt:        created,
		LastUsedAt:       created,
	}
}

func createPlayerSessions(t *testing.T, s tandem.Store, sessions ...*tandem.PlayerSession) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, sess := range sessions {
			if err := tx.CreatePlayerSession(t.Context(), sess); err != nil {
				return err
			}
		}
		return nil
	})
}

// playerSessionIDs returns the ids of the player's sessions, newest first.
func playerSessionIDs(t *testing.T, s tandem.Store, playerID string) []string {
	t.Helper()
	var ids []string
	view(t, s, func(tx tandem.Tx) error {
		sessions, err := tx.PlayerSessions(t.Context(), playerID)
		for _, sess := range sessions {
			ids = append(ids, sess.ID)
		}
		return err
	})
	return ids
}

func testPlayerSessionRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	guest := tandem.PlayerSession{
		ID:               "session-guest",
		PlayerID:         pid(1),
		Method:           tandem.LoginGuest,
		AccessHash:       []byte{0, 1, 2, 0xff},
		AccessExpiresAt:  at(15 * time.Minute),
		RefreshHash:      []byte{3, 4, 5, 0},
		RefreshExpiresAt: at(30 * 24 * time.Hour),
		DeviceHash:       []byte("device-hash"),
		Address:          "2001:db8::1",
		UserAgent:        "Mozilla/5.0 <script>",
		CreatedAt:        at(time.Second),
		LastUsedAt:       at(2 * time.Second),
	}
	// No device, empty address and user agent.
	password := tandem.PlayerSession{
		ID:               "session-password",
		PlayerID:         pid(1),
		Method:           tandem.LoginPassword,
		AccessHash:       []byte("access"),
		AccessExpiresAt:  at(time.Hour),
		RefreshHash:      []byte("refresh"),
		RefreshExpiresAt: at(24 * time.Hour),
		CreatedAt:        at(time.Minute),
		LastUsedAt:       at(time.Minute),
	}
	createPlayerSessions(t, s, &guest, &password)

	view(t, s, func(tx tandem.Tx) error {
		for _, want := range []tandem.PlayerSession{guest, password} {
			got, err := tx.PlayerSessionByAccess(ctx, want.AccessHash)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(wantPlayerSession(want), got, exactTime()); diff != "" {
				t.Errorf("PlayerSessionByAccess (-want +got):\n%s", diff)
			}
			got, err = tx.PlayerSessionByRefresh(ctx, want.RefreshHash)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(wantPlayerSession(want), got, exactTime()); diff != "" {
				t.Errorf("PlayerSessionByRefresh (-want +got):\n%s", diff)
			}
		}
		all, err := tx.PlayerSessions(ctx, pid(1))
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.PlayerSession{wantPlayerSession(password), wantPlayerSession(guest)}, all, exactTime()); diff != "" {
			t.Errorf("PlayerSessions, newest first (-want +got):\n%s", diff)
		}
		return nil
	})

	update(t, s, func(tx tandem.Tx) error { return tx.TouchPlayerSession(ctx, guest.ID, at(time.Hour)) })
	touched := guest
	touched.LastUsedAt = at(time.Hour)
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.PlayerSessionByAccess(ctx, guest.AccessHash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantPlayerSession(touched), got, exactTime()); diff != "" {
			t.Errorf("session after TouchPlayerSession (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testRotatePlayerSession(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	orig := newPlayerSession("s1", pid(1), at(0))
	orig.DeviceHash = []byte("device-hash")
	createPlayerSessions(t, s, orig)

	rotated := *orig
	rotated.AccessHash = []byte("access-2")
	rotated.AccessExpiresAt = at(time.Hour)
	rotated.RefreshHash = []byte("refresh-2")
	rotated.RefreshExpiresAt = at(48 * time.Hour)
	rotated.LastUsedAt = at(45 * time.Minute)
	// Not written by RotatePlayerSession:
	rotated.Method = tandem.LoginGuest
	rotated.DeviceHash = []byte("other-device")
	rotated.Address = "198.51.100.7"
	rotated.UserAgent = "curl"
	rotated.CreatedAt = at(-time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.RotatePlayerSession(ctx, &rotated, orig.RefreshHash) })

	want := *orig
	want.AccessHash = rotated.AccessHash
	want.AccessExpiresAt = rotated.AccessExpiresAt
	want.RefreshHash = rotated.RefreshHash
	want.RefreshExpiresAt = rotated.RefreshExpiresAt
	want.LastUsedAt = rotated.LastUsedAt
	lookups := []struct {
		name string
		hash []byte
		fn   func(tandem.Tx, []byte) (*tandem.PlayerSession, error)
	}{
		{"PlayerSessionByAccess(new)", want.AccessHash, func(tx tandem.Tx, h []byte) (*tandem.PlayerSession, error) {
			return tx.PlayerSessionByAccess(ctx, h)
		}},
		{"PlayerSessionByRefresh(new)", want.RefreshHash, func(tx tandem.Tx, h []byte) (*tandem.PlayerSession, error) {
			return tx.PlayerSessionByRefresh(ctx, h)
		}},
		{"PlayerSessionByUsedRefresh(old)", orig.RefreshHash, func(tx tandem.Tx, h []byte) (*tandem.PlayerSession, error) {
			return tx.PlayerSessionByUsedRefresh(ctx, h)
		}},
	}
	view(t, s, func(tx tandem.Tx) error {
		for _, l := range lookups {
			got, err := l.fn(tx, l.hash)
			if err != nil {
				return fmt.Errorf("%s: %w", l.name, err)
			}
			if diff := cmp.Diff(wantPlayerSession(want), got, exactTime()); diff != "" {
				t.Errorf("%s after RotatePlayerSession (-want +got):\n%s", l.name, diff)
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		fn   func(ctx context.Context, tx tandem.Tx) error
	}{
		{"PlayerSessionByAccess(old)", func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByAccess(ctx, orig.AccessHash)
			return err
		}},
		{"PlayerSessionByRefresh(old)", func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByRefresh(ctx, orig.RefreshHash)
			return err
		}},
		{"PlayerSessionByUsedRefresh(current)", func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByUsedRefresh(ctx, want.RefreshHash)
			return err
		}},
	} {
		wantCode(t, s, tandem.ENotFound, tc.name+" after RotatePlayerSession", tc.fn)
	}

	// A second rotation adds to the family: both used tokens find it.
	again := want
	again.AccessHash = []byte("access-3")
	again.RefreshHash = []byte("refresh-3")
	update(t, s, func(tx tandem.Tx) error { return tx.RotatePlayerSession(ctx, &again, want.RefreshHash) })
	view(t, s, func(tx tandem.Tx) error {
		for _, h := range [][]byte{orig.RefreshHash, want.RefreshHash} {
			got, err := tx.PlayerSessionByUsedRefresh(ctx, h)
			if err != nil {
				return err
			}
			if got.ID != orig.ID || string(got.RefreshHash) != "refresh-3" {
				t.Errorf("PlayerSessionByUsedRefresh(%s) = session %s with refresh %s, want %s with refresh-3",
					h, got.ID, got.RefreshHash, orig.ID)
			}
		}
		return nil
	})
}

func testPlayerSessionErrors(t *testing.T, s tandem.Store) {
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	taken := newPlayerSession("taken", pid(1), at(0))
	other := newPlayerSession("other", pid(1), at(0))
	createPlayerSessions(t, s, taken, other)
	update(t, s, func(tx tandem.Tx) error {
		rotated := *other
		rotated.AccessHash = []byte("access-other-2")
		rotated.RefreshHash = []byte("refresh-other-2")
		return tx.RotatePlayerSession(t.Context(), &rotated, other.RefreshHash)
	})

	conflicts := map[string]func(sess *tandem.PlayerSession){
		"id":           func(sess *tandem.PlayerSession) { sess.ID = taken.ID },
		"access hash":  func(sess *tandem.PlayerSession) { sess.AccessHash = taken.AccessHash },
		"refresh hash": func(sess *tandem.PlayerSession) { sess.RefreshHash = taken.RefreshHash },
	}
	for what, change := range conflicts {
		wantCode(t, s, tandem.EConflict, "CreatePlayerSession with a taken "+what, func(ctx context.Context, tx tandem.Tx) error {
			sess := newPlayerSession("new", pid(1), at(0))
			change(sess)
			return tx.CreatePlayerSession(ctx, sess)
		})
	}
	wantCode(t, s, tandem.EConflict, "CreatePlayerSession of a missing player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayerSession(ctx, newPlayerSession("new", pid(404), at(0)))
	})
	wantCode(t, s, tandem.EConflict, "RotatePlayerSession with a used refresh token already remembered", func(ctx context.Context, tx tandem.Tx) error {
		rotated := *taken
		rotated.AccessHash = []byte("access-taken-2")
		rotated.RefreshHash = []byte("refresh-taken-2")
		return tx.RotatePlayerSession(ctx, &rotated, other.RefreshHash)
	})
	wantCode(t, s, tandem.EConflict, "RotatePlayerSession to another session's refresh token", func(ctx context.Context, tx tandem.Tx) error {
		rotated := *taken
		rotated.RefreshHash = []byte("refresh-other-2")
		return tx.RotatePlayerSession(ctx, &rotated, taken.RefreshHash)
	})
	// The refused rotations changed nothing.
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.PlayerSessionByRefresh(t.Context(), taken.RefreshHash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantPlayerSession(*taken), got, exactTime()); diff != "" {
			t.Errorf("session after refused rotations (-want +got):\n%s", diff)
		}
		return nil
	})

	missing := []byte("missing")
	for name, fn := range map[string]func(ctx context.Context, tx tandem.Tx) error{
		"PlayerSessionByAccess": func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByAccess(ctx, missing)
			return err
		},
		"PlayerSessionByRefresh": func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByRefresh(ctx, missing)
			return err
		},
		"PlayerSessionByUsedRefresh": func(ctx context.Context, tx tandem.Tx) error {
			_, err := tx.PlayerSessionByUsedRefresh(ctx, missing)
			return err
		},
		"RotatePlayerSession": func(ctx context.Context, tx tandem.Tx) error {
			return tx.RotatePlayerSession(ctx, newPlayerSession("missing", pid(1), at(0)), missing)
		},
		"TouchPlayerSession": func(ctx context.Context, tx tandem.Tx) error {
			return tx.TouchPlayerSession(ctx, "missing", at(0))
		},
		"DeletePlayerSession": func(ctx context.Context, tx tandem.Tx) error {
			return tx.DeletePlayerSession(ctx, "missing")
		},
	} {
		wantCode(t, s, tandem.ENotFound, name, fn)
	}
}

func testDeletePlayerSessionForgetsUsedTokens(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	sess := newPlayerSession("s1", pid(1), at(0))
	createPlayerSessions(t, s, sess)
	rotated := *sess
	rotated.AccessHash = []byte("access-2")
	rotated.RefreshHash = []byte("refresh-2")
	update(t, s, func(tx tandem.Tx) error { return tx.RotatePlayerSession(ctx, &rotated, sess.RefreshHash) })

	update(t, s, func(tx tandem.Tx) error { return tx.DeletePlayerSession(ctx, sess.ID) })
	wantCode(t, s, tandem.ENotFound, "PlayerSessionByUsedRefresh after DeletePlayerSession", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.PlayerSessionByUsedRefresh(ctx, sess.RefreshHash)
		return err
	})
	// The used token went with its session: a new session may use it.
	recreated := newPlayerSession("s2", pid(1), at(0))
	createPlayerSessions(t, s, recreated)
	update(t, s, func(tx tandem.Tx) error {
		next := *recreated
		next.AccessHash = []byte("access-3")
		next.RefreshHash = []byte("refresh-3")
		return tx.RotatePlayerSession(ctx, &next, sess.RefreshHash)
	})
}

func testDeletePlayerAndDeviceSessionsReturnCounts(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)))
	onDevice := func(sess *tandem.PlayerSession, hash string) *tandem.PlayerSession {
		sess.DeviceHash = []byte(hash)
		return sess
	}
	createPlayerSessions(t, s,
		onDevice(newPlayerSession("a1", pid(1), at(1*time.Second)), "dev-1"),
		onDevice(newPlayerSession("a2", pid(1), at(2*time.Second)), "dev-2"),
		newPlayerSession("a3", pid(1), at(3*time.Second)),
		onDevice(newPlayerSession("b1", pid(2), at(4*time.Second)), "dev-1"),
		newPlayerSession("b2", pid(2), at(5*time.Second)),
	)
	deleteDevice := func(hash []byte) int {
		t.Helper()
		var n int
		update(t, s, func(tx tandem.Tx) (err error) {
			n, err = tx.DeleteDeviceSessions(ctx, hash)
			return err
		})
		return n
	}
	if n := deleteDevice(nil); n != 0 {
		t.Errorf("DeleteDeviceSessions(nil) = %d, want 0: a nil hash is no device", n)
	}
	if n := deleteDevice([]byte("dev-1")); n != 2 {
		t.Errorf("DeleteDeviceSessions(dev-1) = %d, want 2", n)
	}
	if diff := cmp.Diff([]string{"a3", "a2"}, playerSessionIDs(t, s, pid(1))); diff != "" {
		t.Errorf("player 1's sessions after DeleteDeviceSessions (-want +got):\n%s", diff)
	}

	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeletePlayerSessions(ctx, pid(1))
		return err
	})
	if n != 2 {
		t.Errorf("DeletePlayerSessions = %d, want 2", n)
	}
	if got := playerSessionIDs(t, s, pid(1)); len(got) != 0 {
		t.Errorf("player 1's sessions after DeletePlayerSessions: %v, want none", got)
	}
	if diff := cmp.Diff([]string{"b2"}, playerSessionIDs(t, s, pid(2))); diff != "" {
		t.Errorf("player 2's sessions (-want +got):\n%s", diff)
	}
}

func testDeleteExpiredPlayerSessions(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	now := at(24 * time.Hour)
	withRefreshExpiry := func(id string, exp time.Time) *tandem.PlayerSession {
		sess := newPlayerSession(id, pid(1), at(time.Duration(len(id))*time.Second))
		sess.RefreshExpiresAt = exp
		// An expired access token alone does not end the session.
		sess.AccessExpiresAt = now.Add(-time.Hour)
		return sess
	}
	createPlayerSessions(t, s,
		withRefreshExpiry("expired", now.Add(-time.Microsecond)),
		withRefreshExpiry("at-now", now),
		withRefreshExpiry("live", now.Add(time.Hour)),
	)
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteExpiredPlayerSessions(ctx, now)
		return err
	})
	if n != 1 {
		t.Errorf("DeleteExpiredPlayerSessions = %d, want 1", n)
	}
	if diff := cmp.Diff([]string{"at-now", "live"}, playerSessionIDs(t, s, pid(1)), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("sessions left (-want +got):\n%s", diff)
	}
}

// wantLogin is l as a store returns it.
func wantLogin(l tandem.LoginRecord) *tandem.LoginRecord {
	l.At = norm(l.At)
	return &l
}

func loginRecords(t *testing.T, s tandem.Store, playerID string, limit int) []*tandem.LoginRecord {
	t.Helper()
	var records []*tandem.LoginRecord
	view(t, s, func(tx tandem.Tx) (err error) {
		records, err = tx.LoginRecords(t.Context(), playerID, limit)
		return err
	})
	return records
}

func testLoginRecords(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)))
	var added []tandem.LoginRecord
	for i := range 25 {
		l := tandem.LoginRecord{PlayerID: pid(1), At: at(time.Duration(i) * time.Minute), Method: tandem.LoginPassword,
			Address: fmt.Sprintf("192.0.2.%d", i), UserAgent: "ua <" + fmt.Sprint(i) + ">"}
		if i%2 == 0 {
			l.Method = tandem.LoginGuest
			l.DeviceID = fmt.Sprintf("device-%d", i)
		}
		added = append(added, l)
	}
	update(t, s, func(tx tandem.Tx) error {
		for i := range added {
			if err := tx.AddLoginRecord(ctx, &added[i]); err != nil {
				return err
			}
		}
		return tx.AddLoginRecord(ctx, &tandem.LoginRecord{PlayerID: pid(2), At: at(time.Hour), Method: tandem.LoginGuest})
	})
	newestFirst := func(n int) []*tandem.LoginRecord {
		var want []*tandem.LoginRecord
		for i := len(added) - 1; i >= len(added)-n; i-- {
			want = append(want, wantLogin(added[i]))
		}
		return want
	}
	for _, tc := range []struct{ limit, want int }{{0, 20}, {-5, 20}, {3, 3}, {100, 25}} {
		if diff := cmp.Diff(newestFirst(tc.want), loginRecords(t, s, pid(1), tc.limit), exactTime()); diff != "" {
			t.Errorf("LoginRecords(limit %d) (-want +got):\n%s", tc.limit, diff)
		}
	}

	wantCode(t, s, tandem.EConflict, "AddLoginRecord of a missing player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.AddLoginRecord(ctx, &tandem.LoginRecord{PlayerID: pid(404), At: at(0)})
	})

	// Records older than before go; one exactly at before stays.
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteOldLoginRecords(ctx, at(10*time.Minute))
		return err
	})
	if n != 10 {
		t.Errorf("DeleteOldLoginRecords = %d, want 10", n)
	}
	if diff := cmp.Diff(newestFirst(15), loginRecords(t, s, pid(1), 100), exactTime()); diff != "" {
		t.Errorf("LoginRecords after DeleteOldLoginRecords (-want +got):\n%s", diff)
	}

	update(t, s, func(tx tandem.Tx) error { return tx.DeleteLoginRecords(ctx, pid(1)) })
	if got := loginRecords(t, s, pid(1), 100); len(got) != 0 {
		t.Errorf("LoginRecords after DeleteLoginRecords = %d records, want none", len(got))
	}
	if got := loginRecords(t, s, pid(2), 100); len(got) != 1 {
		t.Errorf("the other player's records after DeleteLoginRecords = %d, want 1", len(got))
	}
}

// wantBan is b as a store returns it.
func wantBan(b tandem.Ban) *tandem.Ban {
	b.StartsAt = norm(b.StartsAt)
	b.EndsAt = norm(b.EndsAt)
	b.CreatedAt = norm(b.CreatedAt)
	b.LiftedAt = norm(b.LiftedAt)
	return &b
}

func createBans(t *testing.T, s tandem.Store, bans ...*tandem.Ban) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, b := range bans {
			if err := tx.CreateBan(t.Context(), b); err != nil {
				return err
			}
		}
		return nil
	})
}

func testBanRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	account := tandem.Ban{
		PlayerID:      pid(1),
		Scope:         tandem.BanAccount,
		Reason:        "cheating <script>",
		StartsAt:      at(time.Hour),
		EndsAt:        at(48 * time.Hour),
		CreatedBy:     7,
		CreatedByName: "mod",
		CreatedAt:     at(time.Minute),
	}
	device := tandem.Ban{
		PlayerID:      pid(1),
		Scope:         tandem.BanDevice,
		DeviceHash:    []byte{0, 0xfe, 0xff},
		StartsAt:      at(0),
		CreatedByName: "api-key",
		CreatedAt:     at(2 * time.Minute),
	}
	createBans(t, s, &account, &device)
	if account.ID <= 0 || device.ID <= account.ID {
		t.Fatalf("CreateBan set ids %d then %d, want positive and increasing", account.ID, device.ID)
	}
	view(t, s, func(tx tandem.Tx) error {
		for _, want := range []tandem.Ban{account, device} {
			got, err := tx.Ban(ctx, want.ID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(wantBan(want), got, exactTime()); diff != "" {
				t.Errorf("Ban(%d) (-want +got):\n%s", want.ID, diff)
			}
		}
		all, err := tx.Bans(ctx, pid(1))
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.Ban{wantBan(device), wantBan(account)}, all, exactTime()); diff != "" {
			t.Errorf("Bans, newest first (-want +got):\n%s", diff)
		}
		return nil
	})

	lifted := account
	lifted.LiftedAt = at(3 * time.Hour)
	lifted.LiftedBy = 8
	lifted.LiftedByName = "admin"
	// Not written by UpdateBan:
	lifted.Reason = "changed"
	lifted.EndsAt = time.Time{}
	lifted.CreatedBy = 9
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateBan(ctx, &lifted) })
	want := account
	want.LiftedAt = lifted.LiftedAt
	want.LiftedBy = lifted.LiftedBy
	want.LiftedByName = lifted.LiftedByName
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Ban(ctx, account.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantBan(want), got, exactTime()); diff != "" {
			t.Errorf("Ban after UpdateBan (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testBanErrors(t *testing.T, s tandem.Store) {
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	wantCode(t, s, tandem.EConflict, "CreateBan of a missing player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateBan(ctx, &tandem.Ban{PlayerID: pid(404), Scope: tandem.BanAccount, StartsAt: at(0)})
	})
	wantCode(t, s, tandem.ENotFound, "Ban", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Ban(ctx, 999)
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateBan", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateBan(ctx, &tandem.Ban{ID: 999, LiftedAt: at(0)})
	})
	// The database refuses bans the service must never make.
	for name, b := range map[string]*tandem.Ban{
		"a device ban without a device": {PlayerID: pid(1), Scope: tandem.BanDevice, StartsAt: at(0)},
		"an unknown scope":              {PlayerID: pid(1), Scope: "galaxy", StartsAt: at(0)},
	} {
		err := s.Update(t.Context(), func(tx tandem.Tx) error { return tx.CreateBan(t.Context(), b) })
		if err == nil {
			t.Errorf("CreateBan of %s succeeded", name)
		}
	}
	view(t, s, func(tx tandem.Tx) error {
		bans, err := tx.Bans(t.Context(), pid(1))
		if len(bans) != 0 {
			t.Errorf("Bans after refused bans: %d, want none", len(bans))
		}
		return err
	})
}

func testActiveBansAtBoundaries(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)), newPlayer(3, "c", "", at(0)))
	now := at(10 * time.Hour)
	dev1, dev2 := []byte("device-1-hash"), []byte("device-2-hash")
	var created int
	ban := func(playerID string, scope tandem.BanScope, device []byte, starts, ends time.Time) *tandem.Ban {
		created++
		return &tandem.Ban{PlayerID: playerID, Scope: scope, DeviceHash: device, StartsAt: starts, EndsAt: ends,
			Reason: fmt.Sprint("ban ", created), CreatedAt: at(time.Duration(created) * time.Minute)}
	}
	startsNow := ban(pid(1), tandem.BanAccount, nil, now, time.Time{})
	endsNow := ban(pid(1), tandem.BanAccount, nil, now.Add(-time.Hour), now)
	endsJustAfter := ban(pid(1), tandem.BanAccount, nil, now.Add(-time.Hour), now.Add(time.Microsecond))
	lifted := ban(pid(1), tandem.BanAccount, nil, now.Add(-time.Hour), time.Time{})
	lifted.LiftedAt, lifted.LiftedBy, lifted.LiftedByName = now.Add(-time.Minute), 1, "admin"
	future := ban(pid(1), tandem.BanAccount, nil, now.Add(time.Microsecond), time.Time{})
	permanent := ban(pid(1), tandem.BanAccount, nil, now.Add(-24*time.Hour), time.Time{})
	device1 := ban(pid(2), tandem.BanDevice, dev1, now.Add(-time.Hour), time.Time{})
	device2Ended := ban(pid(2), tandem.BanDevice, dev2, now.Add(-time.Hour), now)
	accountB := ban(pid(2), tandem.BanAccount, nil, now.Add(-time.Hour), time.Time{})
	// An account ban naming a device still keeps out only the account.
	accountBWithDevice := ban(pid(2), tandem.BanAccount, dev2, now.Add(-time.Hour), time.Time{})
	all := []*tandem.Ban{startsNow, endsNow, endsJustAfter, lifted, future, permanent, device1, device2Ended, accountB, accountBWithDevice}
	createBans(t, s, all...)

	for _, tc := range []struct {
		name     string
		playerID string
		device   []byte
		want     []*tandem.Ban
	}{
		{"account and its device", pid(1), dev1, []*tandem.Ban{device1, permanent, endsJustAfter, startsNow}},
		{"account without a device", pid(1), nil, []*tandem.Ban{permanent, endsJustAfter, startsNow}},
		{"account on a device whose ban ended", pid(1), dev2, []*tandem.Ban{permanent, endsJustAfter, startsNow}},
		{"unbanned account on a banned device", pid(3), dev1, []*tandem.Ban{device1}},
		{"device bans match by hash, not by player", pid(2), nil, []*tandem.Ban{accountBWithDevice, accountB}},
		{"unbanned account without a device", pid(3), nil, nil},
		{"unknown player", pid(404), []byte("other-device"), nil},
	} {
		var got []*tandem.Ban
		view(t, s, func(tx tandem.Tx) (err error) {
			got, err = tx.ActiveBans(ctx, tc.playerID, tc.device, now)
			return err
		})
		var want []*tandem.Ban
		for _, b := range tc.want {
			want = append(want, wantBan(*b))
		}
		if diff := cmp.Diff(want, got, exactTime(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ActiveBans, %s (-want +got):\n%s", tc.name, diff)
		}
		for _, b := range got {
			if !b.ActiveAt(now) {
				t.Errorf("ActiveBans, %s: ban %d (%s) is not ActiveAt(now)", tc.name, b.ID, b.Reason)
			}
		}
	}
	for _, b := range []*tandem.Ban{endsNow, lifted, future, device2Ended} {
		if wantBan(*b).ActiveAt(now) {
			t.Errorf("ban %q is ActiveAt(now), but the stores leave it out", b.Reason)
		}
	}
}

func testPlayerNotes(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)))
	first := tandem.PlayerNote{PlayerID: pid(1), AdminID: 3, AdminName: "mod", Text: "asked for a refund <b>", CreatedAt: at(time.Minute)}
	second := tandem.PlayerNote{PlayerID: pid(1), AdminName: "api-key", Text: "", CreatedAt: at(2 * time.Minute)}
	other := tandem.PlayerNote{PlayerID: pid(2), AdminID: 3, AdminName: "mod", Text: "other", CreatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error {
		for _, n := range []*tandem.PlayerNote{&first, &second, &other} {
			if err := tx.CreatePlayerNote(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if first.ID <= 0 || second.ID <= first.ID {
		t.Fatalf("CreatePlayerNote set ids %d then %d, want positive and increasing", first.ID, second.ID)
	}
	wantNote := func(n tandem.PlayerNote) *tandem.PlayerNote {
		n.CreatedAt = norm(n.CreatedAt)
		return &n
	}
	notes := func(playerID string) []*tandem.PlayerNote {
		var got []*tandem.PlayerNote
		view(t, s, func(tx tandem.Tx) (err error) {
			got, err = tx.PlayerNotes(ctx, playerID)
			return err
		})
		return got
	}
	if diff := cmp.Diff([]*tandem.PlayerNote{wantNote(second), wantNote(first)}, notes(pid(1)), exactTime()); diff != "" {
		t.Errorf("PlayerNotes, newest first (-want +got):\n%s", diff)
	}
	wantCode(t, s, tandem.EConflict, "CreatePlayerNote of a missing player", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreatePlayerNote(ctx, &tandem.PlayerNote{PlayerID: pid(404), Text: "x"})
	})

	update(t, s, func(tx tandem.Tx) error { return tx.DeletePlayerNotes(ctx, pid(1)) })
	if got := notes(pid(1)); len(got) != 0 {
		t.Errorf("PlayerNotes after DeletePlayerNotes = %d notes, want none", len(got))
	}
	if diff := cmp.Diff([]*tandem.PlayerNote{wantNote(other)}, notes(pid(2)), exactTime()); diff != "" {
		t.Errorf("the other player's notes (-want +got):\n%s", diff)
	}
}

func testPlayerListsOfUnknownPlayerAreEmpty(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	id := pid(404)
	view(t, s, func(tx tandem.Tx) error {
		lists := map[string]func() (int, error){
			"PlayerDevices":  func() (int, error) { l, err := tx.PlayerDevices(ctx, id); return len(l), err },
			"PlayerSessions": func() (int, error) { l, err := tx.PlayerSessions(ctx, id); return len(l), err },
			"LoginRecords":   func() (int, error) { l, err := tx.LoginRecords(ctx, id, 0); return len(l), err },
			"Bans":           func() (int, error) { l, err := tx.Bans(ctx, id); return len(l), err },
			"ActiveBans":     func() (int, error) { l, err := tx.ActiveBans(ctx, id, []byte("d"), at(0)); return len(l), err },
			"PlayerNotes":    func() (int, error) { l, err := tx.PlayerNotes(ctx, id); return len(l), err },
			"SearchPlayers": func() (int, error) {
				l, err := tx.SearchPlayers(ctx, tandem.PlayerFilter{})
				return len(l), err
			},
		}
		for name, list := range lists {
			if n, err := list(); err != nil || n != 0 {
				t.Errorf("%s of an unknown player: %d items, error %v; want none and no error", name, n, err)
			}
		}
		return nil
	})
	update(t, s, func(tx tandem.Tx) error {
		deletes := map[string]func() (int, error){
			"DeletePlayerDevices":  func() (int, error) { return 0, tx.DeletePlayerDevices(ctx, id) },
			"DeletePlayerSessions": func() (int, error) { return tx.DeletePlayerSessions(ctx, id) },
			"DeleteLoginRecords":   func() (int, error) { return 0, tx.DeleteLoginRecords(ctx, id) },
			"DeletePlayerNotes":    func() (int, error) { return 0, tx.DeletePlayerNotes(ctx, id) },
		}
		for name, del := range deletes {
			if n, err := del(); err != nil || n != 0 {
				t.Errorf("%s of an unknown player: %d, error %v; want 0 and no error", name, n, err)
			}
		}
		return nil
	})
}

func testDeleteOldUsedRefreshTokens(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)))
	orig := newPlayerSession("s1", pid(1), at(0))
	createPlayerSessions(t, s, orig)
	first := *orig
	first.RefreshHash, first.AccessHash, first.LastUsedAt = []byte("refresh-2"), []byte("access-2"), at(time.Minute)
	update(t, s, func(tx tandem.Tx) error { return tx.RotatePlayerSession(ctx, &first, orig.RefreshHash) })
	second := first
	second.RefreshHash, second.AccessHash, second.LastUsedAt = []byte("refresh-3"), []byte("access-3"), at(time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.RotatePlayerSession(ctx, &second, first.RefreshHash) })

	view(t, s, func(tx tandem.Tx) error {
		hash, usedAt, err := tx.LastUsedRefresh(ctx, orig.ID)
		if err != nil {
			return err
		}
		if string(hash) != string(first.RefreshHash) || !usedAt.Equal(norm(at(time.Hour))) {
			t.Errorf("LastUsedRefresh = %q at %v, want %q at %v", hash, usedAt, first.RefreshHash, norm(at(time.Hour)))
		}
		if _, _, err := tx.LastUsedRefresh(ctx, "no-such-session"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("LastUsedRefresh of a session that used none: %v, want not found", err)
		}
		return nil
	})
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteOldUsedRefreshTokens(ctx, at(time.Hour))
		return err
	})
	if n != 1 {
		t.Fatalf("DeleteOldUsedRefreshTokens removed %d, want the one used before the cut", n)
	}
	view(t, s, func(tx tandem.Tx) error {
		if _, err := tx.PlayerSessionByUsedRefresh(ctx, orig.RefreshHash); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("the old used token: %v, want not found", err)
		}
		if _, err := tx.PlayerSessionByUsedRefresh(ctx, first.RefreshHash); err != nil {
			t.Errorf("the recent used token: %v", err)
		}
		return nil
	})
}
