package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/loadtest"
)

// runLoadtest is `tandem loadtest`: one scenario against a node on this
// machine, reported as a table or JSON.
func runLoadtest(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c loadtestConfig
	if err := parse(loadtestFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	rep, err := loadtest.Run(ctx, loadtest.Config{
		URL:         c.URL,
		Scenario:    c.Scenario,
		Codec:       c.Codec,
		Signer:      signer,
		Clients:     c.Clients,
		Rooms:       c.Rooms,
		RoomSize:    c.RoomSize,
		Duration:    c.Duration,
		Rate:        c.Rate,
		Window:      c.Window,
		Payload:     c.Payload,
		Concurrency: c.Concurrency,
		Iterations:  c.Iterations,
		Missed:      c.Missed,
		ServerPID:   c.ServerPID,
		Log:         stdio.Stderr,
	})
	if ce := (*loadtest.ConfigError)(nil); errors.As(err, &ce) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if c.JSON {
		return rep.WriteJSON(stdio.Stdout)
	}
	return rep.WriteTable(stdio.Stdout)
}
