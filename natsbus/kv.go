package natsbus

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tandemhq/tandem"
)

// PutNode writes n; the entry expires NodeTTL after its last write.
func (b *Bus) PutNode(ctx context.Context, n tandem.NodeInfo) error {
	return b.putJSON(ctx, b.nodes, n.ID, n)
}

// RemoveNode deletes a node's entry.
func (b *Bus) RemoveNode(ctx context.Context, id string) error {
	return b.remove(ctx, b.nodes, id)
}

// Nodes lists the live nodes by id: every entry the registry holds. The
// bucket's TTL removes an entry not rewritten in time, so presence is
// liveness; the entry's Heartbeat is the node's clock and is not compared
// with this process's (a node whose clock drifts is not declared down).
func (b *Bus) Nodes(ctx context.Context) ([]tandem.NodeInfo, error) {
	return listJSON(ctx, b, b.nodes, jetstream.AllKeys, decodeJSON[tandem.NodeInfo],
		func(a, c tandem.NodeInfo) int { return strings.Compare(a.ID, c.ID) })
}

// Node returns one live node; ENotFound when it is not registered.
func (b *Bus) Node(ctx context.Context, id string) (tandem.NodeInfo, error) {
	var n tandem.NodeInfo
	_, err := b.getJSON(ctx, b.nodes, id, &n)
	return n, notFound(err, "node %q is not registered", id)
}

// WatchNodes calls fn with every node entry, then with every change;
// deletes (removed, or expired after NodeTTL) come with only ID set.
func (b *Bus) WatchNodes(ctx context.Context, fn func(n tandem.NodeInfo, deleted bool)) (stop func(), err error) {
	return b.watch(ctx, b.nodes, false, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			fn(tandem.NodeInfo{ID: idOf(e.Key())}, true)
			return
		}
		var n tandem.NodeInfo
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			b.log.Warn("malformed node entry", "key", e.Key(), "err", err)
			return
		}
		fn(n, false)
	})
}

// WatchRooms calls fn with every directory entry, then with every change;
// deletes come with only ID set.
func (b *Bus) WatchRooms(ctx context.Context, fn func(r tandem.RoomEntry, deleted bool)) (stop func(), err error) {
	return b.watch(ctx, b.rooms, false, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			fn(tandem.RoomEntry{ID: idOf(e.Key())}, true)
			return
		}
		var r tandem.RoomEntry
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			b.log.Warn("malformed room entry", "key", e.Key(), "err", err)
			return
		}
		fn(r, false)
	})
}

// PutRoom writes r's directory entry.
func (b *Bus) PutRoom(ctx context.Context, r tandem.RoomEntry) error {
	return b.putJSON(ctx, b.rooms, r.ID, r)
}

// RemoveRoom deletes a room's entry.
func (b *Bus) RemoveRoom(ctx context.Context, id string) error {
	return b.remove(ctx, b.rooms, id)
}

// Room returns one room; ENotFound when the directory has none.
func (b *Bus) Room(ctx context.Context, id string) (tandem.RoomEntry, error) {
	var r tandem.RoomEntry
	_, err := b.getJSON(ctx, b.rooms, id, &r)
	return r, notFound(err, "room %q is not in the directory", id)
}

// Rooms lists every room by id.
func (b *Bus) Rooms(ctx context.Context) ([]tandem.RoomEntry, error) {
	return listJSON(ctx, b, b.rooms, jetstream.AllKeys, decodeJSON[tandem.RoomEntry],
		func(a, c tandem.RoomEntry) int { return strings.Compare(a.ID, c.ID) })
}

