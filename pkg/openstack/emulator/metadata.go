package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// The metadata service answers like Nova's at URL()+"/openstack/latest/meta_data.json"
// for the first Local server, and at "/servers/{id}/openstack/latest/meta_data.json"
// for any server.
func (e *Emulator) metadataRoutes(add addFunc) {
	add("GET", svcMetadata, "/openstack", true, (*Emulator).metadataVersions)
	add("GET", svcMetadata, "/openstack/latest/meta_data.json", true, (*Emulator).metadataDefault)
	add("GET", svcMetadata, "/servers/{server_id}/openstack", true, (*Emulator).metadataVersions)
	add("GET", svcMetadata, "/servers/{server_id}/openstack/latest/meta_data.json", true, (*Emulator).metadataForServer)
}

func (e *Emulator) metadataVersions(q *req) {
	q.w.Header().Set("Content-Type", "text/plain")
	_, _ = q.w.Write([]byte("2012-08-10\n2013-04-04\n2016-06-30\n2017-02-22\n2018-08-27\n2020-10-14\nlatest"))
}

// LocalServerID is the first server marked Local ("" if none).
func (e *Emulator) LocalServerID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.st.ServerOrder {
		if s := e.st.Servers[id]; s != nil && s.Local {
			return id
		}
	}
	return ""
}

func (e *Emulator) metadataDefault(q *req) {
	id := e.LocalServerID()
	if id == "" {
		writeError(q.w, http.StatusNotFound, "No local server.")
		return
	}
	e.serveMetadata(q, id)
}

func (e *Emulator) metadataForServer(q *req) { e.serveMetadata(q, q.p("server_id")) }

func (e *Emulator) serveMetadata(q *req, id string) {
	b, err := e.MetadataJSON(id)
	if err != nil {
		writeError(q.w, http.StatusNotFound, err.Error())
		return
	}
	q.w.Header().Set("Content-Type", "application/json")
	_, _ = q.w.Write(b)
}

// MetadataJSON renders meta_data.json for a server, including a "devices"
// entry (bus, serial, address) for each completed volume attachment.
func (e *Emulator) MetadataJSON(serverID string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st.Servers[serverID]
	if s == nil {
		return nil, fmt.Errorf("server %s not found", serverID)
	}
	devices := []any{}
	for _, a := range e.st.attachmentsOfServer(serverID) {
		if a.Status != "attached" {
			continue
		}
		d := map[string]any{"type": "disk", "bus": "pci", "serial": a.VolumeID, "address": pciAddress(a.Slot), "path": a.Device, "tags": []string{}}
		if a.Tag != "" {
			d["tags"] = []string{a.Tag}
		}
		devices = append(devices, d)
	}
	md := map[string]any{
		"uuid": s.ID, "name": s.Name, "hostname": s.Name, "availability_zone": s.AZ, "project_id": s.ProjectID,
		"launch_index": 0, "meta": map[string]any{}, "public_keys": map[string]any{}, "keys": []any{}, "devices": devices,
		"random_seed": "",
	}
	return json.MarshalIndent(md, "", "  ")
}

// WriteConfigDrive writes dir/openstack/latest/meta_data.json for a server,
// the layout of a mounted config drive.
func (e *Emulator) WriteConfigDrive(dir, serverID string) error {
	b, err := e.MetadataJSON(serverID)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "openstack", "latest")
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p, "meta_data.json"), b, 0o644)
}
