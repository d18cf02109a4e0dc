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
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
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

func main() {
	fs := flag.NewFlagSet("openstack-emulator", flag.ExitOnError)
	klogFlags := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.Var(klogFlags.Lookup("v").Value, "v", "log verbosity (2 logs hot-plug and start-up details)")
	var (
		addr        = fs.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
		region      = fs.String("region", "RegionOne", "region name in the service catalog")
		azs         = fs.String("azs", "nova", "comma-separated availability zones (first is the default)")
		devRoot     = fs.String("dev-root", "", "directory for hot-plug links (vdX, disk/by-id, disk/by-path); empty disables hot-plug; needs root")
		sysRoot     = fs.String("sys-root", "", "directory for fake sysfs entries block/vdX/{serial,size,dev}")
		dataDir     = fs.String("data-dir", "", "directory for the sparse volume files (default: a temp dir removed on exit, or <state-dir>/data)")
		stateDir    = fs.String("state-dir", "", "persist state to this directory and reload it on start")
		tokenTTL    = fs.Duration("token-ttl", time.Hour, "Keystone token lifetime")
		profile     = fs.String("profile", "fast", `latency profile: "fast" (no latency), "realistic" (Cinder and Nova as measured on a real Zed with Ceph: create ~0.55s, attach ~0.9s, detach ~0.45s, snapshot ~0.95s, extend ~0.15s, backup ~10s) or "bench" (the benchmarks' fixed times: create ~1.5s, attach ~2s, detach ~1.5s, snapshot ~1s, extend ~1s); Manila in realistic and bench as measured on the rig's Zed: share create ~1s, access rule to active ~1s (cephx key ~0.6s), snapshot ~0.6s, extend ~0.35s, share from snapshot ~10s; each with +-20% jitter`)
		maxCinder   = fs.String("max-cinder-microversion", "3.70", "highest Cinder microversion advertised and accepted")
		maxNova     = fs.String("max-nova-microversion", "2.96", "highest Nova microversion advertised and accepted")
		quotaGB     = fs.Int("quota-gigabytes", 1000, "per-project gigabytes quota (-1 unlimited)")
		quotaVols   = fs.Int("quota-volumes", 100, "per-project volumes quota (-1 unlimited)")
		quotaSnaps  = fs.Int("quota-snapshots", 100, "per-project snapshots quota (-1 unlimited)")
		quotaBacks  = fs.Int("quota-backups", 100, "per-project backups quota (-1 unlimited)")
		maxDevices  = fs.Int("max-devices", 26, "disk devices per server including the root disk (Nova's vda..vdz)")
		seed        = fs.Int64("seed", 0, "seed for fault injection and latency jitter")
		errorRate   = fs.Float64("error-rate", 0, "probability of an injected 500 or 503 (half each) on any API request")
		rlRate      = fs.Float64("rate-limit-rate", 0, "probability of an injected 429 with Retry-After")
		retryAfter  = fs.Duration("retry-after", time.Second, "Retry-After for 429 answers (whole seconds, minimum 1)")
		rps         = fs.Float64("rate-limit-rps", 0, "per-project request rate above which requests get 429 (0 = off)")
		volErrRate  = fs.Float64("volume-error-rate", 0, "probability a new volume ends in status error (with a user message)")
		stuckAtt    = fs.Bool("stuck-attaching", false, "new attachments stay in attaching until detached or the fault is cleared")
		stuckRes    = fs.Bool("stuck-reserved", false, "new attachments stay in reserved until detached or the fault is cleared")
		noManila    = fs.Bool("no-manila", false, "leave Manila (shared file systems v2) out of the cloud and its catalog")
		maxManila   = fs.String("max-manila-microversion", "2.73", "highest Manila microversion advertised and accepted")
		shareErr    = fs.Float64("share-error-rate", 0, "probability a new Manila share ends in status error (with a user message)")
		accessErr   = fs.Float64("access-rule-error-rate", 0, "probability a new Manila access rule ends in state error")
		extendErr   = fs.Float64("share-extend-error-rate", 0, "probability a Manila extend ends in extending_error (with a user message)")
		stuckAccess = fs.Bool("stuck-access-rules", false, "new Manila access rules stay queued_to_apply until the fault is cleared")
		cloudConfTo = fs.String("cloud-conf", "", "also write the cloud.conf to this file")
		urlFile     = fs.String("url-file", "", "write the base URL to this file once serving (for scripts)")
		servers     listFlag
		latencies   listFlag
		onlyPaths   listFlag
	)
	fs.Var(&servers, "servers", "a server (node), repeatable: id=<uuid>,name=node-1,az=nova[,local]; local servers get hot-plugged devices (default: one local node-1 in the first AZ)")
	fs.Var(&latencies, "latency", "per-operation latency, repeatable: op=duration; ops: volume_create, volume_delete, volume_extend, volume_retype, attach, detach, snapshot_create, snapshot_delete, backup_create, backup_delete, backup_restore; Manila: share_create, share_delete, share_extend, share_shrink, share_restore, share_snapshot_create, share_snapshot_delete, access_allow, access_key, access_deny")
	fs.Var(&onlyPaths, "only-paths", "restrict --error-rate/--rate-limit-rate to this path template, repeatable, e.g. \"POST /volume/v3/{project_id}/volumes\"")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])

	opts := emulator.Options{
		Addr: *addr, Region: *region, AvailabilityZones: splitComma(*azs), DevRoot: *devRoot, SysRoot: *sysRoot,
		DataDir: *dataDir, StateDir: *stateDir, TokenTTL: *tokenTTL, Profile: *profile,
		MaxCinderMicroversion: *maxCinder, MaxNovaMicroversion: *maxNova,
		QuotaGigabytes: *quotaGB, QuotaVolumes: *quotaVols, QuotaSnapshots: *quotaSnaps, QuotaBackups: *quotaBacks,
		MaxDevicesPerServer: *maxDevices, Seed: *seed, Latency: map[string]time.Duration{},
		Faults: emulator.Faults{ErrorRate: *errorRate, RateLimitRate: *rlRate, RetryAfter: *retryAfter, RateLimitRPS: *rps,
			VolumeErrorRate: *volErrRate, StuckAttaching: *stuckAtt, StuckReserved: *stuckRes, OnlyPaths: onlyPaths,
			ShareErrorRate: *shareErr, AccessRuleErrorRate: *accessErr, ShareExtendErrorRate: *extendErr, StuckAccessRules: *stuckAccess},
		Manila: manila.Options{Disabled: *noManila, MaxMicroversion: *maxManila},
	}
	for _, s := range servers {
		spec, err := parseServer(s)
		if err != nil {
			fail(err)
		}
		opts.Servers = append(opts.Servers, spec)
	}
	for _, l := range latencies {
		op, ds, ok := strings.Cut(l, "=")
		if !ok {
			fail(fmt.Errorf("--latency %q: want op=duration", l))
		}
		d, err := time.ParseDuration(ds)
		if err != nil {
			fail(fmt.Errorf("--latency %q: %w", l, err))
		}
		opts.Latency[op] = d
	}

	e, err := emulator.Start(opts)
	if err != nil {
		fail(err)
	}
	conf := e.CloudConf("Global", "demo")
	fmt.Printf("OpenStack emulator listening on %s\nauth-url: %s\n\n# cloud.conf\n%s\n", e.URL(), e.AuthURL(), conf)
	if *cloudConfTo != "" {
		if err := os.WriteFile(*cloudConfTo, []byte(conf), 0o600); err != nil {
			klog.ErrorS(err, "writing cloud.conf", "path", *cloudConfTo)
		}
	}
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(e.URL()+"\n"), 0o644); err != nil {
			klog.ErrorS(err, "writing url file", "path", *urlFile)
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

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseServer reads "id=<uuid>,name=node-1,az=nova,local".
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
		default:
			return spec, fmt.Errorf("--servers %q: unknown key %q (want id, name, az, local)", s, k)
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