// ClaimPresence makes p the player's live session by compare-and-swap,
// retried until it holds, and returns the entry it replaced. The newest
// session wins: an entry naming another session that started after p
// (Since) is left in place and returned with an EConflict error, so that
// an older session's claim delayed on its way never pushes out a newer
// one.
func (b *Bus) ClaimPresence(ctx context.Context, p tandem.Presence) (tandem.Presence, error) {
	k := key(p.PlayerID)
	data, err := json.Marshal(p)
	if err != nil {
		return tandem.Presence{}, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return tandem.Presence{}, err
		}
		e, err := b.presence.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = b.presence.Create(ctx, k, data)
			if err == nil {
				return tandem.Presence{}, nil
			}
			if casLost(err) {
				continue
			}
			return tandem.Presence{}, err
		}
		if err != nil {
			return tandem.Presence{}, err
		}
		var prev tandem.Presence
		if err := json.Unmarshal(e.Value(), &prev); err != nil {
			b.log.Warn("malformed presence entry replaced", "player", p.PlayerID, "err", err)
			prev = tandem.Presence{}
		}
		if prev.SessionID != p.SessionID && prev.Since.After(p.Since) {
			return prev, tandem.Errorf(tandem.EConflict, "player %q has a newer session", p.PlayerID)
		}
		if _, err = b.presence.Update(ctx, k, data, e.Revision()); err == nil {
			return prev, nil
		}
		if !casLost(err) {
			return tandem.Presence{}, err
		}
	}
}

// ReleasePresence deletes the player's entry if it still names sessionID.
func (b *Bus) ReleasePresence(ctx context.Context, playerID, sessionID string) error {
	k := key(playerID)
	for {
		var p tandem.Presence
		rev, err := b.getJSON(ctx, b.presence, playerID, &p)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.SessionID != sessionID {
			return nil
		}
		err = b.presence.Purge(ctx, k, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
		if err == nil || !casLost(err) {
			return err
		}
		// Changed since the read: look again, it may be a newer session.
	}
}

// Presence returns the player's entry; ENotFound when offline.
func (b *Bus) Presence(ctx context.Context, playerID string) (tandem.Presence, error) {
	var p tandem.Presence
	_, err := b.getJSON(ctx, b.presence, playerID, &p)
	return p, notFound(err, "player %q is offline", playerID)
}

// WatchPresence calls fn for every change made after the call.
func (b *Bus) WatchPresence(ctx context.Context, fn func(p tandem.Presence, deleted bool)) (stop func(), err error) {
	return b.watch(ctx, b.presence, true, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			fn(tandem.Presence{PlayerID: idOf(e.Key())}, true)
			return
		}
		var p tandem.Presence
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			b.log.Warn("malformed presence entry", "key", e.Key(), "err", err)
			return
		}
		fn(p, false)
	})
}

// wireSeat is a seat as stored and sent: Seat keeps its token out of JSON
// so that nothing else serialises it by accident.
type wireSeat struct {
	tandem.Seat
	Token string `json:"token,omitempty"`
}

// CreateSeat stores s under its token until s.ExpiresAt.
func (b *Bus) CreateSeat(ctx context.Context, s tandem.Seat) error {
	if s.Token == "" {
		return tandem.Errorf(tandem.EInvalid, "seat without a token")
	}
	data, err := json.Marshal(s) // without the token: the key is the token
	if err != nil {
		return err
	}
	_, err = b.seats.Create(ctx, key(s.Token), data, jetstream.KeyTTL(ttlFor(time.Until(s.ExpiresAt))))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return tandem.Errorf(tandem.EConflict, "a seat with this token exists")
	}
	return err
}

// ClaimSeat takes the seat of token once: of many concurrent claimers,
// one wins the compare-and-swap delete; the others, anyone after the seat
// expired, and a player or node the seat is not for, get ENotFound (the
// last leaving the seat to its owner).
func (b *Bus) ClaimSeat(ctx context.Context, token, playerID, node string) (tandem.Seat, error) {
	gone := tandem.Errorf(tandem.ENotFound, "no such seat reservation (unknown, expired or already used)")
	k := key(token)
	e, err := b.seats.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tandem.Seat{}, gone
	}
	if err != nil {
		return tandem.Seat{}, err
	}
	var s tandem.Seat
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return tandem.Seat{}, fmt.Errorf("malformed seat entry: %w", err)
	}
	if !time.Now().Before(s.ExpiresAt) {
		return tandem.Seat{}, gone // the TTL removes it
	}
	if s.PlayerID != playerID || s.Node != node {
		return tandem.Seat{}, gone // shown by someone else: still its owner's
	}
	if err := b.seats.Purge(ctx, k, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(markerTTL)); err != nil {
		if casLost(err) {
			return tandem.Seat{}, gone
		}
		return tandem.Seat{}, err
	}
	s.Token = token
	return s, nil
}

