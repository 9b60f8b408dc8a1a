package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// Main runs a test package against a Docker engine with the simulator images built, and
// removes every container it made, also when a test fails or the run is interrupted. It sets
// *engine before the tests run.
func Main(m *testing.M, engine **Engine) int {
	ctx := context.Background()
	start := time.Now()
	e, err := StartEngine(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
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
