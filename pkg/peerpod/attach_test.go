package peerpod

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

var testPod = PodRef{Namespace: "ns", Name: "web-0", UID: "uid-web-0"}

const sandbox = "5e1f00aa77c34d21"

// TestAttachRacesTheVMBoot: the attach may start before the pod VM
// exists, while it boots (Nova refuses BUILD), or after; all three end
// with the volume in-use on the VM.
func TestAttachRacesTheVMBoot(t *testing.T) {
	for _, when := range []string{"before the VM exists", "while it boots", "after it is ACTIVE"} {
		t.Run(when, func(t *testing.T) {
			e := newEnv(t)
			vol := e.volume("pv-" + when[:5])
			var vmID string
			switch when {
			case "while it boots":
				vmID = e.podVM(testPod, sandbox, true)
			case "after it is ACTIVE":
				vmID = e.podVM(testPod, sandbox, false)
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := e.att.Attach(e.ctx(30*time.Second), testPod, vol)
				done <- err
			}()
			time.Sleep(300 * time.Millisecond) // let the attach start waiting first
			switch when {
			case "before the VM exists":
				vmID = e.podVM(testPod, sandbox, true)
				time.Sleep(300 * time.Millisecond)
				e.emu.SetServerStatus(vmID, "ACTIVE")
			case "while it boots":
				e.emu.SetServerStatus(vmID, "ACTIVE")
			}
			if err := <-done; err != nil {
				t.Fatalf("Attach: %v", err)
			}
			e.step("attach "+when, start)
			atts := e.attachments(vol)
			if len(atts) != 1 || atts[0].ServerID != vmID {
				t.Fatalf("attachments %+v, want one on pod VM %s", atts, vmID)
			}
			// Idempotent: a second attach changes nothing.
			if _, err := e.att.Attach(e.ctx(10*time.Second), testPod, vol); err != nil || len(e.attachments(vol)) != 1 {
				t.Fatalf("second Attach: %v, %d attachments", err, len(e.attachments(vol)))
			}
		})
	}
}

// TestAttachWhenTheVMNeverAppears: the deadline ends the wait with a clear
// Unavailable and nothing attached.
func TestAttachWhenTheVMNeverAppears(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("pv-never")
	start := time.Now()
	_, err := e.att.Attach(e.ctx(2*time.Second), testPod, vol)
	e.step("attach, VM never appears (2 s deadline)", start)
	if Code(err) != codes.Unavailable {
		t.Fatalf("Attach = %v, want Unavailable", err)
	}
	t.Logf("error: %v", err)
	if n := e.emuAttachments(vol); n != 0 {
		t.Fatalf("%d attachments after a VM that never appeared", n)
	}
	// A VM that boots but never leaves BUILD says so.
	e.podVM(testPod, sandbox, true)
	_, err = e.att.Attach(e.ctx(2*time.Second), testPod, vol)
	if Code(err) != codes.Unavailable || e.emuAttachments(vol) != 0 {
		t.Fatalf("Attach to a VM stuck in BUILD = %v, %d attachments", err, e.emuAttachments(vol))
	}
	t.Logf("error: %v", err)
}

// TestAttachWhenTheVMIsDeletedMidAttach: the VM goes while Nova attaches;
// the attach answers Aborted and no attachment is left.
func TestAttachWhenTheVMIsDeletedMidAttach(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("pv-mid")
	vmID := e.podVM(testPod, sandbox, false)
	// Slow the attach so the delete lands in the middle of it.
	e.emu.SetLatency("attach", 2*time.Second)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := e.att.Attach(e.ctx(4*time.Second), testPod, vol)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	e.emu.DeleteServer(vmID, true) // Nova's cleanup failed: Cinder keeps the attachment
	err := <-done
	e.step("attach, VM deleted mid-attach", start)
	if c := Code(err); c != codes.Aborted && c != codes.Unavailable && c != codes.NotFound {
		t.Fatalf("Attach = %v, want Aborted", err)
	}
	t.Logf("error: %v", err)
	if n := e.emuAttachments(vol); n != 0 {
		t.Fatalf("%d attachments left after the pod VM was deleted mid-attach", n)
	}
}

// TestSecondPodVMIsRefused: a volume attached to one live pod VM is not
// given to another (ReadWriteOncePod), and nothing changes.
func TestSecondPodVMIsRefused(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("pv-rwop")
	first := e.podVM(testPod, sandbox, false)
	if _, err := e.att.Attach(e.ctx(20*time.Second), testPod, vol); err != nil {
		t.Fatal(err)
	}
	other := PodRef{Namespace: "ns", Name: "web-1", UID: "uid-web-1"}
	e.podVM(other, "77aa00bb11cc22dd", false)
	_, err := e.att.Attach(e.ctx(10*time.Second), other, vol)
	if Code(err) != codes.FailedPrecondition {
		t.Fatalf("second pod's Attach = %v, want FailedPrecondition", err)
	}
	t.Logf("error: %v", err)
	if atts := e.attachments(vol); len(atts) != 1 || atts[0].ServerID != first {
		t.Fatalf("attachments %+v after the refused attach", atts)
	}
}

// TestDetachFreesAVolumeOfADeletedVM: the VM is deleted before the detach,
// and Nova left the Cinder attachment behind; Detach and the next Attach
// (to a new pod VM) both leave no attachment to the deleted VM.
func TestDetachFreesAVolumeOfADeletedVM(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("pv-gone")
	vmID := e.podVM(testPod, sandbox, false)
	if _, err := e.att.Attach(e.ctx(20*time.Second), testPod, vol); err != nil {
		t.Fatal(err)
	}
	e.emu.DeleteServer(vmID, true)
	start := time.Now()
	if err := e.att.Detach(e.ctx(20*time.Second), vol, vmID); err != nil {
		t.Fatalf("Detach after the VM was deleted: %v", err)
	}
	e.step("detach, VM already deleted (orphaned attachment)", start)
	if n := e.emuAttachments(vol); n != 0 {
		t.Fatalf("%d attachments left to the deleted VM", n)
	}

	// Same, but the new pod VM's attach is what notices.
	vm2 := e.podVM(testPod, "0011223344556677", false)
	if _, err := e.att.Attach(e.ctx(20*time.Second), testPod, vol); err != nil {
		t.Fatal(err)
	}
	e.emu.DeleteServer(vm2, true)
	next := PodRef{Namespace: "ns", Name: "web-0", UID: "uid-web-0-b"}
	vm3 := e.podVM(next, "8899aabbccddeeff", false)
	start = time.Now()
	if _, err := e.att.Attach(e.ctx(20*time.Second), next, vol); err != nil {
		t.Fatalf("Attach to the new VM: %v", err)
	}
	e.step("attach to a new pod VM, old one deleted undetached", start)
	if atts := e.attachments(vol); len(atts) != 1 || atts[0].ServerID != vm3 {
		t.Fatalf("attachments %+v, want only the new VM %s", atts, vm3)
	}
}