// PutBan writes b's entry: permanent when Until is zero, otherwise
// expiring banGrace after Until.
//
// Per-key TTLs exist only on a key's first revision through the key-value
// API (Create), and replacing an entry by delete-then-create would show
// watchers the ban lifted for a moment. So PutBan publishes the entry
// straight to the bucket's subject with the message TTL header: one
// message replaces the old revision atomically, with or without a TTL.
func (b *Bus) PutBan(ctx context.Context, ban tandem.BanEntry) error {
	var opts []jetstream.PublishOpt
	if !ban.Until.IsZero() {
		left := time.Until(ban.Until.Add(banGrace))
		if left <= 0 {
			return b.DeleteBan(ctx, ban.PlayerID) // long over: nothing to enforce
		}
		opts = append(opts, jetstream.WithMsgTTL(ttlFor(left)))
	}
	data, err := json.Marshal(ban)
	if err != nil {
		return err
	}
	_, err = b.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + bucketBans + "." + key(ban.PlayerID), Data: data}, opts...)
	return err
}

// DeleteBan lifts playerID's entry.
func (b *Bus) DeleteBan(ctx context.Context, playerID string) error {
	return b.remove(ctx, b.bans, playerID)
}

// WatchBans calls fn with every entry, then with every change; deletes
// (lifted or expired) come with only PlayerID set.
func (b *Bus) WatchBans(ctx context.Context, fn func(b tandem.BanEntry, deleted bool)) (stop func(), err error) {
	// Ban keys are one token (key never makes a dot), revocation keys
	// two: "*" passes bans only.
	return b.watchKeys(ctx, b.bans, "*", false, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			fn(tandem.BanEntry{PlayerID: idOf(e.Key())}, true)
			return
		}
		var ban tandem.BanEntry
		if err := json.Unmarshal(e.Value(), &ban); err != nil {
			b.log.Warn("malformed ban entry", "key", e.Key(), "err", err)
			return
		}
		fn(ban, false)
	})
}

// revocationPrefix starts the revocation keys of the bans bucket. key
// never makes a dot, so "revoked.<key>" cannot be a ban key.
const revocationPrefix = "revoked."

// PutRevocation writes r's entry (replacing the player's previous one),
// expiring banGrace after r.ExpiresAt; permanent when ExpiresAt is zero.
// Like PutBan it publishes straight to the bucket's subject, so that the
// replacement is one message with its own TTL.
func (b *Bus) PutRevocation(ctx context.Context, r tandem.Revocation) error {
	if r.PlayerID == "" {
		return tandem.Errorf(tandem.EInvalid, "revocation without a player")
	}
	subject := "$KV." + bucketBans + "." + revocationPrefix + key(r.PlayerID)
	var opts []jetstream.PublishOpt
	if !r.ExpiresAt.IsZero() {
		left := time.Until(r.ExpiresAt.Add(banGrace))
		if left <= 0 {
			return nil // every token it refuses has expired anyway
		}
		opts = append(opts, jetstream.WithMsgTTL(ttlFor(left)))
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = b.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
	return err
}

// WatchRevocations calls fn with every revocation, then with every
// change; an expired one comes as deleted with only PlayerID set.
func (b *Bus) WatchRevocations(ctx context.Context, fn func(r tandem.Revocation, deleted bool)) (stop func(), err error) {
	return b.watchKeys(ctx, b.bans, revocationPrefix+"*", false, func(e jetstream.KeyValueEntry) {
		id := idOf(strings.TrimPrefix(e.Key(), revocationPrefix))
		if deletion(e) {
			fn(tandem.Revocation{PlayerID: id}, true)
			return
		}
		var r tandem.Revocation
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			b.log.Warn("malformed revocation entry", "key", e.Key(), "err", err)
			return
		}
		fn(r, false)
	})
}

