package rotation

import (
	"fmt"
	"os"
)

// StallEnv names a point where a job stops forever, for the end-to-end tests that kill a
// process there: backup (archive written, not renamed), stop (container stopped, not
// journaled), remove (helper created, not started), start (started, not journaled), verify.
// The command turns it into Config.Stall; never set it in production.
const StallEnv = "RANCHER_CERT_EXPORTER_TEST_STALL"

// StallAt is a Config.Stall that blocks forever at the named point; nil for "".
func StallAt(point string) func(string) {
	if point == "" {
		return nil
	}
	return func(at string) {
		if at == point {
			fmt.Fprintf(os.Stderr, "stalled at %s for a test\n", point)
			select {}
		}
	}
}

// stall calls the configured crash point, if any.
func stall(hook func(string), point string) {
	if hook != nil {
		hook(point)
	}
}
