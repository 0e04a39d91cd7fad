package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// bins are the programs under test.
var bins struct {
	tandem     string // cmd/tandem, or TANDEM_BIN
	customgame string // examples/customgame
	client     string // examples/client
	natsServer string // github.com/nats-io/nats-server/v2, the version of go.mod
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tandem-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	code := m.Run()
	// The tests run programs, but the SDK clients they talk through run in
	// this process: every one of their goroutines must be gone.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines leaked:", err)
			code = 1
		}
	}
	return code
}

// build builds the programs the tests run into dir with one go build, and
// takes tandem from TANDEM_BIN when it is set.
func build(dir string) error {
	const module = "github.com/tandemhq/tandem"
	// nats-server of go.mod's version: never the older server of the machine.
	pkgs := []string{module + "/examples/customgame", module + "/examples/client", "github.com/nats-io/nats-server/v2"}
	bins.customgame = filepath.Join(dir, "customgame")
	bins.natsServer = filepath.Join(dir, "nats-server")
	bins.client = filepath.Join(dir, "client")
	if bin := os.Getenv("TANDEM_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		bins.tandem = abs
	} else {
		pkgs = append(pkgs, module+"/cmd/tandem")
		bins.tandem = filepath.Join(dir, "tandem")
	}
	// A directory with a trailing separator makes go build write each main
	// package there under its own name.
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}