const currentKeys = "current"

// PutKeys replaces the published key set.
func (b *Bus) PutKeys(ctx context.Context, keys map[string]ed25519.PublicKey) error {
	m := make(map[string]string, len(keys))
	for kid, pub := range keys {
		m[kid] = base64.RawURLEncoding.EncodeToString(pub)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = b.keys.Put(ctx, currentKeys, data)
	return err
}

// WatchKeys calls fn with the current set (if any) and every later one.
func (b *Bus) WatchKeys(ctx context.Context, fn func(map[string]ed25519.PublicKey)) (stop func(), err error) {
	return b.watch(ctx, b.keys, false, func(e jetstream.KeyValueEntry) {
		if deletion(e) || e.Key() != currentKeys {
			return
		}
		var m map[string]string
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			b.log.Warn("malformed key set", "err", err)
			return
		}
		keys := make(map[string]ed25519.PublicKey, len(m))
		for kid, s := range m {
			pub, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil || len(pub) != ed25519.PublicKeySize {
				b.log.Warn("malformed public key in the key set", "kid", kid)
				continue
			}
			keys[kid] = ed25519.PublicKey(pub)
		}
		fn(keys)
	})
}

func (b *Bus) putJSON(ctx context.Context, kv jetstream.KeyValue, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, key(id), data)
	return err
}

// getJSON reads id's entry into v and returns its revision;
// jetstream.ErrKeyNotFound when there is none.
func (b *Bus) getJSON(ctx context.Context, kv jetstream.KeyValue, id string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key(id))
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("malformed entry %s in %s: %w", e.Key(), kv.Bucket(), err)
	}
	return e.Revision(), nil
}

// remove purges id's entry, leaving a marker that expires (a plain delete
// marker would stay forever).
func (b *Bus) remove(ctx context.Context, kv jetstream.KeyValue, id string) error {
	return kv.Purge(ctx, key(id), jetstream.PurgeTTL(markerTTL))
}

// notFound turns jetstream.ErrKeyNotFound into an ENotFound error.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tandem.Errorf(tandem.ENotFound, format, args...)
	}
	return err
}

// casLost reports whether err is a lost compare-and-swap: the key exists
// or changed since it was read.
func casLost(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func deletion(e jetstream.KeyValueEntry) bool {
	op := e.Operation()
	return op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge
}

// listKeys returns every present entry of kv whose key matches filter
// (jetstream.AllKeys: all): one ordered watch up to its initial-values
// mark, not a read per key, so that listing thousands of entries stays
// quick.
func listKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer stopWatcher(w)
	var entries []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, tandem.Errorf(tandem.EUnavailable, "listing %s: the watch ended", kv.Bucket())
			}
			if e == nil {
				return entries, nil
			}
			entries = append(entries, e)
		}
	}
}

// listJSON lists the entries of kv whose key matches filter, decoded,
// sorted by compare; an entry that does not decode is skipped with a
// warning.
func listJSON[T any](ctx context.Context, b *Bus, kv jetstream.KeyValue, filter string,
	decode func(jetstream.KeyValueEntry) (T, error), compare func(a, c T) int) ([]T, error) {
	entries, err := listKeys(ctx, kv, filter)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		v, err := decode(e)
		if err != nil {
			b.log.Warn("malformed entry", "bucket", kv.Bucket(), "key", e.Key(), "err", err)
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, compare)
	return out, nil
}

// decodeJSON decodes an entry's JSON value.
func decodeJSON[T any](e jetstream.KeyValueEntry) (T, error) {
	var v T
	err := json.Unmarshal(e.Value(), &v)
	return v, err
}

