package openstack

import (
	"context"
	"time"
)

// Manila (shared file systems v2) as the Manila CSI controller sees it.
//
// The share service shares the cloud's provider client, token, retry
// policy, rate limiter and observer with Cinder and Nova; its endpoint is
// found in the catalog as "sharev2" and connected lazily, so a Manila-only
// cloud needs no Cinder and a Cinder-only cloud never looks for Manila.

// Share statuses as Manila reports them. Only the ones the driver branches
// on are named.
const (
	ShareCreating             = "creating"
	ShareCreatingFromSnapshot = "creating_from_snapshot"
	ShareAvailable            = "available"
	ShareExtending            = "extending"
	ShareShrinking            = "shrinking"
	ShareDeleting             = "deleting"
	ShareError                = "error"
	ShareErrorDeleting        = "error_deleting"
	ShareExtendingError       = "extending_error"
	ShareShrinkingError       = "shrinking_error"

	ShareSnapshotCreating      = "creating"
	ShareSnapshotAvailable     = "available"
	ShareSnapshotDeleting      = "deleting"
	ShareSnapshotError         = "error"
	ShareSnapshotErrorDeleting = "error_deleting"

	AccessQueuedToApply = "queued_to_apply"
	AccessApplying      = "applying"
	AccessActive        = "active"
	AccessError         = "error"
	AccessQueuedToDeny  = "queued_to_deny"
	AccessDenying       = "denying"
)

// Access types of a Manila access rule.
const (
	AccessTypeIP    = "ip"
	AccessTypeCephx = "cephx"
)

// MetaManilaCluster marks ownership of a share or share snapshot: it is ours
// only when it carries this key with our --cluster-id value. It is the key
// the reference plugin writes, so shares it made stay recognisable.
const MetaManilaCluster = "manila.csi.openstack.org/cluster"

// Share is a Manila share as the driver sees it.
type Share struct {
	ID               string
	Name             string
	Description      string
	Status           string
	SizeGiB          int
	Protocol         string // "NFS", "CEPHFS", ...
	ShareType        string // id
	ShareTypeName    string
	AvailabilityZone string
	ShareNetworkID   string
	ShareGroupID     string
	SnapshotID       string // the snapshot it was created from
	Metadata         map[string]string
	CreatedAt        time.Time
}

// CreateShareOpts describes a share to create.
type CreateShareOpts struct {
	Name             string
	Description      string
	Protocol         string
	SizeGiB          int
	ShareType        string // name or id
	AvailabilityZone string
	ShareNetworkID   string
	ShareGroupID     string
	SnapshotID       string
	Metadata         map[string]string
	// Scheduler hints (2.65): share ids to place with or away from.
	SameHost      []string
	DifferentHost []string
}

// ShareListOpts filters and pages a share or share snapshot listing.
type ShareListOpts struct {
	Name     string
	Status   string
	ShareID  string // snapshots: the source share
	Metadata map[string]string
	Limit    int
	Marker   string
}

// ExportLocation is one path a share can be mounted from.
type ExportLocation struct {
	ID              string
	Path            string // "10.0.0.5:/volumes/..." or "mon1:6789,mon2:6789:/volumes/..."
	Preferred       bool
	IsAdminOnly     bool
	ShareInstanceID string
}

// AccessRule is one Manila access rule of a share.
type AccessRule struct {
	ID          string
	ShareID     string
	AccessType  string // "ip", "cephx", "user", "cert"
	AccessTo    string
	AccessLevel string // "rw" or "ro"
	State       string
	// AccessKey is the cephx secret once Manila has made it (empty before).
	// It is a credential: never log it, never put it in an error.
	AccessKey string
	Metadata  map[string]string
	CreatedAt time.Time
}

// GrantAccessOpts describes an access rule to add.
type GrantAccessOpts struct {
	ShareID     string
	AccessType  string
	AccessTo    string
	AccessLevel string
	Metadata    map[string]string // 2.45
}

// ShareSnapshot is a Manila share snapshot.
type ShareSnapshot struct {
	ID          string
	Name        string
	Description string
	Status      string
	ShareID     string
	SizeGiB     int
	ShareSize   int
	Metadata    map[string]string // 2.73
	CreatedAt   time.Time
}

// CreateShareSnapshotOpts describes a share snapshot to create.
type CreateShareSnapshotOpts struct {
	Name        string
	Description string
	ShareID     string
	Metadata    map[string]string // sent only where the cloud supports it (2.73)
}

// ShareType is a Manila share type with its extra specs.
type ShareType struct {
	ID                             string
	Name                           string
	ExtraSpecs                     map[string]string
	DriverHandlesShareServers      bool
	SnapshotSupport                bool
	CreateShareFromSnapshotSupport bool
}

