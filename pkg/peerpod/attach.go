package peerpod

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

// Publisher is the Cinder controller's attach and detach (a
// *cinder.ControllerServer): the peer-pod attacher reuses them with the pod
// VM's server id as the node, so idempotency, the in-use wait and the
// error mapping are the driver's own.
type Publisher interface {
	ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error)
	ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error)
}

// Cloud is what the attacher asks of OpenStack besides Publisher.
type Cloud interface {
	Servers
	GetVolume(ctx context.Context, id string) (*openstack.Volume, error)
	DeleteAttachment(ctx context.Context, attachmentID string) error
}

// cleanupTimeout bounds the detach after a failed attach when the caller's
// own deadline is already spent: one Nova detach plus a Cinder attachment
// delete take well under a second on the emulator and about 3 s on the
// openstack-rig (tests/e2e/openstack peer-pod flow).
const cleanupTimeout = 30 * time.Second

// vmPoll: a pod VM takes tens of seconds from CAA's create to ACTIVE, and
// cloud-api-adaptor's in-VM agent waits 15 x 2 s for the disk by default,
// so the attach must start within a few seconds of ACTIVE: checks start at
// 0.5 s and back off to at most 3 s.
var vmPoll = poller.Config{Initial: 500 * time.Millisecond, Factor: 1.5, Max: 3 * time.Second}

// Attacher attaches a volume to a pod's VM and detaches it.
type Attacher struct {
	cloud   Cloud
	pub     Publisher
	locator *Locator
	vms     *poller.Poller[*openstack.Server]

	mu   sync.Mutex
	pods map[string]PodRef // poll id -> pod
}

// NewAttacher returns an attacher over one cloud.
func NewAttacher(c Cloud, pub Publisher, l *Locator) *Attacher {
	a := &Attacher{cloud: c, pub: pub, locator: l, pods: map[string]PodRef{}}
	a.vms = poller.New(a.fetchVMs, vmPoll)
	return a
}

func podKey(p PodRef) string { return p.Namespace + "/" + p.Name + "/" + p.UID }

// fetchVMs is the poller's fetch: one Locate per waiting pod.
func (a *Attacher) fetchVMs(ctx context.Context, ids []string) (map[string]poller.Result[*openstack.Server], error) {
	out := map[string]poller.Result[*openstack.Server]{}
	for _, id := range ids {
		a.mu.Lock()
		pod := a.pods[id]
		a.mu.Unlock()
		s, err := a.locator.Locate(ctx, a.cloud, pod)
		if err != nil {
			return nil, err
		}
		out[id] = poller.Result[*openstack.Server]{Value: s, Gone: s == nil}
	}
	return out, nil
}

// WaitForVM waits, within ctx, until the pod's VM exists and can take an
// attachment (ACTIVE or SHUTOFF: Nova refuses a BUILD server). A VM that
// went to ERROR is FailedPrecondition; one that never appears is
// Unavailable once ctx ends, with what was last seen.
func (a *Attacher) WaitForVM(ctx context.Context, pod PodRef) (*openstack.Server, error) {
	key := podKey(pod)
	a.mu.Lock()
	a.pods[key] = pod
	a.mu.Unlock()
	var lastErr error
	res, seen, err := a.vms.Wait(ctx, key, func(r poller.Result[*openstack.Server], err error) (bool, error) {
		if err != nil {
			lastErr = err
			return false, nil // ride out API blips until the deadline
		}
		if r.Gone || r.Value == nil {
			return false, nil
		}
		switch r.Value.Status {
		case "ACTIVE", "SHUTOFF":
			return true, nil
		case "ERROR":
			return false, errPrecondition("pod VM %s of pod %s is in status ERROR; cloud-api-adaptor must recreate it", describe(r.Value), pod)
		}
		return false, nil
	})
	if err == nil {
		return res.Value, nil
	}
	if ctx.Err() == nil {
		return nil, err
	}
	switch {
	case seen && res.Value != nil:
		return nil, errWaiting("pod VM %s of pod %s is still %s; the attach starts once it is ACTIVE", describe(res.Value), pod, res.Value.Status)
	case lastErr != nil:
		return nil, errWaiting("no VM found for pod %s before the deadline: %v", pod, lastErr)
	}
	return nil, errWaiting("no VM for pod %s appeared before the deadline (no PeerPod CR with an instance id, no server named like %s); nothing was attached",
		pod, InstanceNamePattern(pod.Name))
}

// rwopMount is the capability the attach is made with: the peer-pod
// driver's only mode.
var rwopMount = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
}

// Attach attaches the volume to the pod's VM once it exists, within ctx,
// and returns the VM. Another live server holding the volume is
// FailedPrecondition (one pod VM at a time); an attachment to a server
// that no longer exists is freed first. A VM deleted during the attach
// leaves nothing attached: the attachment is removed and the answer is
// Aborted.
func (a *Attacher) Attach(ctx context.Context, pod PodRef, volumeID string) (*openstack.Server, error) {
	start := time.Now()
	vm, err := a.WaitForVM(ctx, pod)
	if err != nil {
		return nil, err
	}
	booted := time.Since(start)
	if err := a.freeStale(ctx, volumeID, vm.ID); err != nil {
		return nil, err
	}
	_, err = a.pub.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: volumeID, NodeId: vm.ID, VolumeCapability: rwopMount})
	if err == nil {
		// The VM may have been deleted while Nova attached: Cinder can
		// then show the volume in-use on a server that is gone.
		if _, gerr := a.cloud.GetServer(ctx, vm.ID); openstack.IsNotFound(gerr) {
			err = errAborted("pod VM %s vanished during the attach", vm.ID)
		}
	}
	if err != nil {
		return nil, a.afterFailedAttach(ctx, pod, vm, volumeID, err)
	}
	klog.InfoS("Attached volume to pod VM", "volumeID", volumeID, "pod", pod.String(), "server", vm.ID,
		"waitedForVM", booted, "took", time.Since(start))
	return vm, nil
}

