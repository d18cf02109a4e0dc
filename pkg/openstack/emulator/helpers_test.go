package emulator

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

func startEmu(t *testing.T, opts Options) *Emulator {
	t.Helper()
	e, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func authOpts(e *Emulator, user, pass, project string) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: e.AuthURL(), Username: user, Password: pass, DomainName: "Default",
		TenantName: project, AllowReauth: true,
	}
}

func provider(t *testing.T, e *Emulator) *gophercloud.ProviderClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(context.Background(), authOpts(e, "demo", "demo-secret", "demo"))
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	return p
}

type clients struct {
	vol     *gophercloud.ServiceClient
	compute *gophercloud.ServiceClient
}

func newClients(t *testing.T, e *Emulator) clients {
	t.Helper()
	return clientsFrom(t, provider(t, e))
}

func openstackAuth(e *Emulator, user, pass string) (*gophercloud.ProviderClient, error) {
	return openstack.AuthenticatedClient(context.Background(), authOpts(e, user, pass, user))
}

func clientsFrom(t *testing.T, p *gophercloud.ProviderClient) clients {
	t.Helper()
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	vol, err := openstack.NewBlockStorageV3(p, eo)
	if err != nil {
		t.Fatalf("block storage client: %v", err)
	}
	cmp, err := openstack.NewComputeV2(p, eo)
	if err != nil {
		t.Fatalf("compute client: %v", err)
	}
	return clients{vol: vol, compute: cmp}
}

func withMV(c *gophercloud.ServiceClient, mv string) *gophercloud.ServiceClient {
	cc := *c
	cc.Microversion = mv
	return &cc
}

// eventually polls cond until it holds; the test binary's own timeout is the
// only deadline, so no timed assertion exists.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitVolume(t *testing.T, c *gophercloud.ServiceClient, id, status string) *volumes.Volume {
	t.Helper()
	var v *volumes.Volume
	eventually(t, "volume "+id+" "+status, func() bool {
		var err error
		v, err = volumes.Get(context.Background(), c, id).Extract()
		if err != nil {
			t.Fatalf("get volume: %v", err)
		}
		return v.Status == status
	})
	return v
}

func waitGone(t *testing.T, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	eventually(t, "volume "+id+" gone", func() bool {
		_, err := volumes.Get(context.Background(), c, id).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound)
	})
}

func createVolume(t *testing.T, c *gophercloud.ServiceClient, opts volumes.CreateOpts) *volumes.Volume {
	t.Helper()
	v, err := volumes.Create(context.Background(), c, opts, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	return waitVolume(t, c, v.ID, "available")
}

func statusOf(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

func attach(t *testing.T, c clients, serverID, volID string) *volumeattach.VolumeAttachment {
	t.Helper()
	a, err := volumeattach.Create(context.Background(), c.compute, serverID, volumeattach.CreateOpts{VolumeID: volID}).Extract()
	if err != nil {
		t.Fatalf("attach %s to %s: %v", volID, serverID, err)
	}
	return a
}

func detach(t *testing.T, c clients, serverID, volID string) {
	t.Helper()
	if err := volumeattach.Delete(context.Background(), c.compute, serverID, volID).ExtractErr(); err != nil {
		t.Fatalf("detach %s from %s: %v", volID, serverID, err)
	}
}

func createSnapshot(t *testing.T, c clients, volID string, force bool) string {
	t.Helper()
	ctx := context.Background()
	s, err := snapshots.Create(ctx, c.vol, snapshots.CreateOpts{VolumeID: volID, Force: force, Name: "snap-" + volID[:8]}).Extract()
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	eventually(t, "snapshot available", func() bool {
		got, err := snapshots.Get(ctx, c.vol, s.ID).Extract()
		if err != nil {
			t.Fatalf("get snapshot: %v", err)
		}
		return got.Status == "available"
	})
	return s.ID
}
