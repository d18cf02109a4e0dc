// Package openstack is the cloud layer: the narrow set of Keystone, Cinder
// and Nova operations the CSI controller needs, in our own types.
//
// It knows nothing of gRPC or CSI. Failures are returned as *Error values
// carrying a Kind (see errors.go); the CSI layer maps kinds to gRPC codes in
// one place.
//
// # Construction
//
//	set, err := openstack.NewClouds(ctx, cloudConfigFiles, openstack.Options{
//		UserAgent:  extraUserAgents,             // after "cinder-csi/<version>"
//		Observer:   metricsObserver,             // nil: none
//		RateLimits: map[string]openstack.RateLimit{"volumev3": {QPS: 10, Burst: 20}},
//		HTTPTimeout: time.Minute,                // one HTTP request
//		CloudNames: []string{""},                // --cloud-name; empty: all sections
//	})
//	cloud, err := set.Get(req.Secrets["cloud"]) // "" is [Global]
//
// NewClouds reads and merges the cloud.conf files (pkg/config), validates
// the selected sections, authenticates each cloud once (wrong credentials
// fail here) and, until ctx ends, watches the files. NewCloudsFromConfig
// builds the same set from a loaded config without network or watch.
//
// # Credential rotation
//
// Every ReloadInterval (5 s) the files' content is hashed; on a change they
// are re-read and validated (an invalid file is logged and ignored). A
// section whose only change is its credentials keeps its connection and
// token, and its next authentication uses the new credentials; any other
// change builds a new cloud for later Get calls. A 401 that the current
// credentials cannot cure also re-reads the files at once, so a revoked
// application credential is replaced within one request.
//
// # Requests
//
// One HTTP client per cloud (keep-alive, TLS from ca-file, cert-file,
// key-file, tls-insecure). Tokens are reused and renewed on a 401.
// Microversions come from each service's version document, read once per
// connection. Idempotent requests retry on 5xx, 429 and connection errors
// with jittered backoff inside the caller's deadline; mutating requests
// only on 429, 503 and refused connections (retry.go states why). Every
// request is reported to the Observer with a stable operation name.
//
// # Waits
//
// WaitVolume, WaitSnapshot, WaitBackup and WaitVolumeGone share one poller
// per cloud and resource kind (package poller): concurrent waiters are
// answered by one volumes/detail listing per tick instead of one GET each.
package openstack

import (
	"context"
	"regexp"
	"time"
)

// Volume statuses as Cinder reports them. Only the ones the driver branches
// on are named.
const (
	VolumeCreating       = "creating"
	VolumeAvailable      = "available"
	VolumeInUse          = "in-use"
	VolumeAttaching      = "attaching"
	VolumeDetaching      = "detaching"
	VolumeReserved       = "reserved"
	VolumeExtending      = "extending"
	VolumeRetyping       = "retyping"
	VolumeDeleting       = "deleting"
	VolumeError          = "error"
	VolumeErrorDeleting  = "error_deleting"
	VolumeErrorExtending = "error_extending"
	VolumeErrorRestoring = "error_restoring"
	VolumeDownloading    = "downloading"
	VolumeMaintenance    = "maintenance"
	// Transitions Cinder leaves on its own, which only DeleteVolume names.
	VolumeBackingUp        = "backing-up"
	VolumeRestoringBackup  = "restoring-backup"
	VolumeUploading        = "uploading"
	VolumeAwaitingTransfer = "awaiting-transfer"

	SnapshotCreating      = "creating"
	SnapshotAvailable     = "available"
	SnapshotDeleting      = "deleting"
	SnapshotError         = "error"
	SnapshotErrorDeleting = "error_deleting"

	BackupCreating      = "creating"
	BackupAvailable     = "available"
	BackupDeleting      = "deleting"
	BackupRestoring     = "restoring"
	BackupError         = "error"
	BackupErrorDeleting = "error_deleting"
)

// Metadata keys the driver writes on the resources it creates.
const (
	// MetaCluster marks ownership: a volume or snapshot is ours only when it
	// carries this key with our --cluster value.
	MetaCluster = "cinder.csi.openstack.org/cluster"
)

