package room

import (
	"testing"

	"go.uber.org/goleak"
)

// Every room goroutine a test starts must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
