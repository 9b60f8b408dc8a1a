package rotation

import (
	"fmt"
	"os"
)

// StallEnv names a point where a job stops forever, for the tests that kill a process there:
// backup (archive written, not renamed), stop (container stopped, not journaled), remove
// (helper created, not started), start (started, not journaled), verify. Never set it in
// production.
const StallEnv = "RANCHER_CERT_EXPORTER_TEST_STALL"

// stall blocks forever at the named point when the environment asks for it; the unit tests
// replace it to "die" there.
var stall = func(point string) {
	if at := os.Getenv(StallEnv); at != "" && at == point {
		fmt.Fprintf(os.Stderr, "stalled at %s for a test\n", point)
		select {}
	}
}
