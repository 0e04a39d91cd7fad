package session

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRTTSummaryKeepsTheRecentWindow(t *testing.T) {
	s := &Session{}
	if got := s.RTTSummary(); got != nil {
		t.Errorf("summary before any measure: %v", got)
	}
	// An old slow sample leaves the window once rttWindow newer ones came.
	s.SetRTT(time.Second)
	for i := 1; i <= rttWindow; i++ {
		s.SetRTT(time.Duration(i) * time.Millisecond)
	}
	if diff := cmp.Diff([]float64{32, 63, 64}, s.RTTSummary()); diff != "" {
		t.Errorf("p50, p99, max in ms (-want +got):\n%s", diff)
	}
}
