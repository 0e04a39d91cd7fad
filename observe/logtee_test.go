package observe_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/observe"
)

func TestTeeWarningsPassesWarningsWithTheirAttributes(t *testing.T) {
	var out bytes.Buffer
	var got []observe.LogRecord
	inner := slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})
	log := slog.New(observe.TeeWarnings(inner, func(r observe.LogRecord) { got = append(got, r) }))

	log.Info("not passed on")
	log.With("node", "n1").WithGroup("room").Warn("slow tick", "id", "r1", slog.Group("tick", "ms", 12))
	log.Error("failed", "err", "boom")

	want := []observe.LogRecord{
		{Level: slog.LevelWarn, Message: "slow tick", Attrs: map[string]string{"node": "n1", "room.id": "r1", "room.tick.ms": "12"}},
		{Level: slog.LevelError, Message: "failed", Attrs: map[string]string{"err": "boom"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records passed on (-want +got):\n%s", diff)
	}
	// The inner handler keeps its own level: only the error is written.
	if lines := strings.Count(out.String(), "\n"); lines != 1 || !strings.Contains(out.String(), `"failed"`) {
		t.Errorf("inner handler wrote %q, want only the error", out.String())
	}
}
