package emulator

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// Persistence: with StateDir set, the store is written to StateDir/state.json
// shortly after every change and on Close, and read back by Start. Volume
// bytes live in DataDir (StateDir/data by default) and survive as well.

const stateFile = "state.json"

// persistInterval bounds how stale the file can be after a crash; writes are
// a few KB, so 200ms costs nothing measurable.
const persistInterval = 200 * time.Millisecond

func (e *Emulator) markDirty() { e.dirty.Store(true) }

func (e *Emulator) persistLoop() {
	defer e.wg.Done()
	t := time.NewTicker(persistInterval)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
			if e.dirty.Swap(false) {
				if err := e.saveState(); err != nil {
					klog.ErrorS(err, "emulator: saving state")
				}
			}
		}
	}
}

func (e *Emulator) saveState() error {
	e.mu.Lock()
	b, err := json.MarshalIndent(e.st, "", " ")
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.opts.StateDir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(e.opts.StateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(e.opts.StateDir, stateFile)); err != nil {
		return err
	}
	return e.saveServices()
}

// loadState reads a saved store. Operations that were in flight complete at
// once, since their timers died with the previous process.
func (e *Emulator) loadState() (bool, error) {
	b, err := os.ReadFile(filepath.Join(e.opts.StateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return false, err
	}
	e.st = st
	for _, sp := range e.opts.Servers {
		if _, ok := st.Servers[sp.ID]; !ok {
			e.addServerLocked(sp, time.Now().UTC())
		}
	}
	e.settleVolumesLocked()
	settleOthers(st)
	for _, v := range st.Volumes {
		e.recomputeVolumeStatusLocked(v)
	}
	return true, nil
}

// settleVolumesLocked finishes the volume operations a restart cut
// short: a create completes (its file made now when missing), a delete is
// done, an extend is undone.
func (e *Emulator) settleVolumesLocked() {
	st := e.st
	for id, v := range st.Volumes {
		switch v.Status {
		case "creating":
			if v.DataFile == "" {
				v.DataFile = e.dataPath("volume", id)
				if err := prepareDataFile("", v.DataFile, int64(v.Size)<<30); err != nil {
					v.Status = "error"
					continue
				}
			}
			v.Status = "available"
		case "deleting":
			removeFile(v.DataFile)
			delete(st.Volumes, id)
		case "extending":
			v.Status = v.PreviousStatus
		}
	}
}

// settleOthers finishes the snapshot, backup and attachment operations a
// restart cut short: creates fail, restores and deletes are done, and
// attachments lose their loop devices (replugAfterLoad makes new ones).
func settleOthers(st *state) {
	for id, s := range st.Snapshots {
		switch s.Status {
		case "creating":
			s.Status = "error"
		case "deleting":
			removeFile(s.DataFile)
			delete(st.Snapshots, id)
		}
	}
	for id, b := range st.Backups {
		switch b.Status {
		case "creating":
			b.Status = "error"
		case "restoring":
			b.Status = "available"
		case "deleting":
			removeFile(b.DataFile)
			delete(st.Backups, id)
		}
	}
	for id, a := range st.Attachments {
		a.LoopDevice = ""
		a.GuestDevice = ""
		switch a.Status {
		case "detaching":
			delete(st.Attachments, id)
		case "reserved", "attaching":
			if !a.Stuck {
				a.Status = "attached"
			}
		}
	}
}

// replugAfterLoad hot-plugs attachments restored from disk.
func (e *Emulator) replugAfterLoad() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.st.Attachments {
		s := e.st.Servers[a.ServerID]
		v := e.st.Volumes[a.VolumeID]
		if a.Status == "attached" && s != nil && s.Local && v != nil {
			e.plug(a, v)
		}
	}
	e.replugGuestsLocked()
}
