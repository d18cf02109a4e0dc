package manilanode

import (
	"regexp"
	"strings"
)

// Mount options reach mount(8), the kernel or ceph-fuse, so each protocol
// accepts only options from its own allow-list (issue 16's rule for the
// Cinder node, applied here). The rest is InvalidArgument before anything
// is mounted: a flag that changes what is mounted (bind, remount,
// propagation), names a credential (secret=, secretfile=, name=: the
// driver sets those itself) or looks like a command-line switch ("-o",
// "--make-shared") never passes.

// optionKind says what value an option takes.
type optionKind int

const (
	flagOnly  optionKind = iota // "hard", "noatime"
	numeric                     // "timeo=600"
	token                       // "sec=krb5p", "mds_namespace=fs2": [A-Za-z0-9_.:-]+
	ipAddress                   // "clientaddr=10.0.0.5"
)

// Options valid for any protocol: per-mount flags of the VFS.
var vfsOptions = map[string]optionKind{
	"ro": flagOnly, "rw": flagOnly, "noatime": flagOnly, "nodiratime": flagOnly,
	"relatime": flagOnly, "strictatime": flagOnly, "nosuid": flagOnly, "nodev": flagOnly,
	"noexec": flagOnly, "sync": flagOnly, "async": flagOnly, "lazytime": flagOnly,
}

// nfsOptions are the NFS client's options (nfs(5)) that change how, not
// what, is mounted.
var nfsOptions = map[string]optionKind{
	"hard": flagOnly, "soft": flagOnly, "softreval": flagOnly, "intr": flagOnly, "nointr": flagOnly,
	"timeo": numeric, "retrans": numeric, "rsize": numeric, "wsize": numeric, "bsize": numeric,
	"ac": flagOnly, "noac": flagOnly, "actimeo": numeric, "acregmin": numeric, "acregmax": numeric,
	"acdirmin": numeric, "acdirmax": numeric, "cto": flagOnly, "nocto": flagOnly,
	"lookupcache": token, "nconnect": numeric, "max_connect": numeric, "proto": token, "port": numeric,
	"sec": token, "sharecache": flagOnly, "nosharecache": flagOnly, "resvport": flagOnly,
	"noresvport": flagOnly, "local_lock": token, "fsc": flagOnly, "nofsc": flagOnly,
	"clientaddr": ipAddress, "addr": ipAddress, "mountaddr": ipAddress,
	// NFSv3's MOUNT protocol: where it is when no portmapper tells (the
	// emulator's export serves it on the NFS port).
	"mountport": numeric, "mountproto": token, "mountvers": numeric, "namlen": numeric, "retry": numeric, "lock": flagOnly, "nolock": flagOnly,
	"vers": token, "nfsvers": token, "minorversion": numeric, "xprtsec": token, "trunkdiscovery": flagOnly,
}

// cephKernelOptions are mount.ceph(8)'s options except name=, secret= and
// secretfile=, which the driver sets from the cephx identity.
var cephKernelOptions = map[string]optionKind{
	"mds_namespace": token, "fs": token, "rsize": numeric, "wsize": numeric, "rasize": numeric,
	"caps_max": numeric, "caps_wanted_delay_min": numeric, "caps_wanted_delay_max": numeric,
	"readdir_max_entries": numeric, "readdir_max_bytes": numeric, "write_congestion_kb": numeric,
	"mount_timeout": numeric, "osdkeepalive": numeric, "osd_idle_ttl": numeric,
	"noasyncreaddir": flagOnly, "dirstat": flagOnly, "nodirstat": flagOnly, "rbytes": flagOnly,
	"norbytes": flagOnly, "dcache": flagOnly, "nodcache": flagOnly, "nocrc": flagOnly, "fsc": flagOnly,
	"nofsc": flagOnly, "recover_session": token, "ms_mode": token, "wsync": flagOnly, "nowsync": flagOnly,
	"noquotadf": flagOnly, "nocopyfrom": flagOnly, "crush_location": token, "read_from_replica": token,
}

