// Command openstack-emulator serves a fake OpenStack cloud (Keystone v3,
// Cinder v3, Nova v2.1, Manila v2, metadata service) on loopback for tests
// and demos.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const usageHead = `openstack-emulator serves Keystone v3, Cinder v3, Nova v2.1, Manila v2 and a
metadata service from one loopback base URL, for gophercloud clients such as
the cinder-csi and manila-csi drivers (the same cloud.conf serves both: the
catalog lists sharev2 and shared-file-system). On start it prints the URL and a ready cloud.conf; SIGTERM
or SIGINT shuts it down, unplugging every loop device it created.

Paths: /identity/v3 (auth-url), /volume/v3/{project_id}, /compute/v2.1,
/share/v2/{project_id} (Manila; share data in <data-dir>/manila/shares/<id>),
/openstack/latest/meta_data.json (first local server),
/servers/{id}/openstack/latest/meta_data.json, /admin/... (see docs/emulator.md).

Built-in credentials: domain Default; user demo/demo-secret in project demo;
user second/second-secret in project second.

Flags:
`

// outputs are the files written once the emulator serves.
type outputs struct{ cloudConf, urlFile string }

func main() {
	opts, out, err := parseFlags(os.Args[1:])
	if err != nil {
		fail(err)
	}
	e, err := emulator.Start(opts)
	if err != nil {
		fail(err)
	}
	conf := e.CloudConf("Global", "demo")
	fmt.Printf("OpenStack emulator listening on %s\nauth-url: %s\n\n# cloud.conf\n%s\n", e.URL(), e.AuthURL(), conf)
	if m := e.Manila(); m != nil && m.NFSAddr() != "" {
		fmt.Printf("Manila NFS export (NFSv3) on %s\n", m.NFSAddr())
	}
	if out.cloudConf != "" {
		if err := os.WriteFile(out.cloudConf, []byte(conf), 0o600); err != nil {
			klog.ErrorS(err, "writing cloud.conf", "path", out.cloudConf)
		}
	}
	if out.urlFile != "" {
		if err := os.WriteFile(out.urlFile, []byte(e.URL()+"\n"), 0o644); err != nil {
			klog.ErrorS(err, "writing url file", "path", out.urlFile)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	klog.InfoS("Shutting down", "signal", s.String())
	if err := e.Close(); err != nil {
		klog.ErrorS(err, "closing emulator")
		os.Exit(1)
	}
}

// parseFlags reads the command line into the emulator's options and the
// files to write.
func parseFlags(args []string) (emulator.Options, outputs, error) {
	fs := flag.NewFlagSet("openstack-emulator", flag.ExitOnError)
	klogFlags := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.Var(klogFlags.Lookup("v").Value, "v", "log verbosity (2 logs hot-plug and start-up details)")
	opts := emulator.Options{Latency: map[string]time.Duration{}}
	var out outputs
	var azs string
	var servers, latencies listFlag
	cloudFlags(fs, &opts, &azs)
	faultFlags(fs, &opts.Faults)
	fs.BoolVar(&opts.Manila.Disabled, "no-manila", false, "leave Manila (shared file systems v2) out of the cloud and its catalog")
	fs.StringVar(&opts.Manila.MaxMicroversion, "max-manila-microversion", "2.73", "highest Manila microversion advertised and accepted")
	fs.StringVar(&opts.Manila.NFSListen, "manila-nfs-listen", "", "serve every NFS share's directory as a real NFSv3 export on this address, e.g. 127.0.0.1:0 (mount with vers=3,port=P,mountport=P,mountproto=tcp,nolock; docs/emulator.md); the address is logged")
	fs.StringVar(&opts.Manila.NFSHost, "manila-nfs-host", "", "host of NFS export locations (default 127.0.0.1): the address nodes reach --manila-nfs-listen by")
	fs.StringVar(&out.cloudConf, "cloud-conf", "", "also write the cloud.conf to this file")
	fs.StringVar(&out.urlFile, "url-file", "", "write the base URL to this file once serving (for scripts)")
	fs.Var(&servers, "servers", "a server (node), repeatable: id=<uuid>,name=node-1,az=nova[,local]; local servers get hot-plugged devices (default: one local node-1 in the first AZ)")
	fs.Var(&latencies, "latency", "per-operation latency, repeatable: op=duration; ops: volume_create, volume_delete, volume_extend, volume_retype, attach, detach, snapshot_create, snapshot_delete, backup_create, backup_delete, backup_restore; Manila: share_create, share_delete, share_extend, share_shrink, share_restore, share_snapshot_create, share_snapshot_delete, access_allow, access_key, access_deny")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	_ = fs.Parse(args) // ExitOnError: Parse exits on a bad flag

	opts.AvailabilityZones = splitComma(azs)
	for _, s := range servers {
		spec, err := parseServer(s)
		if err != nil {
			return opts, out, err
		}
		opts.Servers = append(opts.Servers, spec)
	}
	for _, l := range latencies {
		op, ds, ok := strings.Cut(l, "=")
		if !ok {
			return opts, out, fmt.Errorf("--latency %q: want op=duration", l)
		}
		d, err := time.ParseDuration(ds)
		if err != nil {
			return opts, out, fmt.Errorf("--latency %q: %w", l, err)
		}
		opts.Latency[op] = d
	}
	return opts, out, nil
}

// cloudFlags are the flags shaping the cloud: address, catalog, storage,
// latency profile, microversions, quotas.
func cloudFlags(fs *flag.FlagSet, o *emulator.Options, azs *string) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	fs.StringVar(&o.Region, "region", "RegionOne", "region name in the service catalog")
	fs.StringVar(azs, "azs", "nova", "comma-separated availability zones (first is the default)")
	fs.StringVar(&o.DevRoot, "dev-root", "", "directory for hot-plug links (vdX, disk/by-id, disk/by-path); empty disables hot-plug; needs root")
	fs.StringVar(&o.SysRoot, "sys-root", "", "directory for fake sysfs entries block/vdX/{serial,size,dev}")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for the sparse volume files (default: a temp dir removed on exit, or <state-dir>/data)")
	fs.StringVar(&o.StateDir, "state-dir", "", "persist state to this directory and reload it on start")
	fs.DurationVar(&o.TokenTTL, "token-ttl", time.Hour, "Keystone token lifetime")
	fs.StringVar(&o.Profile, "profile", "fast", `latency profile: "fast" (no latency), "realistic" (Cinder and Nova as measured on a real Zed with Ceph: create ~0.55s, attach ~0.9s, detach ~0.45s, snapshot ~0.95s, extend ~0.15s, backup ~10s) or "bench" (the benchmarks' fixed times: create ~1.5s, attach ~2s, detach ~1.5s, snapshot ~1s, extend ~1s); Manila in realistic and bench as measured on the rig's Zed: share create ~1s, access rule to active ~1s (cephx key ~0.6s), snapshot ~0.6s, extend ~0.35s, share from snapshot ~10s; each with +-20% jitter`)
	fs.StringVar(&o.MaxCinderMicroversion, "max-cinder-microversion", "3.70", "highest Cinder microversion advertised and accepted")
	fs.StringVar(&o.MaxNovaMicroversion, "max-nova-microversion", "2.96", "highest Nova microversion advertised and accepted")
	fs.IntVar(&o.QuotaGigabytes, "quota-gigabytes", 1000, "per-project gigabytes quota (-1 unlimited)")
	fs.IntVar(&o.QuotaVolumes, "quota-volumes", 100, "per-project volumes quota (-1 unlimited)")
	fs.IntVar(&o.QuotaSnapshots, "quota-snapshots", 100, "per-project snapshots quota (-1 unlimited)")
	fs.IntVar(&o.QuotaBackups, "quota-backups", 100, "per-project backups quota (-1 unlimited)")
	fs.IntVar(&o.MaxDevicesPerServer, "max-devices", 26, "disk devices per server including the root disk (Nova's vda..vdz)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed for fault injection and latency jitter")
}

// faultFlags are the injected faults.
func faultFlags(fs *flag.FlagSet, f *emulator.Faults) {
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "probability of an injected 500 or 503 (half each) on any API request")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", 0, "probability of an injected 429 with Retry-After")
	fs.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After for 429 answers (whole seconds, minimum 1)")
	fs.Float64Var(&f.RateLimitRPS, "rate-limit-rps", 0, "per-project request rate above which requests get 429 (0 = off)")
	fs.Float64Var(&f.VolumeErrorRate, "volume-error-rate", 0, "probability a new volume ends in status error (with a user message)")
	fs.BoolVar(&f.StuckAttaching, "stuck-attaching", false, "new attachments stay in attaching until detached or the fault is cleared")
	fs.BoolVar(&f.StuckReserved, "stuck-reserved", false, "new attachments stay in reserved until detached or the fault is cleared")
	fs.Float64Var(&f.ShareErrorRate, "share-error-rate", 0, "probability a new Manila share ends in status error (with a user message)")
	fs.Float64Var(&f.AccessRuleErrorRate, "access-rule-error-rate", 0, "probability a new Manila access rule ends in state error")
	fs.Float64Var(&f.ShareExtendErrorRate, "share-extend-error-rate", 0, "probability a Manila extend ends in extending_error (with a user message)")
	fs.BoolVar(&f.StuckAccessRules, "stuck-access-rules", false, "new Manila access rules stay queued_to_apply until the fault is cleared")
	fs.Var((*listFlag)(&f.OnlyPaths), "only-paths", "restrict --error-rate/--rate-limit-rate to this path template, repeatable, e.g. \"POST /volume/v3/{project_id}/volumes\"")
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseServer reads "id=<uuid>,name=node-1,az=nova,local" or "...,qmp=/path/qmp.sock".
func parseServer(s string) (emulator.ServerSpec, error) {
	var spec emulator.ServerSpec
	for _, part := range splitComma(s) {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "id":
			spec.ID = v
		case "name":
			spec.Name = v
		case "az":
			spec.AZ = v
		case "local":
			spec.Local = v == "" || v == "true"
		case "qmp":
			// VM hot-plug mode: attachments go into the QEMU guest behind this monitor socket.
			spec.Guest = &emulator.GuestSpec{QMPSocket: v}
		default:
			return spec, fmt.Errorf("--servers %q: unknown key %q (want id, name, az, local, qmp)", s, k)
		}
	}
	if spec.Name == "" {
		return spec, errors.New("--servers " + s + ": name is required")
	}
	return spec, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "openstack-emulator:", err)
	os.Exit(2)
}
