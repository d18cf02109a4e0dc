package params

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseVolume(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    *Volume
		wantErr string
	}{
		{name: "empty gives defaults", in: nil, want: &Volume{}},
		{
			name: "reference keys and provisioner metadata",
			in: map[string]string{
				"type": "ssd", "availability": " nova ",
				KeyPVCName: "data", KeyPVCNamespace: "ns", KeyPVName: "pvc-1",
				"csi.storage.k8s.io/provisioner-secret-name": "s",
				"fsType": "xfs",
			},
			want: &Volume{VolumeType: "ssd", Availability: "nova", PVCName: "data", PVCNamespace: "ns", PVName: "pvc-1"},
		},
		{name: "kata pass-through", in: map[string]string{"kataDirectVolume": "false"}, want: &Volume{KataDirectVolume: "false"}},
		{name: "kata must be a bool", in: map[string]string{"kataDirectVolume": "maybe"}, wantErr: `"kataDirectVolume"="maybe": must be true or false`},
		{name: "typo is rejected", in: map[string]string{"availabilty": "nova"}, wantErr: `parameter "availabilty": unknown parameter`},
		{
			name:    "all problems reported",
			in:      map[string]string{"a": "1", "b": "2"},
			wantErr: `parameter "a": unknown parameter` + "\n" + `parameter "b": unknown parameter`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVolume(tt.in)
			checkParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// checkParsed checks a parser's result: a parameter error containing
// wantErr when that is set, else exactly want.
func checkParsed[T any](t *testing.T, got *T, err error, want *T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !IsInvalid(err) {
			t.Fatalf("err = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestParseSnapshot(t *testing.T) {
	def := 20 * time.Second
	tests := []struct {
		name    string
		in      map[string]string
		want    *Snapshot
		wantErr string
	}{
		{name: "defaults", want: &Snapshot{BackupMaxDurationPerGiB: def}},
		{
			name: "backup with every key",
			in: map[string]string{
				"type": "backup", "force-create": "true", "backup-max-duration-seconds-per-gb": "5", "availability": "az2",
				KeySnapshotName: "snap", KeySnapshotNamespace: "ns", KeySnapshotContentName: "content",
				"csi.storage.k8s.io/snapshotter-secret-name": "s",
			},
			want: &Snapshot{Backup: true, Force: true, BackupMaxDurationPerGiB: 5 * time.Second, Availability: "az2", SnapshotName: "snap", SnapshotNamespace: "ns", SnapshotContentName: "content"},
		},
		{name: "snapshot ignores availability", in: map[string]string{"type": "Snapshot", "availability": "az2"}, want: &Snapshot{BackupMaxDurationPerGiB: def}},
		{name: "bad type", in: map[string]string{"type": "clone"}, wantErr: `must be "snapshot" or "backup"`},
		{name: "bad force", in: map[string]string{"force-create": "yes please"}, wantErr: `"force-create"="yes please": must be true or false`},
		{name: "bad duration", in: map[string]string{"backup-max-duration-seconds-per-gb": "-1"}, wantErr: "whole number of seconds"},
		{name: "unknown key", in: map[string]string{"incremental": "true"}, wantErr: `"incremental": unknown parameter`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSnapshot(tt.in)
			checkParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// FuzzParse checks that the parsers never panic, that every failure is a
// parameter error, and that accepted values round-trip into the struct.
func FuzzParse(f *testing.F) {
	f.Add("type", "ssd", "availability", "nova")
	f.Add("kataDirectVolume", "true", "force-create", "1")
	f.Add("backup-max-duration-seconds-per-gb", "99999999999999999999", "type", "backup")
	f.Add("csi.storage.k8s.io/pvc/name", "\x00", "fstype", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		in := map[string]string{k1: v1, k2: v2}
		if v, err := ParseVolume(in); err != nil {
			if !IsInvalid(err) {
				t.Fatalf("ParseVolume error %v is not a parameter error", err)
			}
		} else if t1, ok := in[KeyType]; ok && v.VolumeType != strings.TrimSpace(t1) {
			t.Fatalf("type %q parsed as %q", t1, v.VolumeType)
		}
		if s, err := ParseSnapshot(in); err != nil {
			if !IsInvalid(err) {
				t.Fatalf("ParseSnapshot error %v is not a parameter error", err)
			}
		} else if s.BackupMaxDurationPerGiB <= 0 {
			t.Fatalf("non-positive backup duration %v", s.BackupMaxDurationPerGiB)
		}
	})
}