// cephFuseOptions are the FUSE options ceph-fuse passes to the kernel (-o).
var cephFuseOptions = map[string]optionKind{
	"allow_other": flagOnly, "default_permissions": flagOnly, "nonempty": flagOnly,
	"big_writes": flagOnly, "max_read": numeric, "auto_cache": flagOnly, "kernel_cache": flagOnly,
}

// refusedOptions answer with a reason rather than "not allowed".
var refusedOptions = map[string]string{
	"bind": "changes what is mounted", "rbind": "changes what is mounted", "remount": "changes an existing mount",
	"move": "changes what is mounted", "shared": "changes mount propagation", "rshared": "changes mount propagation",
	"slave": "changes mount propagation", "rslave": "changes mount propagation", "private": "changes mount propagation",
	"rprivate": "changes mount propagation", "unbindable": "changes mount propagation", "runbindable": "changes mount propagation",
	"secret": "names a credential the driver sets itself", "secretfile": "names a credential the driver sets itself",
	"name": "names the cephx identity the driver sets itself", "user": "lets unprivileged users unmount", "users": "lets unprivileged users unmount",
	"exec": "widens what the mount allows", "suid": "widens what the mount allows", "dev": "widens what the mount allows",
}

const (
	// maxOptionLength and maxOptions bound what a request may carry; no
	// real option is near either.
	maxOptionLength = 256
	maxOptions      = 64
)

var (
	numericValue = regexp.MustCompile(`^[0-9]{1,10}$`)
	tokenValue   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	ipValue      = regexp.MustCompile(`^[0-9A-Fa-f.:]{2,45}$`)
)

// splitOptions splits comma-separated option strings (volume context
// values and mount flags may each hold several) and drops empty items.
func splitOptions(values ...string) []string {
	var out []string
	for _, v := range values {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				out = append(out, o)
			}
		}
	}
	return out
}

// validateOptions checks every option against allow (plus the VFS flags)
// and returns them deduplicated in order. field names where they came
// from, for the message.
func validateOptions(field string, options []string, allow map[string]optionKind) ([]string, error) {
	if len(options) > maxOptions {
		return nil, errInvalid("%s has %d mount options; at most %d are allowed", field, len(options), maxOptions)
	}
	seen := map[string]bool{}
	var out []string
	for _, o := range options {
		if err := validateOption(field, o, allow); err != nil {
			return nil, err
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}

func validateOption(field, option string, allow map[string]optionKind) error {
	if len(option) > maxOptionLength {
		return errInvalid("%s: a mount option of %d bytes is longer than %d", field, len(option), maxOptionLength)
	}
	if strings.HasPrefix(option, "-") {
		return errInvalid("%s: mount option %q looks like a command-line switch and is not allowed", field, option)
	}
	for _, r := range option {
		if r <= ' ' || r == 0x7f {
			return errInvalid("%s: mount option %q has a space or control character", field, option)
		}
	}
	key, value, hasValue := strings.Cut(option, "=")
	if reason, refused := refusedOptions[key]; refused {
		return errInvalid("%s: mount option %q is not allowed: it %s", field, option, reason)
	}
	kind, ok := vfsOptions[key]
	if !ok {
		kind, ok = allow[key]
	}
	if !ok {
		return errInvalid("%s: mount option %q is not in the allow-list of this protocol", field, option)
	}
	valid := false
	switch kind {
	case flagOnly:
		valid = !hasValue
	case numeric:
		valid = hasValue && numericValue.MatchString(value)
	case token:
		valid = hasValue && tokenValue.MatchString(value)
	case ipAddress:
		valid = hasValue && ipValue.MatchString(value)
	}
	if !valid {
		return errInvalid("%s: mount option %q has a value its option does not take", field, option)
	}
	return nil
}

// optionValue returns the value of key=value in options, and whether it
// was there.
func optionValue(options []string, key string) (string, bool) {
	for _, o := range options {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// withoutOption drops every key or key=value option named key.
func withoutOption(options []string, key string) []string {
	out := options[:0:0]
	for _, o := range options {
		if k, _, _ := strings.Cut(o, "="); k != key {
			out = append(out, o)
		}
	}
	return out
}
