package tandem

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// AuditResult says how an audited action ended.
type AuditResult string

// The audit results.
const (
	AuditOK     AuditResult = "ok"     // the action was done
	AuditDenied AuditResult = "denied" // the caller lacked the permission (or MFA, or re-authentication)
	AuditFailed AuditResult = "failed" // the action was allowed but failed (bad input, conflict, error)
)

// ActorKind says who did an audited action.
type ActorKind string

// The actor kinds.
const (
	ActorAdmin     ActorKind = "admin"     // an admin through the UI or the API
	ActorAPIKey    ActorKind = "apikey"    // a program with an admin API key
	ActorCLI       ActorKind = "cli"       // someone with shell access to the server (tandem admin create, …)
	ActorSystem    ActorKind = "system"    // the server itself (tandem dev's first admin)
	ActorAnonymous ActorKind = "anonymous" // nobody logged in yet (failed logins)
	ActorPlayer    ActorKind = "player"    // a player acting on their own account (only its id is recorded)
)

// AuditRecord is one entry of the append-only audit log. Records form a hash
// chain: each Hash covers the record and the previous record's hash, so an
// edited, removed or inserted record breaks every hash after it; signed
// checkpoints of the head catch a rewritten chain and a truncated tail.
type AuditRecord struct {
	// Seq numbers records from 1 without gaps.
	Seq int64
	// At has microsecond precision (both databases keep exactly that).
	At         time.Time
	ActorKind  ActorKind
	ActorID    int64 // the admin or API key id; 0 for cli, system and anonymous
	ActorName  string
	Action     string // "admin.create", "role.update", "session.login", …
	TargetType string // "admin", "role", "apikey", …; empty if none
	TargetID   string
	// Before and After are JSON documents (or empty): the target's state
	// around the change, without secrets.
	Before  string
	After   string
	Address string // the client address, as --trusted-proxies decided
	Result  AuditResult
	// Error is "code: message" of a denied or failed action.
	Error    string
	PrevHash []byte
	Hash     []byte
}

// ComputeHash returns the SHA-256 of the record's fields and PrevHash in a
// fixed, length-prefixed encoding. It ignores r.Hash.
func (r *AuditRecord) ComputeHash() []byte {
	h := sha256.New()
	var n [8]byte
	writeInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	writeStr := func(s string) {
		writeInt(int64(len(s)))
		h.Write([]byte(s))
	}
	h.Write([]byte("tandem.audit.v1"))
	writeInt(r.Seq)
	writeInt(r.At.UnixMicro())
	writeStr(string(r.ActorKind))
	writeInt(r.ActorID)
	writeStr(r.ActorName)
	writeStr(r.Action)
	writeStr(r.TargetType)
	writeStr(r.TargetID)
	writeStr(r.Before)
	writeStr(r.After)
	writeStr(r.Address)
	writeStr(string(r.Result))
	writeStr(r.Error)
	writeStr(string(r.PrevHash))
	return h.Sum(nil)
}

// AuditCheckpoint is a signed statement that the chain had Seq records and
// ended with Hash. The signing key lives in the server's configuration, never
// in the database, so whoever can write the database cannot forge one.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	At        time.Time
	KeyID     string
	Signature []byte
}

// SignedBytes returns what the checkpoint's signature covers.
func (c *AuditCheckpoint) SignedBytes() []byte {
	b := []byte("tandem.audit.checkpoint.v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixMicro()))
	b = append(b, c.Hash...)
	b = append(b, c.KeyID...)
	return b
}

// AuditFilter selects audit records; zero fields match everything. Records
// come newest first.
type AuditFilter struct {
	ActorName  string // exact
	Action     string // exact, or a prefix ending in "." ("admin." matches admin.create)
	TargetType string
	TargetID   string
	Result     AuditResult
	Since      time.Time // At >= Since
	Until      time.Time // At < Until
	BeforeSeq  int64     // Seq < BeforeSeq: the cursor for the next page
	Limit      int       // at most this many (the store caps it at 1000; 0 means 100)
}
