package token_test

import (
	"testing"

	"go.uber.org/goleak"
)

// RemoteKeySet.Run and the test HTTP servers start goroutines: every one
// must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
