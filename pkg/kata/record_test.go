package kata

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestEncodePathIsPaddedURLBase64OfTheExactPath(t *testing.T) {
	for path, want := range map[string]string{
		// 1 byte short of a multiple of 3: one '=' of padding.
		"/var/lib/kubelet/pods/a/mount": "L3Zhci9saWIva3ViZWxldC9wb2RzL2EvbW91bnQ=",
		// '?' and '>' land on '_' and '-' in the URL alphabet.
		"/a??>": "L2E_Pz4=",
		// A trailing slash is a different key: no cleaning.
		"/a/": "L2Ev",
		"/a":  "L2E=",
	} {
		got, err := EncodePath(path)
		if err != nil || got != want {
			t.Errorf("EncodePath(%q) = %q, %v; want %q", path, got, err, want)
		}
		back, err := DecodePath(got)
		if err != nil || back != path {
			t.Errorf("DecodePath(%q) = %q, %v", got, back, err)
		}
	}
	if _, err := EncodePath(""); err == nil {
		t.Error("empty path encoded")
	}
}

func TestEncodePathLengthLimit(t *testing.T) {
	ok := "/" + strings.Repeat("a", MaxTargetPathLen-1)
	name, err := EncodePath(ok)
	if err != nil {
		t.Fatalf("%d-byte path: %v", len(ok), err)
	}
	if len(name) != 252 || len(name) > 255 {
		t.Errorf("encoded length %d", len(name))
	}
	_, err = EncodePath(ok + "a")
	if !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("190-byte path: %v, want ErrPathTooLong", err)
	}
	// The limit is the real one: 190 bytes encode to 256 > NAME_MAX.
	if n := base64.URLEncoding.EncodedLen(MaxTargetPathLen + 1); n <= 255 {
		t.Fatalf("limit is too strict: %d", n)
	}
}

func testRecord() *MountInfo {
	return &MountInfo{
		VolumeType: VolumeTypeDirect,
		Device:     "/dev/disk/by-id/virtio-0123456789abcdef0123",
		FsType:     "ext4",
		Metadata:   map[string]string{MetaVolumeID: "vol-1", MetaFSGroup: "2000"},
		Options:    []string{"noatime", "ro"},
	}
}