// Volume is a Cinder volume as the driver sees it.
type Volume struct {
	ID               string
	Name             string
	Description      string
	Status           string
	MigrationStatus  string
	SizeGiB          int
	AvailabilityZone string
	VolumeType       string
	Multiattach      bool
	Bootable         bool
	SnapshotID       string
	SourceVolumeID   string
	BackupID         string
	// GroupID is the generic volume group the volume belongs to (3.13).
	GroupID     string
	Metadata    map[string]string
	Attachments []VolumeAttachment
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// VolumeAttachment is one entry of a volume's Cinder attachments list.
type VolumeAttachment struct {
	AttachmentID string
	ServerID     string
	Device       string
	AttachedAt   time.Time
}

// CreateVolumeOpts describes a volume to create. Exactly one of SnapshotID,
// SourceVolumeID and BackupID may be set.
type CreateVolumeOpts struct {
	Name             string
	Description      string
	SizeGiB          int
	VolumeType       string
	AvailabilityZone string
	SnapshotID       string
	SourceVolumeID   string
	BackupID         string
	Metadata         map[string]string
	// Scheduler hints: volume IDs to place with or away from.
	SameHost      []string
	DifferentHost []string
}

// ListOpts filters and pages a volume, snapshot or backup listing.
type ListOpts struct {
	Name     string
	Status   string
	VolumeID string // snapshots and backups: the source volume
	Metadata map[string]string
	Limit    int
	Marker   string
}

// Snapshot is a Cinder snapshot.
type Snapshot struct {
	ID          string
	Name        string
	Description string
	Status      string
	VolumeID    string
	SizeGiB     int
	Metadata    map[string]string
	CreatedAt   time.Time
	// GroupSnapshotID is set on the member snapshots of a group snapshot
	// (3.14); Cinder refuses to delete them one by one.
	GroupSnapshotID string
}

// CreateSnapshotOpts describes a snapshot to create.
type CreateSnapshotOpts struct {
	Name        string
	Description string
	VolumeID    string
	Force       bool
	Metadata    map[string]string
}

// Backup is a Cinder backup.
type Backup struct {
	ID               string
	Name             string
	Description      string
	Status           string
	VolumeID         string
	SnapshotID       string
	SizeGiB          int
	AvailabilityZone string
	Metadata         map[string]string
	FailReason       string
	CreatedAt        time.Time
}

// CreateBackupOpts describes a backup to create.
type CreateBackupOpts struct {
	Name             string
	Description      string
	VolumeID         string
	SnapshotID       string
	AvailabilityZone string
	Force            bool
	Incremental      bool
	Metadata         map[string]string
}

// Server is a Nova server, which is a Kubernetes node to us.
type Server struct {
	ID               string
	Name             string
	Status           string
	AvailabilityZone string
}

// ServerAttachment is one Nova os-volume_attachments entry.
type ServerAttachment struct {
	ID       string
	ServerID string
	VolumeID string
	Device   string
}

// VolumeType is a Cinder volume type with its extra specs.
type VolumeType struct {
	ID          string
	Name        string
	ExtraSpecs  map[string]string
	Multiattach bool // extra spec multiattach="<is> True"
}

// Limits is the absolute part of Cinder's /limits.
type Limits struct {
	MaxTotalVolumeGigabytes  int
	MaxTotalVolumes          int
	MaxTotalSnapshots        int
	MaxTotalBackupGigabytes  int
	TotalGigabytesUsed       int
	TotalVolumesUsed         int
	TotalSnapshotsUsed       int
	TotalBackupGigabytesUsed int
}

// QuotaUsage is one quota (limit, in use, reserved). Limit -1 means unlimited.
type QuotaUsage struct {
	Limit    int
	InUse    int
	Reserved int
}

// QuotaSet is a project's Cinder quotas with usage. PerType holds the
// gigabytes_<type> quotas, keyed by volume type name.
type QuotaSet struct {
	Gigabytes QuotaUsage
	Volumes   QuotaUsage
	Snapshots QuotaUsage
	PerType   map[string]QuotaUsage
}

// UserMessage is a Cinder user message (/v3/messages), which explains why a
// resource went to error.
type UserMessage struct {
	ID           string
	ResourceType string
	ResourceID   string
	EventID      string
	UserMessage  string
	CreatedAt    time.Time
}

// Page is one page of a listing plus the marker for the next page ("" at
// the end).
type Page[T any] struct {
	Items      []T
	NextMarker string
}

// Cloud is everything the controller asks of one OpenStack cloud.
//
// Every method honours ctx: cancellation and deadline end the call and any
// retries. Errors are *Error values (see errors.go).
type Cloud interface {
	// Volumes.
	CreateVolume(ctx context.Context, opts CreateVolumeOpts) (*Volume, error)
	GetVolume(ctx context.Context, id string) (*Volume, error)
	// FindVolumesByName returns the volumes with exactly this name whose
	// metadata includes every pair of ownerMeta (may be nil).
	FindVolumesByName(ctx context.Context, name string, ownerMeta map[string]string) ([]Volume, error)
	ListVolumes(ctx context.Context, opts ListOpts) (Page[Volume], error)
	DeleteVolume(ctx context.Context, id string) error
	ExtendVolume(ctx context.Context, id string, newSizeGiB int, inUse bool) error
	// RetypeVolume asks Cinder to change the volume's type (name or id).
	// migrationPolicy is "never" or "on-demand". It returns once Cinder
	// accepted the request; the volume is "retyping" until it is done, and
	// a retype the scheduler cannot place leaves the type unchanged.
	RetypeVolume(ctx context.Context, id, newType, migrationPolicy string) error

	// Snapshots.
	CreateSnapshot(ctx context.Context, opts CreateSnapshotOpts) (*Snapshot, error)
	GetSnapshot(ctx context.Context, id string) (*Snapshot, error)
	FindSnapshotsByName(ctx context.Context, name string) ([]Snapshot, error)
	ListSnapshots(ctx context.Context, opts ListOpts) (Page[Snapshot], error)
	DeleteSnapshot(ctx context.Context, id string) error

	// Backups.
	CreateBackup(ctx context.Context, opts CreateBackupOpts) (*Backup, error)
	GetBackup(ctx context.Context, id string) (*Backup, error)
	FindBackupsByName(ctx context.Context, name string) ([]Backup, error)
	ListBackups(ctx context.Context, opts ListOpts) (Page[Backup], error)
	DeleteBackup(ctx context.Context, id string) error

	// Nova.
	GetServer(ctx context.Context, id string) (*Server, error)
	// AttachVolume asks Nova to attach; it returns once Nova accepted the
	// request, not when the volume is in-use. multiattach selects the
	// microversion Nova needs for a multiattach volume.
	AttachVolume(ctx context.Context, serverID, volumeID string, multiattach bool) (*ServerAttachment, error)
	DetachVolume(ctx context.Context, serverID, volumeID string) error
	ListServerAttachments(ctx context.Context, serverID string) ([]ServerAttachment, error)
	// ListServersByName returns the servers whose name matches the
	// anchored expression (the peer-pod VMs, which cloud-api-adaptor names
	// podvm-<pod>-<sandbox id[:8]>).
	ListServersByName(ctx context.Context, name *regexp.Regexp) ([]Server, error)
	// DeleteAttachment removes a Cinder attachment record (3.27); it frees
	// a volume still attached to a server that no longer exists.
	DeleteAttachment(ctx context.Context, attachmentID string) error

	// Catalogue and accounting.
	ListAvailabilityZones(ctx context.Context) ([]string, error)
	GetVolumeType(ctx context.Context, nameOrID string) (*VolumeType, error)
	GetLimits(ctx context.Context) (*Limits, error)
	GetQuotaSet(ctx context.Context) (*QuotaSet, error)
	// LatestMessage returns the newest user message for a resource, or nil.
	LatestMessage(ctx context.Context, resourceID string) (*UserMessage, error)

	// Waits. Each polls until done(status) or a terminal error status, and
	// is bounded by ctx. On deadline it returns the last observed object
	// together with an *Error of KindTimeout, so the caller can answer
	// Aborted with what it saw.
	WaitVolume(ctx context.Context, id string, done func(*Volume) bool) (*Volume, error)
	WaitSnapshot(ctx context.Context, id string, done func(*Snapshot) bool) (*Snapshot, error)
	WaitBackup(ctx context.Context, id string, done func(*Backup) bool) (*Backup, error)
	// WaitVolumeGone returns nil once the volume is not found.
	WaitVolumeGone(ctx context.Context, id string) error

	// Features the cloud supports, from the cached version documents.
	Features() Features
}

// Features records what the cloud's microversions allow.
type Features struct {
	CinderMicroversion string // the highest we use, e.g. "3.64"
	NovaMicroversion   string
	NameFilter         bool // 3.34: server-side name filtering
	ExtendInUse        bool // 3.42: extend an in-use volume
	CreateFromBackup   bool // 3.47: backup_id in volume create
	BackupMetadata     bool // 3.43: metadata on backups
	NovaMultiattach    bool // 2.60
	Groups             bool // 3.25: generic volume groups, group snapshots, list_volume
}

// Clouds resolves the cloud a request selects through the `cloud` key of
// its secrets. The configuration may be reloaded underneath (rotated
// credentials); callers must not cache the returned Cloud across requests.
type Clouds interface {
	// Get returns the cloud for name; "" means [Global]. An unknown name is
	// an *Error of KindConfig naming it.
	Get(name string) (Cloud, error)
	// Names returns the configured cloud names, sorted, "" first.
	Names() []string
}

// Observer receives what the cloud layer does, for metrics (pkg/metrics
// implements it). Every method must be cheap and safe for concurrent use.
// Nothing passed here may contain a secret.
type Observer interface {
	// ObserveRequest is called once per HTTP request (each retry counts).
	// service is "identity", "volumev3", "compute" or "sharev2"; operation is a
	// stable name such as "volume_create"; statusCode is 0 when no response
	// arrived.
	ObserveRequest(service, operation string, statusCode int, d time.Duration)
	// ObserveRetry is called before a retry; reason is "5xx", "429" or "conn".
	ObserveRetry(service, operation, reason string)
	// ObserveRateLimitWait records time spent waiting on the client-side
	// limiter or on a Retry-After.
	ObserveRateLimitWait(service string, d time.Duration)
	// ObserveTokenRenewal is called each time a token is (re)issued.
	ObserveTokenRenewal(cloud string)
	// ObserveWait records a state wait; outcome is "done", "error" or
	// "timeout".
	ObserveWait(operation string, d time.Duration, outcome string)
}
