package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Logs returns stdout and stderr of a container, as `docker logs` prints them.
func (e *Engine) Logs(t testing.TB, id string) string {
	t.Helper()
	out, err := e.logs(id)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *Engine) logs(id string) (string, error) {
	res, err := e.Client.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", fmt.Errorf("logs of %s: %w", id, err)
	}
	defer res.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, res); err != nil && err != io.EOF {
		return "", fmt.Errorf("logs of %s: %w", id, err)
	}
	return out.String(), nil
}

// AwaitLog waits until the container's log contains substr, for what is shared between tests.
func (e *Engine) AwaitLog(id, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		logs, err := e.logs(id)
		if err != nil {
			return err
		}
		if strings.Contains(logs, substr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("log of %s has no %q after %s:\n%s", id, substr, timeout, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
