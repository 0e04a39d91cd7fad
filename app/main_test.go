package app

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running (a
// server, a pool or a worker that was not stopped).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
