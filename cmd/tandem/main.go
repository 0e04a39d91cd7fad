// Command tandem is the Tandem program with the built-in room types. A game
// that adds its own room types, RPCs or hooks writes a main like this one
// with its app.Options (see examples/customgame).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tandemhq/tandem/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Getenv, app.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}, app.Options{})
	stop()
	os.Exit(code)
}
