package service_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running (a
// store's pool or a maintenance loop that was not stopped).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
