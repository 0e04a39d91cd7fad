package loadtest

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/token"
)

func testSigner() *token.Signer {
	_, key, _ := ed25519.GenerateKey(nil)
	return token.NewSigner("test", key)
}

func TestConfigDefaultsPerScenario(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		clients  int
	}{{"idle", 10_000}, {"connect", 10_000}, {"echo", 4}, {"broadcast", 5000}, {"resume", 2}} {
		c := Config{Scenario: tc.scenario, Signer: testSigner()}
		if err := c.setDefaults(); err != nil {
			t.Fatalf("%s: %v", tc.scenario, err)
		}
		if c.Clients != tc.clients || c.Duration != 10*time.Second {
			t.Errorf("%s: %d clients for %s, want %d for 10s", tc.scenario, c.Clients, c.Duration, tc.clients)
		}
	}
}

func TestConfigRefusesUnboundedRuns(t *testing.T) {
	for name, c := range map[string]Config{
		"unknown scenario":     {Scenario: "soak"},
		"too many clients":     {Scenario: "idle", Clients: MaxClients + 1},
		"too long":             {Scenario: "echo", Duration: MaxDuration + time.Second},
		"negative duration":    {Scenario: "echo", Duration: -time.Second},
		"too many rooms":       {Scenario: "broadcast", Rooms: MaxRooms + 1},
		"rooms over relay max": {Scenario: "idle", RoomSize: 17},
		"rate too high":        {Scenario: "broadcast", Rate: MaxRate + 1},
		"payload too small":    {Scenario: "broadcast", Payload: 8},
		"clients in broadcast": {Scenario: "broadcast", Clients: 10},
		"too many iterations":  {Scenario: "resume", Iterations: MaxIterations + 1},
		"too many missed":      {Scenario: "resume", Missed: MaxMissed + 1},
		"concurrency":          {Scenario: "connect", Concurrency: MaxConcurrency + 1},
		"chat without a rate":  {Scenario: "chat"},
		"clients in chat":      {Scenario: "chat", Rate: 1, Clients: 10},
		"no queue":             {Scenario: "matchmaking"},
		"reconnect of one":     {Scenario: "reconnect", RoomSize: 1},
		"negative latency":     {Scenario: "echo", Faults: Faults{Latency: -time.Millisecond}},
		"tiny bandwidth":       {Scenario: "echo", Faults: Faults{Bandwidth: 10}},
		"resets too often":     {Scenario: "echo", Faults: Faults{ResetEvery: time.Millisecond}},
	} {
		c.Signer = testSigner()
		if err := c.setDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunRefusesANonLoopbackURLBeforeConnecting(t *testing.T) {
	_, err := Run(t.Context(), Config{Scenario: "echo", URL: "ws://10.0.0.1:7701/ws", Signer: testSigner()})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Run with a non-loopback URL: %v, want a ConfigError", err)
	}
}
