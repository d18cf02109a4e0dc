package openstack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
)

// Microversions we use. The cloud layer asks for the highest of these the
// cloud offers and switches features off below it.
const (
	baseCinderMicroversion = "3.0"
	baseNovaMicroversion   = "2.1"

	mvNameFilter       = "3.34" // name and metadata filters on lists
	mvExtendInUse      = "3.42" // extend an attached volume
	mvBackupMetadata   = "3.43" // metadata on backups
	mvCreateFromBackup = "3.47" // backup_id in a volume create
	mvBackupAZ         = "3.51" // availability_zone in a backup create
	mvGroups           = "3.25" // groups (3.13), group snapshots (3.14), a group's volume list (3.25)
	// wantCinder is the highest Cinder microversion any call needs.
	wantCinder = mvBackupAZ

	mvNovaMultiattach = "2.60"
	wantNova          = mvNovaMultiattach
)

type microversion struct{ major, minor int }

func parseMV(s string) (microversion, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	major, minor, ok := strings.Cut(s, ".")
	if !ok {
		return microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	return microversion{a, b}, nil
}

func mustMV(s string) microversion {
	v, err := parseMV(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v microversion) less(o microversion) bool {
	return v.major < o.major || v.major == o.major && v.minor < o.minor
}

func (v microversion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// versionDoc is a service's version document: {"version": {...}} for a
// versioned endpoint, {"versions": [...]} for the root.
type versionDoc struct {
	Version  *versionEntry  `json:"version"`
	Versions []versionEntry `json:"versions"`
}

type versionEntry struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Version    string `json:"version"`
	MinVersion string `json:"min_version"`
}

// maxMicroversion reads the version document of the API behind endpoint
// (e.g. http://host/volume/v3/<project>/) and returns the highest
// microversion for that major version, or ok=false when the service does
// not announce microversions.
func maxMicroversion(ctx context.Context, pc *gophercloud.ProviderClient, endpoint string, major int) (microversion, bool, error) {
	docURL, err := utils.BaseVersionedEndpoint(endpoint)
	if err != nil {
		return microversion{}, false, err
	}
	if !strings.HasSuffix(docURL, "/") {
		docURL += "/"
	}
	var doc versionDoc
	_, err = pc.Request(ctx, "GET", docURL, &gophercloud.RequestOpts{
		JSONResponse: &doc,
		OkCodes:      []int{200, 300},
	})
	if err != nil {
		return microversion{}, false, err
	}
	entries := doc.Versions
	if doc.Version != nil {
		entries = append(entries, *doc.Version)
	}
	best, found := microversion{}, false
	for _, e := range entries {
		id, err := parseMV(strings.TrimPrefix(e.ID, "v") + ".0")
		if err != nil {
			if id2, err2 := parseMV(e.ID); err2 == nil {
				id = id2
			} else {
				continue
			}
		}
		if id.major != major || e.Version == "" {
			continue
		}
		v, err := parseMV(e.Version)
		if err != nil {
			continue
		}
		if !found || best.less(v) {
			best, found = v, true
		}
	}
	return best, found, nil
}

// discoverFeatures reads the Cinder and Nova version documents once per
// connection and picks the microversions to use.
func discoverFeatures(ctx context.Context, pc *gophercloud.ProviderClient, volumeEndpoint, computeEndpoint string, ignoreVolumeMV bool) (Features, error) {
	f := Features{CinderMicroversion: baseCinderMicroversion, NovaMicroversion: baseNovaMicroversion}
	if !ignoreVolumeMV {
		highest, ok, err := maxMicroversion(withCall(ctx, serviceVolume, "version_get"), pc, volumeEndpoint, 3)
		if err != nil {
			return f, classify(err, "version_get", "cinder")
		}
		if ok {
			f.CinderMicroversion = capMV(highest, wantCinder).String()
		}
	}
	cur := mustMV(f.CinderMicroversion)
	f.NameFilter = !cur.less(mustMV(mvNameFilter))
	f.ExtendInUse = !cur.less(mustMV(mvExtendInUse))
	f.BackupMetadata = !cur.less(mustMV(mvBackupMetadata))
	f.CreateFromBackup = !cur.less(mustMV(mvCreateFromBackup))
	f.Groups = !cur.less(mustMV(mvGroups))

	highest, ok, err := maxMicroversion(withCall(ctx, serviceCompute, "version_get"), pc, computeEndpoint, 2)
	if err != nil {
		return f, classify(err, "version_get", "nova")
	}
	if ok && !highest.less(mustMV(mvNovaMultiattach)) {
		f.NovaMultiattach = true
		f.NovaMicroversion = mvNovaMultiattach
	}
	return f, nil
}

func capMV(have microversion, want string) microversion {
	w := mustMV(want)
	if w.less(have) {
		return w
	}
	return have
}

// backupAZSupported reports 3.51, the availability_zone of a backup.
func (f Features) backupAZSupported() bool {
	v, err := parseMV(f.CinderMicroversion)
	return err == nil && !v.less(mustMV(mvBackupAZ))
}

// Manila microversions. Manila's own client floor is 2.0, but the driver
// needs /messages (2.37) to say why a share failed, as the reference
// plugin does; below 2.37 the cloud is refused with KindConfig. Zed serves
// up to 2.73, the highest we ask for.
const (
	mvShareMin            = "2.37" // /messages; also 2.21 access_key in lists, 2.28 queued_to_apply states
	mvShareAccessKey      = "2.21"
	mvShareTransitional   = "2.28"
	mvShareAccessMetadata = "2.45" // metadata on access rules, GET /share-access-rules
	mvShareExportReplicas = "2.47" // export locations of non-active replicas hidden
	mvShareHints          = "2.65" // scheduler_hints same_host/different_host
	mvShareSnapMetadata   = "2.73" // metadata on share snapshots
	wantShare             = mvShareSnapMetadata
)

// shareFeaturesFor derives what a Manila microversion allows.
func shareFeaturesFor(v microversion) ShareFeatures {
	at := func(s string) bool { return !v.less(mustMV(s)) }
	return ShareFeatures{
		Microversion:       v.String(),
		AccessMetadata:     at(mvShareAccessMetadata),
		SchedulerHints:     at(mvShareHints),
		SnapshotMetadata:   at(mvShareSnapMetadata),
		AccessKeyInList:    at(mvShareAccessKey),
		TransitionalAccess: at(mvShareTransitional),
	}
}

// discoverShareFeatures reads Manila's version document and picks the
// microversion: the highest it offers up to wantShare, refusing a cloud
// below mvShareMin.
func discoverShareFeatures(ctx context.Context, pc *gophercloud.ProviderClient, endpoint string) (ShareFeatures, error) {
	highest, ok, err := maxMicroversion(withCall(ctx, serviceShare, "share_version_get"), pc, endpoint, 2)
	if err != nil {
		return ShareFeatures{}, classify(err, "share_version_get", "manila")
	}
	return pickShareMicroversion(highest, ok)
}

func pickShareMicroversion(highest microversion, announced bool) (ShareFeatures, error) {
	if !announced || highest.less(mustMV(mvShareMin)) {
		offered := "no microversions"
		if announced {
			offered = "up to " + highest.String()
		}
		return ShareFeatures{}, &Error{Kind: KindConfig, Op: "share_version_get", Resource: "manila",
			Message: "Manila offers " + offered + "; the driver needs microversion " + mvShareMin + " or later (OpenStack Pike)"}
	}
	return shareFeaturesFor(capMV(highest, wantShare)), nil
}
