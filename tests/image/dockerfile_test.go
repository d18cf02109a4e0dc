// Package image checks the Dockerfile without a Docker engine: its stages,
// and that every host tool the plugin executes is installed in the runtime
// image.
package image

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// toolPackages maps each host tool the plugin may run (directly or through
// k8s.io/mount-utils) to the Debian package that ships it.
var toolPackages = map[string]string{
	"mount": "mount", "umount": "mount",
	"blkid": "util-linux", "blockdev": "util-linux", "losetup": "mount", "findmnt": "util-linux",
	"mkfs.ext4": "e2fsprogs", "mkfs.ext3": "e2fsprogs", "e2fsck": "e2fsprogs", "resize2fs": "e2fsprogs", "dumpe2fs": "e2fsprogs", "fsck": "util-linux",
	"mkfs.xfs": "xfsprogs", "xfs_growfs": "xfsprogs", "xfs_repair": "xfsprogs", "xfs_io": "xfsprogs",
	"udevadm": "udev",
	"sync":    "coreutils",
}

// mountUtilsTools are run by k8s.io/mount-utils on our behalf
// (SafeFormatAndMount, ResizeFs), so they never appear in our sources.
var mountUtilsTools = []string{"mount", "umount", "blkid", "fsck", "mkfs.ext4", "mkfs.xfs", "resize2fs", "xfs_growfs", "blockdev"}

type stage struct {
	from, name string
	lines      []string
}

func readStages(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatalf("open Dockerfile: %v", err)
	}
	defer f.Close()
	var stages []stage
	var joined strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			joined.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		joined.WriteString(line)
		full := joined.String()
		joined.Reset()
		fields := strings.Fields(full)
		if strings.EqualFold(fields[0], "FROM") {
			s := stage{from: fields[1]}
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				s.name = fields[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", full)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, full)
	}
	return stages
}

func TestDockerfileStages(t *testing.T) {
	stages := readStages(t)
	if len(stages) != 2 {
		t.Fatalf("want a build stage and a runtime stage, got %d stages", len(stages))
	}
	build, runtime := stages[0], stages[1]
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("build stage FROM %q, want a golang image", build.from)
	}
	if !containsLine(build.lines, "CGO_ENABLED=0 go build") || !containsLine(build.lines, "./cmd/cinder-csi-plugin") {
		t.Errorf("build stage does not build ./cmd/cinder-csi-plugin statically")
	}
	if strings.HasPrefix(runtime.from, "golang:") {
		t.Errorf("runtime stage FROM %q carries the Go toolchain", runtime.from)
	}
	if !containsLine(runtime.lines, "COPY --from="+build.name+" /out/cinder-csi-plugin") {
		t.Errorf("runtime stage does not copy the binary from the %q stage", build.name)
	}
	if !containsLine(runtime.lines, `ENTRYPOINT ["/bin/cinder-csi-plugin"]`) {
		t.Errorf("runtime stage has no exec-form ENTRYPOINT for the plugin")
	}
	if !containsLine(runtime.lines, "rm -rf /var/lib/apt/lists") {
		t.Errorf("runtime stage keeps the apt lists")
	}
}

func TestEveryExecutedToolIsInstalled(t *testing.T) {
	stages := readStages(t)
	installed := map[string]bool{"coreutils": true} // essential in every Debian image
	for _, l := range stages[len(stages)-1].lines {
		if i := strings.Index(l, "apt-get install"); i >= 0 {
			for _, w := range strings.Fields(l[i:]) {
				if w == "&&" {
					break
				}
				installed[w] = true
			}
		}
	}
	tools := append(executedTools(t), mountUtilsTools...)
	sort.Strings(tools)
	for _, tool := range tools {
		pkg, known := toolPackages[tool]
		if !known {
			t.Errorf("the plugin runs %q, which this test does not map to a Debian package", tool)
			continue
		}
		if !installed[pkg] {
			t.Errorf("the plugin runs %q but the runtime image does not install %q", tool, pkg)
		}
	}
}

// executedTools scans production sources for exec.Command* calls and
// returns the literal program names.
func executedTools(t *testing.T) []string {
	t.Helper()
	// Only whole literals: a name built at run time ("mkfs."+fsType) is
	// covered by mountUtilsTools, which lists every mkfs we support.
	call := regexp.MustCompile(`\.Command(?:Context)?\((?:ctx, )?"([A-Za-z0-9_.]+)"\s*[,)]`)
	seen := map[string]bool{}
	root := filepath.Join("..", "..")
	for _, dir := range []string{"cmd/cinder-csi-plugin", "pkg"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				// The emulator and test helpers never run in the image.
				if d.Name() == "emulator" || strings.HasSuffix(d.Name(), "test") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range call.FindAllStringSubmatch(string(src), -1) {
				seen[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", dir, err)
		}
	}
	if len(seen) == 0 {
		t.Fatal("found no executed tools; the scan is broken")
	}
	var out []string
	for tool := range seen {
		out = append(out, tool)
	}
	return out
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
