// Command simctl drives the test harness from a shell: start an engine, build the simulator
// images, start a simulator container. scripts/sim wraps it; make demo uses it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

const usage = `usage: scripts/sim COMMAND
  env                      start an engine if none answers; print "export DOCKER_HOST=..."
  build                    build the simulator images (rancher/rancher:v2.3.1-sim, v2.4.8-sim, ...)
  start [flags]            start a simulator container; print its name and UI port
  cluster CONTAINER ARGS   change the clusters a simulated server manages, as provisioning and
                           agents do (docker exec CONTAINER ranchersim cluster ARGS):
                             add --id c-abcde --name prod --rke1 --cert kube-apiserver=20 [--pin current]
                             agent --id c-abcde --online=false    (disconnect; --online=true reconnects)
                             bulk --count 500 --certs 8
  stop-engine              stop a dockerd this tool started
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	ctx := context.Background()
	if cmd == "stop-engine" {
		return harness.StopPrivateEngine()
	}
	e, err := harness.StartEngine(ctx)
	if err != nil {
		return err
	}
	switch cmd {
	case "env":
		fmt.Printf("export DOCKER_HOST=%s\n", e.Host)
		return nil
	case "build":
		if err := harness.EnsureBusybox(); err != nil {
			return err
		}
		return harness.BuildSimImages(ctx, e.Client)
	case "start":
		fs := flag.NewFlagSet("start", flag.ExitOnError)
		name := fs.String("name", harness.RandomName("rce-sim"), "container name")
		version := fs.String("version", "2.3", "simulated Rancher release: "+harness.ProfileNames())
		leaf := fs.Int("leaf-days", 365, "validity left on k3s leaves; negative: expired")
		ui := fs.Int("ui-days", 365, "validity left on the UI certificate")
		crash := fs.Bool("restart", true, "--restart=unless-stopped, as a real Rancher server")
		_ = fs.Parse(args) // ExitOnError
		p, ok := harness.ProfileNamed(*version)
		if !ok {
			return fmt.Errorf("no simulated release %q: want one of %s", *version, harness.ProfileNames())
		}
		sim, err := e.CreateSimNamed(ctx, *name, harness.SimOptions{Profile: p, LeafDays: *leaf, UIDays: *ui, CrashLoop: *crash})
		if err != nil {
			return err
		}
		if err := e.StartContainer(ctx, sim); err != nil {
			return err
		}
		fmt.Printf("%s %d\n", sim.Name, sim.UIPort)
		return nil
	}
	if cmd == "cluster" {
		if len(args) < 2 {
			return fmt.Errorf("cluster CONTAINER add|agent|bulk|remove [flags]")
		}
		out, err := exec.Command("docker", append([]string{"exec", args[0], "ranchersim", "cluster"}, args[1:]...)...).CombinedOutput()
		os.Stdout.Write(out)
		return err
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
