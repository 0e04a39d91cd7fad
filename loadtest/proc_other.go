//go:build !unix

package loadtest

import "time"

// selfCPU is not measured on this system.
func selfCPU() time.Duration { return 0 }

// raiseFileLimit leaves the limit as it is on this system.
func raiseFileLimit(int) error { return nil }
