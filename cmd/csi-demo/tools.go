package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// nodeTool is a program the Cinder demo's node steps run as root, and the
// package that installs it.
type nodeTool struct{ name, pkg string }

// nodeTools: the emulator hot-plugs attachments as loop devices (losetup),
// NodeStage formats the volume as XFS (mkfs.xfs), tells formats apart
// (blkid, through mount-utils) and NodeExpand grows XFS online
// (xfs_growfs); cleanup unmounts what a failed step left (umount).
var nodeTools = []nodeTool{
	{"losetup", "util-linux"},
	{"blkid", "util-linux"},
	{"umount", "util-linux"},
	{"mkfs.xfs", "xfsprogs"},
	{"xfs_growfs", "xfsprogs"},
}

// checkNodeTools names the node steps' programs that are not on PATH and
// what to install, before anything starts: without them a run as root
// would stop at step 3 with "executable file not found".
func checkNodeTools(lookPath func(string) (string, error)) error {
	var missing, pkgs []string
	for _, t := range nodeTools {
		if _, err := lookPath(t.name); err != nil {
			missing = append(missing, t.name)
			if !slices.Contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the node steps (run as root) need %s, not found on PATH: install %s (apt-get install %s, or dnf install %s), "+
		"or run the demo as a non-root user for the controller steps alone",
		strings.Join(missing, ", "), strings.Join(pkgs, " and "), strings.Join(pkgs, " "), strings.Join(pkgs, " "))
}

// lookPath is exec.LookPath, replaceable in tests.
var lookPath = exec.LookPath
