package service

import (
	"context"
	"testing"
)

// The admin login throughput of issue 4: argon2id with the default
// PasswordConfig (OWASP's 19 MiB, t=2, p=1), the cost of every login.
//
//	go test -run '^$' -bench Password -benchtime 20x ./service

const benchPassword = "correct horse battery staple"

// BenchmarkPasswordHashOWASP hashes one password after another: what one
// core gives.
func BenchmarkPasswordHashOWASP(b *testing.B) {
	h := newPasswordHasher(PasswordConfig{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.hash(ctx, benchPassword); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkPasswordVerifyOWASPParallel verifies on every core at once
// through the hashing pool (one worker per core, as the server runs it):
// the machine's login ceiling, memory bandwidth included.
func BenchmarkPasswordVerifyOWASPParallel(b *testing.B) {
	h := newPasswordHasher(PasswordConfig{})
	ctx := context.Background()
	encoded, err := h.hash(ctx, benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, err := h.verify(ctx, encoded, benchPassword)
			if err != nil || !ok {
				b.Errorf("verify: %v, %v", ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	b.ReportMetric(float64(h.cfg.Workers), "workers")
}
