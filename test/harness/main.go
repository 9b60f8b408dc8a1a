package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
)

// Main runs a test package against the Docker engine it finds, with the simulator images
// built, and removes every container it made, also when a test fails or the run is
// interrupted. It sets *engine before the tests run. Without an engine (or busybox-static, which
// the images need) the package is skipped, unless RCE_E2E asks for the whole environment.
func Main(m *testing.M, engine **Engine) int {
	ctx := context.Background()
	start := time.Now()
	e, err := Connect(ctx)
	if err == nil {
		if _, err = os.Stat(busybox); err != nil {
			e.Client.Close()
			err = fmt.Errorf("%s is missing (apt-get install busybox-static)", busybox)
		}
	}
	if err != nil {
		if testenv.Required() {
			fmt.Fprintln(os.Stderr, "harness: RCE_E2E is set, but:", err)
			return 1
		}
		fmt.Println("e2e skipped:", err, "— make test installs and starts what is missing")
		return 0
	}
	engineTime := time.Since(start)
	e.RemoveLabelled() // left by an interrupted run

	stop := func() {
		e.RemoveLabelled()
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "harness: stop engine:", err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "harness: interrupted, removing test containers")
		stop()
		os.Exit(130)
	}()

	start = time.Now()
	if err := BuildSimImages(ctx, e.Client); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		stop()
		return 1
	}
	fmt.Fprintf(os.Stderr, "harness: engine %s ready in %s (started here: %v), simulator images built in %s\n",
		e.Host, engineTime.Round(time.Millisecond), e.Started(), time.Since(start).Round(time.Millisecond))
	*engine = e
	code := m.Run()
	stop()
	return code
}