func TestWriteIsAtomicWithExactModesAndNoExtraFiles(t *testing.T) {
	root := filepath.Join(t.TempDir(), "direct-volumes") // created on demand
	s := NewStore(root)
	target := "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount"
	var seen []string
	s.beforeRename = func() error {
		// The complete record exists only under a dot-prefixed name.
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			seen = append(seen, e.Name())
		}
		return nil
	}
	if err := s.Write(target, testRecord()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], ".tmp-") {
		t.Fatalf("before rename the root held %v, want one .tmp- directory", seen)
	}
	dir := filepath.Join(root, base64.URLEncoding.EncodeToString([]byte(target)))
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || entries[0].Name() != filepath.Base(dir) {
		t.Fatalf("root holds %v (%v), want only %s", entries, err, filepath.Base(dir))
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 || files[0].Name() != "mountInfo.json" {
		t.Fatalf("record dir holds %v, want only mountInfo.json", files)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("record dir mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(dir, "mountInfo.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("record file mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(root); st.Mode().Perm() != 0o700 {
		t.Errorf("created root mode %v", st.Mode().Perm())
	}
	data, _ := os.ReadFile(filepath.Join(dir, "mountInfo.json"))
	want := `{"volume-type":"directvol","device":"/dev/disk/by-id/virtio-0123456789abcdef0123","fstype":"ext4",` +
		`"metadata":{"cinder.csi.openstack.org/volume-id":"vol-1","fsGroup":"2000"},"options":["noatime","ro"]}`
	if string(data) != want {
		t.Errorf("record JSON\n got %s\nwant %s", data, want)
	}
}

func TestWriteRetryAndConflict(t *testing.T) {
	s := NewStore(t.TempDir())
	target := "/t/mount"
	if err := s.Write(target, testRecord()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(target, testRecord()); err != nil {
		t.Fatalf("identical retry: %v", err)
	}
	other := testRecord()
	other.Options = []string{"noatime"}
	if err := s.Write(target, other); !errors.Is(err, ErrRecordConflict) {
		t.Fatalf("different record: %v, want ErrRecordConflict", err)
	}
	got, err := s.Read(target)
	if err != nil || !got.Equal(testRecord()) {
		t.Fatalf("record changed by a refused write: %+v, %v", got, err)
	}
}

func TestWriteFailureBeforeRenameLeavesNoRecord(t *testing.T) {
	s := NewStore(t.TempDir())
	s.beforeRename = func() error { return errors.New("crash") }
	if err := s.Write("/t/mount", testRecord()); err == nil {
		t.Fatal("write succeeded")
	}
	if s.Exists("/t/mount") {
		t.Fatal("record exists after a failed write")
	}
	if _, err := s.Read("/t/mount"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read: %v, want ErrNotExist", err)
	}
}

func TestStaleTempsAreCleanedAndIgnored(t *testing.T) {
	root := t.TempDir()
	s := NewStore(root)
	if err := s.Write("/t/a", testRecord()); err != nil {
		t.Fatal(err)
	}
	// What a crash between building and renaming leaves behind.
	stale := filepath.Join(root, ".tmp-123")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, MountInfoFile), []byte(`{"volume-type":"directvol"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(); len(l) != 1 || l[0].TargetPath != "/t/a" {
		t.Fatalf("List = %+v, want only /t/a", l)
	}
	n, err := s.CleanStaleTemps()
	if err != nil || n != 1 {
		t.Fatalf("CleanStaleTemps = %d, %v", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("stale temp survived")
	}
	if !s.Exists("/t/a") {
		t.Fatal("real record removed")
	}
}

func TestSandboxIDsAndFindVolume(t *testing.T) {
	s := NewStore(t.TempDir())
	if err := s.Write("/t/a", testRecord()); err != nil {
		t.Fatal(err)
	}
	dir, _ := s.Dir("/t/a")
	for _, id := range []string{"sb-2", "sb-1"} { // as the Go runtime records them
		if err := os.WriteFile(filepath.Join(dir, id), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.SandboxIDs("/t/a")
	if err != nil || strings.Join(ids, ",") != "sb-1,sb-2" {
		t.Fatalf("SandboxIDs = %v, %v", ids, err)
	}
	if e, _ := s.FindVolume("vol-1"); len(e) != 1 || e[0].TargetPath != "/t/a" {
		t.Fatalf("FindVolume = %+v", e)
	}
	if e, _ := s.FindVolume("vol-2"); len(e) != 0 {
		t.Fatalf("FindVolume(vol-2) = %+v", e)
	}
	if err := s.Remove("/t/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("/t/a"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

// kataMountInfo is kata-containers' src/runtime/pkg/direct-volume
// MountInfo, copied with its JSON tags.
type kataMountInfo struct {
	VolumeType string            `json:"volume-type"`
	Device     string            `json:"device"`
	FsType     string            `json:"fstype"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Options    []string          `json:"options,omitempty"`
}

// decodeAsKata reads every record under root the way the Kata runtimes do:
// each directory name is base64.URLEncoding (padded) of the volume path,
// the file is mountInfo.json, and runtime-rs' serde accepts only the exact
// keys (no case folding), so the keys are checked literally.
func decodeAsKata(t *testing.T, root string) map[string]kataMountInfo {
	t.Helper()
	out := map[string]kataMountInfo{}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		volumePath, err := base64.URLEncoding.DecodeString(e.Name())
		if err != nil {
			t.Fatalf("directory %q is not padded URL base64: %v", e.Name(), err)
		}
		data, err := os.ReadFile(filepath.Join(root, e.Name(), "mountInfo.json"))
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range raw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "volume-type", "device", "fstype", "metadata", "options":
			default:
				t.Errorf("record key %q is not one of Kata's", k)
			}
		}
		var mi kataMountInfo
		if err := json.Unmarshal(data, &mi); err != nil {
			t.Fatal(err)
		}
		if mi.VolumeType != "directvol" {
			t.Errorf("volume-type %q; runtime-rs needs directvol", mi.VolumeType)
		}
		for k := range mi.Metadata {
			if k == "createFilesystem" || k == "encryptionKey" {
				t.Errorf("metadata carries %s", k)
			}
		}
		for _, o := range mi.Options {
			if o == "bind" || o == "rw" {
				t.Errorf("options carry %q", o)
			}
		}
		out[string(volumePath)] = mi
	}
	return out
}

func TestRecordRoundTripsThroughKataDecoding(t *testing.T) {
	root := t.TempDir()
	s := NewStore(root)
	target := "/var/lib/kubelet/pods/0e3f/volumes/kubernetes.io~csi/pvc-x/mount"
	want := testRecord()
	if err := s.Write(target, want); err != nil {
		t.Fatal(err)
	}
	got := decodeAsKata(t, root)
	mi, ok := got[target]
	if !ok || len(got) != 1 {
		t.Fatalf("Kata decoding found %v, want %s", got, target)
	}
	if back := (MountInfo)(mi); !back.Equal(want) {
		t.Fatalf("round trip: %+v, want %+v", mi, want)
	}
}
