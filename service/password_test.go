package service

import (
	"context"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
)

func TestPasswordPoolRefusesWhenEveryWorkerAndQueuePlaceIsTaken(t *testing.T) {
	h := newPasswordHasher(PasswordConfig{MemoryKiB: 64, Iterations: 1, Workers: 1, Queue: 1})
	ctx := context.Background()
	block := make(chan struct{})
	done := make(chan error, 2)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	go func() { done <- h.run(ctx, func() { <-block }) }()
	waitFor("the first request never started hashing", func() bool { return len(h.workers) == 1 })
	go func() { done <- h.run(ctx, func() {}) }()
	waitFor("the second request never queued", func() bool { return len(h.admit) == 2 })
	if _, err := h.hash(ctx, "a password for the test"); tandem.ErrorCodeOf(err) != tandem.ERateLimited {
		t.Fatalf("third request: %v, want rate_limited", err)
	}
	close(block)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.hash(ctx, "a password for the test"); err != nil {
		t.Fatalf("after the pool drained: %v", err)
	}
}

func TestPasswordHashVerifiesWithTheParametersItNames(t *testing.T) {
	old := newPasswordHasher(PasswordConfig{MemoryKiB: 64, Iterations: 1})
	hash, err := old.hash(context.Background(), "a password for the test")
	if err != nil {
		t.Fatal(err)
	}
	current := newPasswordHasher(PasswordConfig{MemoryKiB: 128, Iterations: 2})
	for pw, want := range map[string]bool{"a password for the test": true, "another password": false} {
		if ok, err := current.verify(context.Background(), hash, pw); err != nil || ok != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}
