// Package e2e holds Tandem's end-to-end tests. They run the built programs
// as separate processes, the way they run in production and in the README:
// `tandem dev` and the custom-game example (examples/customgame) on random
// ports with a temporary data directory, driven by the Go SDK and by the
// example client (examples/client), and stopped with SIGTERM.
//
// ./scripts/test builds cmd/tandem once and names it in TANDEM_BIN; without
// it TestMain builds it. TestMain always builds the two examples. The
// package has no non-test code besides this file.
package e2e
