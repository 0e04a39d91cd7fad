package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	tandem "github.com/tandemhq/tandem"
)

// appendAudit chains r onto the log the way service/ does: lock the head,
// link r to it, hash r, append it.
func appendAudit(ctx context.Context, tx tandem.Tx, r *tandem.AuditRecord) error {
	seq, hash, err := tx.LockAuditHead(ctx)
	if err != nil {
		return err
	}
	r.Seq = seq + 1
	r.PrevHash = hash
	r.Hash = r.ComputeHash()
	return tx.AppendAudit(ctx, r)
}

// appendRecords appends records in one transaction, setting their Seq,
// PrevHash and Hash.
func appendRecords(t *testing.T, s tandem.Store, records []*tandem.AuditRecord) {
	t.Helper()
	update(t, s, func(tx tandem.Tx) error {
		for _, r := range records {
			if err := appendAudit(t.Context(), tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// wantRecords is records as a store returns them.
func wantRecords(records []*tandem.AuditRecord) []*tandem.AuditRecord {
	want := make([]*tandem.AuditRecord, len(records))
	for i, r := range records {
		c := *r
		c.At = norm(c.At)
		want[i] = &c
	}
	return want
}

func seqs(records []*tandem.AuditRecord) []int64 {
	out := []int64{}
	for _, r := range records {
		out = append(out, r.Seq)
	}
	return out
}

func lockHead(t *testing.T, s tandem.Store) (int64, []byte) {
	t.Helper()
	var (
		seq  int64
		hash []byte
	)
	// LockAuditHead locks, so it needs a write transaction.
	update(t, s, func(tx tandem.Tx) error {
		var err error
		seq, hash, err = tx.LockAuditHead(t.Context())
		return err
	})
	return seq, hash
}

func auditRange(t *testing.T, s tandem.Store, from int64, limit int) []*tandem.AuditRecord {
	t.Helper()
	var records []*tandem.AuditRecord
	view(t, s, func(tx tandem.Tx) error {
		var err error
		records, err = tx.AuditRange(t.Context(), from, limit)
		return err
	})
	return records
}

func auditRecords(t *testing.T, s tandem.Store, f tandem.AuditFilter) []*tandem.AuditRecord {
	t.Helper()
	var records []*tandem.AuditRecord
	view(t, s, func(tx tandem.Tx) error {
		var err error
		records, err = tx.AuditRecords(t.Context(), f)
		return err
	})
	return records
}

// fullRecord sets every field, with text that is neither plain nor short.
func fullRecord(i int) *tandem.AuditRecord {
	return &tandem.AuditRecord{
		At:         at(time.Duration(i) * time.Second),
		ActorKind:  tandem.ActorAdmin,
		ActorID:    int64(i),
		ActorName:  fmt.Sprintf("admin-%d <b>", i),
		Action:     "role.update",
		TargetType: "role",
		TargetID:   fmt.Sprint(100 + i),
		Before:     `{"name":"old","permissions":["audit:read"]}`,
		After:      `{"name":"new'; DROP TABLE audit_log; --","permissions":[]}`,
		Address:    "2001:db8::1",
		Result:     tandem.AuditFailed,
		Error:      "conflict: name already taken",
	}
}

func testEmptyAuditChain(t *testing.T, s tandem.Store) {
	seq, hash := lockHead(t, s)
	if seq != 0 || hash != nil {
		t.Errorf("LockAuditHead of an empty chain = %d, %x; want 0, nil", seq, hash)
	}
	if got := auditRange(t, s, 1, 10); len(got) != 0 {
		t.Errorf("AuditRange of an empty chain = %v, want none", got)
	}
	if got := auditRecords(t, s, tandem.AuditFilter{}); len(got) != 0 {
		t.Errorf("AuditRecords of an empty chain = %v, want none", got)
	}
}

func testAppendAuditMovesTheHead(t *testing.T, s tandem.Store) {
	var records []*tandem.AuditRecord
	for i := range 3 {
		r := fullRecord(i)
		appendRecords(t, s, []*tandem.AuditRecord{r})
		records = append(records, r)

		seq, hash := lockHead(t, s)
		if seq != int64(i+1) {
			t.Errorf("head seq after %d appends = %d, want %d", i+1, seq, i+1)
		}
		if diff := cmp.Diff(r.Hash, hash); diff != "" {
			t.Errorf("head hash after %d appends is not the last record's (-want +got):\n%s", i+1, diff)
		}
	}
	if records[0].PrevHash != nil {
		t.Errorf("first record's PrevHash = %x, want nil", records[0].PrevHash)
	}
	got := auditRange(t, s, 1, 10)
	if diff := cmp.Diff(wantRecords(records), got, exactTime()); diff != "" {
		t.Errorf("records after appending (-want +got):\n%s", diff)
	}
	for i, r := range got {
		if diff := cmp.Diff(r.ComputeHash(), r.Hash); diff != "" {
			t.Errorf("record %d read back does not hash to its Hash (-want +got):\n%s", r.Seq, diff)
		}
		if i > 0 && !slices.Equal(r.PrevHash, got[i-1].Hash) {
			t.Errorf("record %d PrevHash %x, want the previous Hash %x", r.Seq, r.PrevHash, got[i-1].Hash)
		}
	}

	// A record whose Seq is taken is refused and moves nothing.
	err := s.Update(t.Context(), func(tx tandem.Tx) error {
		dup := fullRecord(9)
		dup.Seq = 2
		dup.PrevHash = records[0].Hash
		dup.Hash = dup.ComputeHash()
		return tx.AppendAudit(t.Context(), dup)
	})
	if err == nil {
		t.Error("AppendAudit of a taken Seq succeeded")
	}
	if seq, _ := lockHead(t, s); seq != 3 {
		t.Errorf("head seq after a refused append = %d, want 3", seq)
	}
}

func testAuditRange(t *testing.T, s tandem.Store) {
	var records []*tandem.AuditRecord
	for i := range 5 {
		records = append(records, fullRecord(i))
	}
	appendRecords(t, s, records)
	want := wantRecords(records)

	for _, tc := range []struct {
		from  int64
		limit int
		want  []*tandem.AuditRecord
	}{
		{1, 100, want},
		{0, 100, want},
		{3, 2, want[2:4]},
		{5, 2, want[4:]},
		{6, 10, nil},
	} {
		got := auditRange(t, s, tc.from, tc.limit)
		if diff := cmp.Diff(tc.want, got, exactTime(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("AuditRange(%d, %d) (-want +got):\n%s", tc.from, tc.limit, diff)
		}
	}
}

// searchRecords are records that differ in every searchable field. Their
// times are whole microseconds, so filter bounds need no rounding.
func searchRecords() []*tandem.AuditRecord {
	actors := []string{"alice", "bob", "carol"}
	actions := []string{"admin.create", "admin.update", "adminx.create", "role.create", "role.created", "session.login", "admin"}
	targetTypes := []string{"admin", "role", ""}
	results := []tandem.AuditResult{tandem.AuditOK, tandem.AuditDenied, tandem.AuditFailed}
	var records []*tandem.AuditRecord
	for i := range 24 {
		r := &tandem.AuditRecord{
			At:         searchTime(i),
			ActorKind:  tandem.ActorAdmin,
			ActorID:    int64(i%3 + 1),
			ActorName:  actors[i%3],
			Action:     actions[i%7],
			TargetType: targetTypes[(i/3)%3],
			TargetID:   fmt.Sprint(i % 4),
			Result:     results[(i/2)%3],
		}
		if r.Result != tandem.AuditOK {
			r.Error = "permission_denied: not allowed"
		}
		records = append(records, r)
	}
	return records
}

func searchTime(i int) time.Time {
	return at(time.Duration(i) * time.Minute).Truncate(time.Microsecond)
}

// filterRecords is the reference AuditRecords: what f selects from
// records (given oldest first), newest first.
func filterRecords(records []*tandem.AuditRecord, f tandem.AuditFilter) []*tandem.AuditRecord {
	var out []*tandem.AuditRecord
	for _, r := range slices.Backward(records) {
		switch {
		case f.ActorName != "" && r.ActorName != f.ActorName,
			strings.HasSuffix(f.Action, ".") && !strings.HasPrefix(r.Action, f.Action),
			f.Action != "" && !strings.HasSuffix(f.Action, ".") && r.Action != f.Action,
			f.TargetType != "" && r.TargetType != f.TargetType,
			f.TargetID != "" && r.TargetID != f.TargetID,
			f.Result != "" && r.Result != f.Result,
			!f.Since.IsZero() && r.At.Before(f.Since),
			!f.Until.IsZero() && !r.At.Before(f.Until),
			f.BeforeSeq > 0 && r.Seq >= f.BeforeSeq:
			continue
		}
		out = append(out, r)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	return out[:min(len(out), limit)]
}

func testAuditRecordsFilters(t *testing.T, s tandem.Store) {
	records := searchRecords()
	appendRecords(t, s, records)

	all := auditRecords(t, s, tandem.AuditFilter{})
	if diff := cmp.Diff(wantRecords(filterRecords(records, tandem.AuditFilter{})), all, exactTime()); diff != "" {
		t.Errorf("AuditRecords with no filter (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name   string
		filter tandem.AuditFilter
	}{
		{"actor", tandem.AuditFilter{ActorName: "bob"}},
		{"exact action", tandem.AuditFilter{Action: "admin.create"}},
		{"exact action is not a prefix", tandem.AuditFilter{Action: "role.create"}},
		{"action without a dot is exact", tandem.AuditFilter{Action: "admin"}},
		{"action prefix ending in a dot", tandem.AuditFilter{Action: "admin."}},
		{"action prefix with LIKE wildcards is literal", tandem.AuditFilter{Action: "a_min."}},
		{"action prefix with a percent sign is literal", tandem.AuditFilter{Action: "%."}},
		{"unknown action", tandem.AuditFilter{Action: "nothing.here"}},
		{"target type", tandem.AuditFilter{TargetType: "role"}},
		{"target type and id", tandem.AuditFilter{TargetType: "role", TargetID: "1"}},
		{"target id", tandem.AuditFilter{TargetID: "2"}},
		{"result", tandem.AuditFilter{Result: tandem.AuditDenied}},
		{"since is inclusive", tandem.AuditFilter{Since: searchTime(5)}},
		{"until is exclusive", tandem.AuditFilter{Until: searchTime(10)}},
		{"since and until", tandem.AuditFilter{Since: searchTime(5), Until: searchTime(10)}},
		{"before seq", tandem.AuditFilter{BeforeSeq: 10}},
		{"limit", tandem.AuditFilter{Limit: 3}},
		{"everything at once", tandem.AuditFilter{
			ActorName: "alice", Action: "admin.", Result: tandem.AuditOK,
			Since: searchTime(1), Until: searchTime(23), BeforeSeq: 22, Limit: 2,
		}},
	} {
		want := seqs(filterRecords(records, tc.filter))
		got := seqs(auditRecords(t, s, tc.filter))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: AuditRecords(%+v) seqs (-want +got):\n%s", tc.name, tc.filter, diff)
		}
	}
}

func testAuditRecordsPages(t *testing.T, s tandem.Store) {
	records := searchRecords()
	appendRecords(t, s, records)

	for _, f := range []tandem.AuditFilter{{Limit: 5}, {ActorName: "alice", Limit: 3}} {
		want := seqs(filterRecords(records, tandem.AuditFilter{ActorName: f.ActorName}))
		var got []int64
		for range len(records) + 1 {
			page := auditRecords(t, s, f)
			got = append(got, seqs(page)...)
			if len(page) < f.Limit {
				break
			}
			f.BeforeSeq = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pages of %d (actor %q) seqs (-want +got):\n%s", f.Limit, f.ActorName, diff)
		}
	}
}

func testAuditRecordsLimit(t *testing.T, s tandem.Store) {
	records := make([]*tandem.AuditRecord, 1001)
	for i := range records {
		records[i] = &tandem.AuditRecord{At: at(time.Duration(i) * time.Millisecond), ActorKind: tandem.ActorSystem,
			Action: "test.limit", Result: tandem.AuditOK}
	}
	appendRecords(t, s, records)

	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1000, 1000}, {5000, 1000}} {
		got := auditRecords(t, s, tandem.AuditFilter{Limit: tc.limit})
		if len(got) != tc.want {
			t.Errorf("AuditRecords with Limit %d returned %d records, want %d", tc.limit, len(got), tc.want)
			continue
		}
		if got[0].Seq != 1001 || got[len(got)-1].Seq != int64(1001-tc.want+1) {
			t.Errorf("AuditRecords with Limit %d returned seqs %d..%d, want 1001..%d",
				tc.limit, got[0].Seq, got[len(got)-1].Seq, 1001-tc.want+1)
		}
	}
}

func testAuditCheckpoints(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	wantCode(t, s, tandem.ENotFound, "LastAuditCheckpoint with none", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.LastAuditCheckpoint(ctx)
		return err
	})

	checkpoint := func(seq int64) *tandem.AuditCheckpoint {
		hash := sha256.Sum256(fmt.Append(nil, seq))
		return &tandem.AuditCheckpoint{
			Seq:       seq,
			Hash:      hash[:],
			At:        at(time.Duration(seq) * time.Second),
			KeyID:     "audit-key-1",
			Signature: slices.Repeat([]byte{byte(seq)}, 64),
		}
	}
	c10, c20 := checkpoint(10), checkpoint(20)
	// Added out of order: AuditCheckpoints orders by Seq.
	update(t, s, func(tx tandem.Tx) error { return tx.AddAuditCheckpoint(ctx, c20) })
	update(t, s, func(tx tandem.Tx) error { return tx.AddAuditCheckpoint(ctx, c10) })

	wantCheckpoint := func(c *tandem.AuditCheckpoint) *tandem.AuditCheckpoint {
		w := *c
		w.At = norm(c.At)
		return &w
	}
	view(t, s, func(tx tandem.Tx) error {
		all, err := tx.AuditCheckpoints(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*tandem.AuditCheckpoint{wantCheckpoint(c10), wantCheckpoint(c20)}, all, exactTime()); diff != "" {
			t.Errorf("AuditCheckpoints (-want +got):\n%s", diff)
		}
		last, err := tx.LastAuditCheckpoint(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantCheckpoint(c20), last, exactTime()); diff != "" {
			t.Errorf("LastAuditCheckpoint (-want +got):\n%s", diff)
		}
		return nil
	})

	wantCode(t, s, tandem.EConflict, "AddAuditCheckpoint with a taken Seq", func(ctx context.Context, tx tandem.Tx) error {
		return tx.AddAuditCheckpoint(ctx, checkpoint(20))
	})
}

func testConcurrentAppends(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	const writers, each = 8, 25
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := s.Update(ctx, func(tx tandem.Tx) error {
					return appendAudit(ctx, tx, &tandem.AuditRecord{
						At:        at(time.Duration(i) * time.Millisecond),
						ActorKind: tandem.ActorSystem,
						Action:    "test.concurrent",
						TargetID:  fmt.Sprintf("%d/%d", w, i),
						Result:    tandem.AuditOK,
					})
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d, append %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	got := auditRange(t, s, 1, 2*writers*each)
	if len(got) != writers*each {
		t.Fatalf("chain has %d records, want %d", len(got), writers*each)
	}
	targets := map[string]bool{}
	for i, r := range got {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d: the chain has a gap", i+1, r.Seq)
		}
		var prev []byte
		if i > 0 {
			prev = got[i-1].Hash
		}
		if !slices.Equal(r.PrevHash, prev) {
			t.Fatalf("record %d PrevHash %x, want the previous Hash %x: the chain forked", r.Seq, r.PrevHash, prev)
		}
		if !slices.Equal(r.Hash, r.ComputeHash()) {
			t.Fatalf("record %d does not hash to its Hash", r.Seq)
		}
		if targets[r.TargetID] {
			t.Fatalf("record %s stored twice", r.TargetID)
		}
		targets[r.TargetID] = true
	}
	seq, hash := lockHead(t, s)
	if seq != writers*each || !slices.Equal(hash, got[len(got)-1].Hash) {
		t.Errorf("head = %d, %x; want %d and the last record's hash", seq, hash, writers*each)
	}
}
