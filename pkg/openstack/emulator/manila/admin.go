package manila

import "sort"

// Views across all projects, for leak checks and the emulator's admin API.

// ShareView is a share as Shares reports it.
type ShareView struct {
	ID, Name, Status, Proto, ShareType, ProjectID string
	Size                                          int
	Metadata                                      map[string]string
	AccessRules                                   int
}

// SnapshotView is a share snapshot as Snapshots reports it.
type SnapshotView struct {
	ID, Name, Status, ShareID, ProjectID string
	Size                                 int
}

// Shares lists every share of every project, by id.
func (s *Service) Shares() []ShareView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ShareView, 0, len(s.st.Shares))
	for _, sh := range s.st.Shares {
		tname := ""
		if t := s.st.Types[sh.TypeID]; t != nil {
			tname = t.Name
		}
		out = append(out, ShareView{ID: sh.ID, Name: sh.Name, Status: sh.Status, Proto: sh.Proto, ShareType: tname,
			ProjectID: sh.ProjectID, Size: sh.Size, Metadata: copyMap(sh.Metadata), AccessRules: len(s.st.rulesOf(sh.ID))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Snapshots lists every share snapshot of every project, by id.
func (s *Service) Snapshots() []SnapshotView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SnapshotView, 0, len(s.st.Snapshots))
	for _, sn := range s.st.Snapshots {
		out = append(out, SnapshotView{ID: sn.ID, Name: sn.Name, Status: sn.Status, ShareID: sn.ShareID, ProjectID: sn.ProjectID, Size: sn.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
