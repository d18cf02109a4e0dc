package params

import "testing"

func TestParseGroupSnapshot(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    GroupSnapshot
		wantErr bool
	}{
		{name: "group type", in: map[string]string{"group-type": "csi-consistent"}, want: GroupSnapshot{GroupType: "csi-consistent"}},
		{name: "sidecar identity is read", in: map[string]string{"group-type": " gt ", KeyGroupSnapshotName: "vgs", KeyGroupSnapshotNamespace: "ns", KeyGroupSnapshotContentName: "c"},
			want: GroupSnapshot{GroupType: "gt", Name: "vgs", Namespace: "ns", ContentName: "c"}},
		{name: "other sidecar keys are tolerated", in: map[string]string{"group-type": "gt", "csi.storage.k8s.io/group-snapshotter-secret-name": "s"}, want: GroupSnapshot{GroupType: "gt"}},
		{name: "missing group type", in: map[string]string{}, wantErr: true},
		{name: "empty group type", in: map[string]string{"group-type": " "}, wantErr: true},
		{name: "unknown key", in: map[string]string{"group-type": "gt", "force-create": "true"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGroupSnapshot(tt.in)
			if tt.wantErr {
				if err == nil || !IsInvalid(err) {
					t.Fatalf("got %v, %v; want a parameter error", got, err)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
