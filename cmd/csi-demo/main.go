// Command csi-demo drives one volume through its whole life over CSI gRPC,
// the way the external-provisioner, -attacher, -snapshotter, -resizer and
// the kubelet would: it starts bin/openstack-emulator (with the "realistic"
// latency profile) and bin/cinder-csi-plugin (controller and node on a unix
// socket), runs each step with its latency and the OpenStack API calls it
// cost, prints a summary table, and leaves nothing behind.
//
// The node steps format and mount loop devices and so need root; without
// it the controller steps still run and the demo says what it skipped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

type options struct {
	driver  string
	binDir  string
	profile string
	keep    bool
	timeout time.Duration
}

func run(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("csi-demo", flag.ContinueOnError)
	var o options
	exe, _ := os.Executable()
	fs.StringVar(&o.driver, "driver", "cinder", `"cinder" (a volume through its life) or "manila" (an NFS share through its life)`)
	fs.StringVar(&o.binDir, "bin-dir", filepath.Dir(exe), "directory holding openstack-emulator, cinder-csi-plugin and manila-csi-plugin")
	fs.StringVar(&o.profile, "profile", "realistic", `emulator latency profile: "realistic" or "fast"`)
	fs.BoolVar(&o.keep, "keep-logs", false, "print the emulator and plugin logs at the end")
	fs.DurationVar(&o.timeout, "step-timeout", 2*time.Minute, "deadline of each CSI call, as a sidecar's --timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	d := &demo{opts: o, out: out, root: os.Geteuid() == 0}
	start, lifecycle, cleanup := d.start, d.lifecycle, d.cleanup
	switch o.driver {
	case "cinder":
	case "manila":
		start, lifecycle, cleanup = d.startManila, d.manilaLifecycle, d.manilaCleanup
	default:
		fmt.Fprintf(out, "csi-demo: --driver %q is neither cinder nor manila\n", o.driver)
		return 2
	}
	err := start(ctx)
	if err == nil {
		err = lifecycle(ctx)
	}
	// Cleanup runs even after a failed step or an interrupt, with its
	// own context so that an interrupt does not cut it short.
	cleanupCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if cerr := cleanup(cleanupCtx); cerr != nil && err == nil {
		err = cerr
	}
	if leftovers := d.stop(); leftovers != nil && err == nil {
		err = leftovers
	}
	d.summary()
	if err != nil {
		fmt.Fprintf(out, "\ncsi-demo: FAILED: %v\n", err)
		if d.logs != nil {
			d.logs.dump(out)
		}
		return 1
	}
	if o.keep && d.logs != nil {
		d.logs.dump(out)
	}
	fmt.Fprintln(out, "\ncsi-demo: ok; no mounts, loop devices, processes or temp directories left behind")
	return 0
}