// ShareQuota is the gigabytes and shares part of a project's Manila quota
// with usage (limit -1 means unlimited).
type ShareQuota struct {
	Gigabytes QuotaUsage
	Shares    QuotaUsage
	Snapshots QuotaUsage
}

// ShareMessage is a Manila user message (/messages, 2.37), which explains
// why a share or access rule went to error.
type ShareMessage struct {
	ID           string
	ResourceType string
	ResourceID   string
	UserMessage  string
	CreatedAt    time.Time
}

// ShareFeatures records what the cloud's Manila microversions allow.
type ShareFeatures struct {
	Microversion       string // the highest we use, e.g. "2.73"
	AccessMetadata     bool   // 2.45: metadata on access rules, /share-access-rules
	SchedulerHints     bool   // 2.65
	SnapshotMetadata   bool   // 2.73
	AccessKeyInList    bool   // 2.21
	TransitionalAccess bool   // 2.28: queued_to_apply/applying states
}

// ShareCloud is everything the Manila controller asks of one cloud.
//
// Every method honours ctx: cancellation and deadline end the call and any
// retries. Errors are *Error values (see errors.go), the same kinds as
// Cinder's.
type ShareCloud interface {
	// Shares.
	CreateShare(ctx context.Context, opts CreateShareOpts) (*Share, error)
	GetShare(ctx context.Context, id string) (*Share, error)
	// FindSharesByName returns the shares with exactly this name whose
	// metadata includes every pair of ownerMeta (may be nil).
	FindSharesByName(ctx context.Context, name string, ownerMeta map[string]string) ([]Share, error)
	ListShares(ctx context.Context, opts ShareListOpts) (Page[Share], error)
	DeleteShare(ctx context.Context, id string) error
	ExtendShare(ctx context.Context, id string, newSizeGiB int) error
	ShrinkShare(ctx context.Context, id string, newSizeGiB int) error
	ListExportLocations(ctx context.Context, shareID string) ([]ExportLocation, error)
	SetShareMetadata(ctx context.Context, shareID string, meta map[string]string) error

	// Access rules.
	GrantAccess(ctx context.Context, opts GrantAccessOpts) (*AccessRule, error)
	ListAccessRules(ctx context.Context, shareID string) ([]AccessRule, error)
	RevokeAccess(ctx context.Context, shareID, accessID string) error

	// Snapshots.
	CreateShareSnapshot(ctx context.Context, opts CreateShareSnapshotOpts) (*ShareSnapshot, error)
	GetShareSnapshot(ctx context.Context, id string) (*ShareSnapshot, error)
	FindShareSnapshotsByName(ctx context.Context, name string) ([]ShareSnapshot, error)
	ListShareSnapshots(ctx context.Context, opts ShareListOpts) (Page[ShareSnapshot], error)
	DeleteShareSnapshot(ctx context.Context, id string) error

	// Catalogue and accounting.
	GetShareType(ctx context.Context, nameOrID string) (*ShareType, error)
	ListShareAvailabilityZones(ctx context.Context) ([]string, error)
	GetShareQuota(ctx context.Context) (*ShareQuota, error)
	// LatestShareMessage returns the newest user message for a resource, or nil.
	LatestShareMessage(ctx context.Context, resourceID string) (*ShareMessage, error)

	// Waits, on the shared poller, bounded by ctx. On deadline they return
	// the last observed object with an *Error of KindTimeout; a resource
	// that reaches an error status returns KindErrorState with Manila's
	// user message when there is one.
	WaitShare(ctx context.Context, id string, done func(*Share) bool) (*Share, error)
	WaitShareGone(ctx context.Context, id string) error
	WaitShareSnapshot(ctx context.Context, id string, done func(*ShareSnapshot) bool) (*ShareSnapshot, error)
	WaitShareSnapshotGone(ctx context.Context, id string) error
	// WaitAccessRule waits until the rule is active and, for cephx, has
	// its access key; a rule in error is KindErrorState.
	WaitAccessRule(ctx context.Context, shareID, accessID string) (*AccessRule, error)
	// WaitAccessRuleGone returns nil once the rule is absent from the share.
	WaitAccessRuleGone(ctx context.Context, shareID, accessID string) error

	ShareFeatures(ctx context.Context) (ShareFeatures, error)
}

// ShareClouds resolves the cloud a Manila request uses. When the request's
// secrets carry the reference plugin's os-* keys (os-authURL, os-userName,
// os-password, os-applicationCredentialID, os-trustID, ...), a cloud is
// built from them (and cached by a hash of the secrets, never by their
// text); otherwise secrets["cloud"] names a cloud.conf section as for
// Cinder ("" is [Global]). Bad or missing credentials are an *Error of
// KindConfig that names the missing or wrong key, never its value.
type ShareClouds interface {
	ForSecrets(ctx context.Context, secrets map[string]string) (ShareCloud, error)
}
