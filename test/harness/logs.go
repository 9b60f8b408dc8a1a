package harness

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Logs returns stdout and stderr of a container, as `docker logs` prints them.
func (e *Engine) Logs(t testing.TB, id string) string {
	t.Helper()
	res, err := e.Client.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	defer res.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, res); err != nil && err != io.EOF {
		t.Fatalf("logs of %s: %v", id, err)
	}
	return out.String()
}
