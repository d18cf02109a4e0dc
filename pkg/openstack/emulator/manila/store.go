package manila

import (
	"time"
)

// The store is plain data guarded by Service.mu; exported fields let it
// round-trip through encoding/json for persistence.

type shareType struct {
	ID, Name, Description string
	// ExtraSpecs as an admin sees them (share_backend_name included).
	ExtraSpecs map[string]string
	IsPublic   bool
	IsDefault  bool
	// Protocol is what the type's emulated backend serves ("NFS" for
	// CephFS through NFS-Ganesha, "CEPHFS" for native CephFS): a share of
	// another protocol fails scheduling, as on the rig.
	Protocol string
}

type share struct {
	ID, InstanceID       string
	Name, Description    string
	Status               string
	Proto                string
	TypeID               string
	AZ                   string
	ProjectID, UserID    string
	SnapshotID           string
	ShareNetworkID       string
	ShareGroupID         string
	IsPublic             bool
	Size                 int
	Metadata             map[string]string
	Exports              []*exportLocation
	CreatedAt, UpdatedAt time.Time
	TaskState            string
	Scheduled            bool // scheduled to a backend: availability_zone and host are known
	AZExplicit           bool // the request named the zone: the create response shows it
	PreviousSize         int  // the size before an extend or shrink in flight
	// Undeletable: the share failed in a way its backend cannot undo (a
	// share network on a type without share servers): delete ends in
	// error_deleting, as on the rig, until ForceDeleteShare.
	Undeletable           bool
	SchedulerHintSameHost string
}

type exportLocation struct {
	ID, Path    string
	Preferred   bool
	IsAdminOnly bool
}

type accessRule struct {
	ID, ShareID          string
	ProjectID            string
	Type, To, Level      string
	State                string
	Key                  string // cephx secret, once "made"
	Metadata             map[string]string
	CreatedAt, UpdatedAt time.Time
	// Held by the StuckAccessRules fault: stays queued_to_apply.
	Held bool
}

type snapshot struct {
	ID, ShareID          string
	Name, Description    string
	Status               string
	Proto                string
	Size, ShareSize      int
	ProjectID, UserID    string
	Metadata             map[string]string
	CreatedAt, UpdatedAt time.Time
}

type message struct {
	ID, ProjectID        string
	ActionID, DetailID   string
	UserMessage          string
	ResourceType         string
	ResourceID           string
	RequestID            string
	CreatedAt, ExpiresAt time.Time
}

type shareNetwork struct {
	ID, Name, Description         string
	ProjectID                     string
	NeutronNetID, NeutronSubnetID string
	AZ                            string
	CreatedAt, UpdatedAt          time.Time
	SubnetID                      string
}

// Quota is a project's Manila quota; -1 is unlimited.
type Quota struct {
	Shares            int `json:"shares"`
	Gigabytes         int `json:"gigabytes"`
	Snapshots         int `json:"snapshots"`
	SnapshotGigabytes int `json:"snapshot_gigabytes"`
	ShareNetworks     int `json:"share_networks"`
	PerShareGigabytes int `json:"per_share_gigabytes"`
}

type state struct {
	Types         map[string]*shareType
	Shares        map[string]*share
	Access        map[string]*accessRule
	Snapshots     map[string]*snapshot
	Messages      map[string]*message
	ShareNetworks map[string]*shareNetwork
	Quotas        map[string]*Quota // by project id; missing means defaults
	AZIDs         map[string]string // AZ name -> id
}

func newState() *state {
	return &state{
		Types: map[string]*shareType{}, Shares: map[string]*share{}, Access: map[string]*accessRule{},
		Snapshots: map[string]*snapshot{}, Messages: map[string]*message{}, ShareNetworks: map[string]*shareNetwork{},
		Quotas: map[string]*Quota{}, AZIDs: map[string]string{},
	}
}

func (s *state) typeByNameOrID(ref string) *shareType {
	if t, ok := s.Types[ref]; ok {
		return t
	}
	for _, t := range s.Types {
		if t.Name == ref {
			return t
		}
	}
	return nil
}

func (s *state) defaultType() *shareType {
	for _, t := range s.Types {
		if t.IsDefault {
			return t
		}
	}
	return nil
}

func (s *state) rulesOf(shareID string) []*accessRule {
	var out []*accessRule
	for _, r := range s.Access {
		if r.ShareID == shareID {
			out = append(out, r)
		}
	}
	sortByCreated(out, func(r *accessRule) (time.Time, string) { return r.CreatedAt, r.ID })
	return out
}

func (s *state) snapshotsOf(shareID string) []*snapshot {
	var out []*snapshot
	for _, sn := range s.Snapshots {
		if sn.ShareID == shareID {
			out = append(out, sn)
		}
	}
	return out
}
