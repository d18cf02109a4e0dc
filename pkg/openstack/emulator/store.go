package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// The store is plain data guarded by Emulator.mu. Field names are exported so
// the whole store round-trips through encoding/json for persistence.

type domain struct {
	ID, Name string
}

type project struct {
	ID, Name, DomainID string
}

type user struct {
	ID, Name, DomainID, Password, DefaultProjectID string
}

type appCredential struct {
	ID, Name, UserID, ProjectID, Secret string
}

type token struct {
	ID        string
	UserID    string
	ProjectID string
	Methods   []string
	AppCredID string
	TrustID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
	AuditID   string
}

type server struct {
	ID, Name, AZ string
	Local        bool
	ProjectID    string
	Status       string     // ACTIVE unless a test changes it
	TaskState    string     // non-empty makes attach/detach answer 409, as Nova does for a busy instance
	Guest        *GuestSpec // attachments hot-plug into this QEMU guest (guest.go)
	CreatedAt    time.Time
}

type volumeType struct {
	ID, Name, Description string
	ExtraSpecs            map[string]string
	IsPublic              bool
}

type volume struct {
	ID, Name, Description string
	Status                string
	Size                  int
	AZ                    string
	VolumeTypeID          string
	ProjectID, UserID     string
	Metadata              map[string]string
	SnapshotID            string
	SourceVolID           string
	BackupID              string
	Multiattach           bool
	Host                  string
	CreatedAt, UpdatedAt  time.Time
	DataFile              string
	// PreviousStatus is where an "extending" or "backing-up" volume returns to.
	PreviousStatus string
	// GroupID is the generic volume group the volume is in (cinder_groups.go).
	GroupID string
}

// attachment is one server-volume link, shared by the Nova (block device
// mapping) and Cinder (attachment record) views so they never disagree.
type attachment struct {
	ID                  string // Cinder attachment id
	BDMID               string // Nova block device mapping uuid
	VolumeID            string
	ServerID            string
	Status              string // reserved, attaching, attached, detaching
	Device              string // /dev/vdX
	Slot                int    // PCI slot reported in metadata and by-path
	Tag                 string
	DeleteOnTermination bool
	AttachedAt          time.Time
	CreatedAt           time.Time
	LoopDevice          string
	GuestDevice         string // QOM id of the disk plugged into the server's guest
	Stuck               bool
}

type snapshot struct {
	ID, Name, Description string
	Status                string
	VolumeID              string
	Size                  int
	ProjectID, UserID     string
	Metadata              map[string]string
	CreatedAt, UpdatedAt  time.Time
	DataFile              string
	// GroupSnapshotID marks a member of a group snapshot.
	GroupSnapshotID string
}

type backup struct {
	ID, Name, Description string
	Status                string
	VolumeID, SnapshotID  string
	Size                  int
	ProjectID, UserID     string
	AZ                    string
	Container             string
	Incremental           bool
	Metadata              map[string]string
	FailReason            string
	CreatedAt, UpdatedAt  time.Time
	DataTimestamp         time.Time
	DataFile              string
}

type message struct {
	ID, EventID, UserMessage, MessageLevel string
	ResourceType, ResourceUUID, RequestID  string
	ProjectID                              string
	CreatedAt, GuaranteedUntil             time.Time
}

type quota struct {
	Volumes, Gigabytes, Snapshots, Backups, BackupGigabytes, PerVolumeGigabytes int
}

type state struct {
	Domains        map[string]*domain
	Projects       map[string]*project
	Users          map[string]*user
	AppCredentials map[string]*appCredential
	Trusts         map[string]*trust
	Tokens         map[string]*token
	Servers        map[string]*server
	ServerOrder    []string
	VolumeTypes    map[string]*volumeType
	Volumes        map[string]*volume
	Attachments    map[string]*attachment
	Snapshots      map[string]*snapshot
	Backups        map[string]*backup
	Messages       map[string]*message
	Quotas         map[string]*quota // by project id; missing means defaults
	GroupTypes     map[string]*groupType
	Groups         map[string]*volumeGroup
	GroupSnapshots map[string]*groupSnapshot
}

func newState() *state {
	return &state{
		Domains:        map[string]*domain{},
		Projects:       map[string]*project{},
		Users:          map[string]*user{},
		AppCredentials: map[string]*appCredential{},
		Trusts:         map[string]*trust{},
		Tokens:         map[string]*token{},
		Servers:        map[string]*server{},
		VolumeTypes:    map[string]*volumeType{},
		Volumes:        map[string]*volume{},
		Attachments:    map[string]*attachment{},
		Snapshots:      map[string]*snapshot{},
		Backups:        map[string]*backup{},
		Messages:       map[string]*message{},
		Quotas:         map[string]*quota{},
		GroupTypes:     map[string]*groupType{},
		Groups:         map[string]*volumeGroup{},
		GroupSnapshots: map[string]*groupSnapshot{},
	}
}

func newUUID() string { return host.NewUUID() }

func newHexID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// Lookup helpers; callers hold e.mu.

func (s *state) attachmentsOfVolume(volID string) []*attachment {
	var out []*attachment
	for _, a := range s.Attachments {
		if a.VolumeID == volID {
			out = append(out, a)
		}
	}
	sortAttachments(out)
	return out
}

func (s *state) attachmentsOfServer(serverID string) []*attachment {
	var out []*attachment
	for _, a := range s.Attachments {
		if a.ServerID == serverID {
			out = append(out, a)
		}
	}
	sortAttachments(out)
	return out
}

func (s *state) attachmentFor(serverID, volID string) *attachment {
	for _, a := range s.Attachments {
		if a.ServerID == serverID && a.VolumeID == volID {
			return a
		}
	}
	return nil
}

func (s *state) snapshotsOfVolume(volID string) []*snapshot {
	var out []*snapshot
	for _, sn := range s.Snapshots {
		if sn.VolumeID == volID {
			out = append(out, sn)
		}
	}
	return out
}

func (s *state) volumeTypeByNameOrID(ref string) *volumeType {
	if vt, ok := s.VolumeTypes[ref]; ok {
		return vt
	}
	for _, vt := range s.VolumeTypes {
		if vt.Name == ref {
			return vt
		}
	}
	return nil
}

func (s *state) projectByName(name, domainID string) *project {
	for _, p := range s.Projects {
		if p.Name == name && (domainID == "" || p.DomainID == domainID) {
			return p
		}
	}
	return nil
}

func (s *state) userByName(name, domainID string) *user {
	for _, u := range s.Users {
		if u.Name == name && u.DomainID == domainID {
			return u
		}
	}
	return nil
}

func (s *state) domainByName(name string) *domain {
	for _, d := range s.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}