// watch calls fn for kv's entries: with updatesOnly, for changes made
// after the call; otherwise for the present entries (not deletes), before
// returning, and then for every change. The watch outlives a lost
// connection or server restart: when nats.go gives up its subscription,
// the watch starts again after the last revision it passed on; when the
// bucket's stream starts again below that revision (the server lost its
// store, the bucket was recreated), from the beginning.
func (b *Bus) watch(ctx context.Context, kv jetstream.KeyValue, updatesOnly bool, fn func(jetstream.KeyValueEntry)) (stop func(), err error) {
	return b.watchKeys(ctx, kv, jetstream.AllKeys, updatesOnly, fn)
}

// watchKeys is watch for the keys matching filter (a subject pattern).
func (b *Bus) watchKeys(ctx context.Context, kv jetstream.KeyValue, filter string, updatesOnly bool, fn func(jetstream.KeyValueEntry)) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	var last uint64 // the last revision passed on (or, at first, seen)
	var w jetstream.KeyWatcher
	if updatesOnly {
		// Resuming after the stream's last sequence gives "changes after
		// the call" with a start point a restarted watch can reuse.
		st, err := kv.Status(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			last = s.StreamInfo().State.LastSeq
		}
		w, err = kv.Watch(wctx, filter, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(last+1))
		if err != nil {
			cancel()
			return nil, err
		}
	} else {
		w, err = kv.Watch(wctx, filter)
		if err != nil {
			cancel()
			return nil, err
		}
	initial:
		for {
			select {
			case <-ctx.Done():
				stopWatcher(w)
				cancel()
				return nil, ctx.Err()
			case e, ok := <-w.Updates():
				if !ok {
					cancel()
					return nil, tandem.Errorf(tandem.EUnavailable, "watching %s: the watch ended", kv.Bucket())
				}
				if e == nil {
					break initial
				}
				last = max(last, e.Revision())
				if !deletion(e) {
					fn(e)
				}
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { stopWatcher(w) }()
		check := time.NewTicker(resetCheck)
		defer check.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-check.C:
				// nats.go rides out a lost store without ending the watch,
				// and then waits for revisions after the old last: never
				// seen until the new stream grows past it.
				if last == 0 || restartPoint(wctx, kv, last) != 0 {
					continue
				}
				b.log.Warn("a bucket's stream started again (its store was lost?): watching it from the start", "bucket", kv.Bucket())
				stopWatcher(w)
			case e, ok := <-w.Updates():
				if ok {
					// nil: an initial-values mark. A revision not after the
					// last is a redelivery, unless the stream started again
					// (the store was lost): then it is new.
					if e != nil && (e.Revision() > last || restartPoint(wctx, kv, last) == 0) {
						last = e.Revision()
						fn(e)
					}
					continue
				}
			}
			// The subscription ended: the connection closed, or nats.go
			// gave it up (a server restart it could not ride out).
			if b.nc.IsClosed() {
				return
			}
			b.log.Info("key-value watch ended, restarting it", "bucket", kv.Bucket(), "after_revision", last)
			for n := 0; ; n++ {
				if sleep(wctx, backoff(n)) != nil || b.nc.IsClosed() {
					return
				}
				last = restartPoint(wctx, kv, last)
				nw, err := kv.Watch(wctx, filter, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(last+1))
				if err == nil {
					w = nw
					break
				}
				b.log.Info("restarting a key-value watch failed", "bucket", kv.Bucket(), "err", err)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}, nil
}

// resetCheck is how often a watch checks that its bucket's stream has not
// started again below the revisions it has seen.
const resetCheck = 5 * time.Second

// restartPoint is the revision a restarted watch resumes after: last,
// unless the bucket's stream now ends before it (the store was lost or
// the bucket recreated), in which case the watch starts again from the
// beginning: resuming after last would skip every entry written since.
func restartPoint(ctx context.Context, kv jetstream.KeyValue, last uint64) uint64 {
	st, err := kv.Status(ctx)
	if err != nil {
		return last // the next attempt asks again
	}
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok && s.StreamInfo().State.LastSeq < last {
		return 0
	}
	return last
}

// stopWatcher stops w and drains its channel until nats.go closes it:
// nats.go's delivery goroutine blocks on a full channel, and would never
// end if nobody read it.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(5 * time.Second) // never hang a caller's stop on nats.go
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
