package loadtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a scenario starts (readers, senders, the in-process
// node's) must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