// afterFailedAttach: when the VM vanished under the attach, undo whatever
// Nova or Cinder kept and say so; otherwise the attach error stands (the
// Cinder controller leaves nothing half-done on a retryable error: the
// retry waits on the same attachment).
func (a *Attacher) afterFailedAttach(ctx context.Context, pod PodRef, vm *openstack.Server, volumeID string, attachErr error) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := a.cloud.GetServer(cctx, vm.ID); !openstack.IsNotFound(err) {
		return attachErr
	}
	if err := a.Detach(cctx, volumeID, vm.ID); err != nil {
		return errors.Join(errAborted("pod VM %s of pod %s was deleted while volume %s was attaching", vm.ID, pod, volumeID), err)
	}
	return errAborted("pod VM %s of pod %s was deleted while volume %s was attaching; nothing is left attached", vm.ID, pod, volumeID)
}

// cleanupContext keeps ctx's values and gives cleanup its own deadline
// when ctx has (nearly) none left.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > cleanupTimeout/2 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// freeStale frees the volume from every server other than want that no
// longer exists, and refuses a live one.
func (a *Attacher) freeStale(ctx context.Context, volumeID, want string) error {
	vol, err := a.cloud.GetVolume(ctx, volumeID)
	if openstack.IsNotFound(err) {
		return errPrecondition("volume %s does not exist", volumeID)
	}
	if err != nil {
		return fromCloud(err, "reading volume %s", volumeID)
	}
	for _, att := range vol.Attachments {
		if att.ServerID == want {
			continue
		}
		s, err := a.cloud.GetServer(ctx, att.ServerID)
		switch {
		case openstack.IsNotFound(err):
			if err := a.deleteAttachment(ctx, volumeID, att); err != nil {
				return err
			}
		case err != nil:
			return fromCloud(err, "reading server %s that holds volume %s", att.ServerID, volumeID)
		default:
			return errPrecondition("volume %s is attached to server %s; the peer-pod driver gives a volume to one pod VM at a time (ReadWriteOncePod): delete that pod first",
				volumeID, describe(s))
		}
	}
	return nil
}

func (a *Attacher) deleteAttachment(ctx context.Context, volumeID string, att openstack.VolumeAttachment) error {
	if err := a.cloud.DeleteAttachment(ctx, att.AttachmentID); err != nil {
		return fromCloud(err, "freeing volume %s from deleted server %s", volumeID, att.ServerID)
	}
	klog.InfoS("Freed volume attached to a server that no longer exists", "volumeID", volumeID,
		"server", att.ServerID, "attachmentID", att.AttachmentID)
	return nil
}

// Detach detaches the volume from the server through the Cinder
// controller; when the server no longer exists, any Cinder attachment
// still naming it is deleted, so a volume is never left attached to a
// deleted VM.
func (a *Attacher) Detach(ctx context.Context, volumeID, serverID string) error {
	if _, err := a.pub.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volumeID, NodeId: serverID}); err != nil {
		return err
	}
	vol, err := a.cloud.GetVolume(ctx, volumeID)
	if openstack.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fromCloud(err, "reading volume %s", volumeID)
	}
	for _, att := range vol.Attachments {
		if att.ServerID != serverID {
			continue
		}
		if _, err := a.cloud.GetServer(ctx, serverID); !openstack.IsNotFound(err) {
			return fromCloud(err, "reading server %s", serverID)
		}
		if err := a.deleteAttachment(ctx, volumeID, att); err != nil {
			return err
		}
	}
	return nil
}

// CurrentCloud is a Cloud that asks the configured clouds for the [Global]
// cloud on every call: the configuration may be reloaded underneath
// (rotated credentials), so a Cloud is never kept across operations. The
// peer-pod reconciler has no request secrets to select another cloud.
type CurrentCloud struct{ Clouds openstack.Clouds }

func (c CurrentCloud) get() (openstack.Cloud, error) { return c.Clouds.Get("") }

// GetServer implements Cloud.
func (c CurrentCloud) GetServer(ctx context.Context, id string) (*openstack.Server, error) {
	cl, err := c.get()
	if err != nil {
		return nil, err
	}
	return cl.GetServer(ctx, id)
}

// ListServersByName implements Cloud.
func (c CurrentCloud) ListServersByName(ctx context.Context, name *regexp.Regexp) ([]openstack.Server, error) {
	cl, err := c.get()
	if err != nil {
		return nil, err
	}
	return cl.ListServersByName(ctx, name)
}

// GetVolume implements Cloud.
func (c CurrentCloud) GetVolume(ctx context.Context, id string) (*openstack.Volume, error) {
	cl, err := c.get()
	if err != nil {
		return nil, err
	}
	return cl.GetVolume(ctx, id)
}

// DeleteAttachment implements Cloud.
func (c CurrentCloud) DeleteAttachment(ctx context.Context, attachmentID string) error {
	cl, err := c.get()
	if err != nil {
		return err
	}
	return cl.DeleteAttachment(ctx, attachmentID)
}
