package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tandemhq/tandem"
)

// PasswordConfig sets the argon2id parameters and bounds the hashing pool.
// The defaults are OWASP's first recommendation (19 MiB, 2 passes, 1 lane).
type PasswordConfig struct {
	MemoryKiB  uint32 // default 19456
	Iterations uint32 // default 2
	Threads    uint8  // default 1
	// Workers hash at once (default GOMAXPROCS); Queue more may wait for
	// one (default 4 × Workers). A request beyond both is refused with
	// rate_limited (HTTP 429) rather than queued without bound.
	Workers int
	Queue   int
}

// passwordHasher runs argon2id with bounded concurrency. Hashing runs on the
// caller's goroutine once it holds a worker slot, so the pool owns no
// goroutines of its own.
type passwordHasher struct {
	cfg     PasswordConfig
	admit   chan struct{} // Workers + Queue slots: a request that gets none is refused
	workers chan struct{} // Workers slots: at most this many hash at once
}

func newPasswordHasher(cfg PasswordConfig) *passwordHasher {
	if cfg.MemoryKiB == 0 {
		cfg.MemoryKiB = 19456
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 2
	}
	if cfg.Threads == 0 {
		cfg.Threads = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4 * cfg.Workers
	}
	return &passwordHasher{
		cfg:     cfg,
		admit:   make(chan struct{}, cfg.Workers+cfg.Queue),
		workers: make(chan struct{}, cfg.Workers),
	}
}

// run runs fn in a worker slot, or refuses when every slot and queue place
// is taken.
func (h *passwordHasher) run(ctx context.Context, fn func()) error {
	select {
	case h.admit <- struct{}{}:
	default:
		return &tandem.Error{Code: tandem.ERateLimited, Message: "too many password checks at once; retry in a moment", RetryAfter: time.Second}
	}
	defer func() { <-h.admit }()
	select {
	case h.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.workers }()
	fn()
	return nil
}

// hash returns the PHC string of password with a fresh salt.
func (h *passwordHasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	var key []byte
	c := h.cfg
	err := h.run(ctx, func() { key = argon2.IDKey([]byte(password), salt, c.Iterations, c.MemoryKiB, c.Threads, 32) })
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, c.MemoryKiB, c.Iterations, c.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// verify reports whether password matches the PHC string encoded, with the
// parameters the string names (so old hashes keep working after a change).
func (h *passwordHasher) verify(ctx context.Context, encoded, password string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	var key []byte
	err = h.run(ctx, func() {
		key = argon2.IDKey([]byte(password), p.salt, p.iterations, p.memory, p.threads, uint32(len(p.key)))
	})
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

type phc struct {
	memory, iterations uint32
	threads            uint8
	salt, key          []byte
}

func parsePHC(s string) (phc, error) {
	var p phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, fmt.Errorf("password hash: not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.iterations, &p.threads); err != nil {
		return p, fmt.Errorf("password hash: bad parameters %q", parts[3])
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("password hash: bad salt")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) == 0 {
		return p, fmt.Errorf("password hash: bad key")
	}
	return p, nil
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
