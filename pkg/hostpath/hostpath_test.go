package hostpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// newTestRoot makes a kubelet-like tree in a temp dir: a staging dir, a
// pod target, a symlink escaping to an outside dir, a symlink staying
// inside, and a plain file.
func newTestRoot(t *testing.T) (*Root, string, string) {
	t.Helper()
	base := t.TempDir()
	kubelet := filepath.Join(base, "kubelet")
	outside := filepath.Join(base, "etc")
	for _, d := range []string{
		filepath.Join(kubelet, "plugins", "csi", "globalmount"),
		filepath.Join(kubelet, "pods", "uid", "volumes", "mount"),
		outside,
	} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Symlink(outside, filepath.Join(kubelet, "pods", "escape")))
	must(t, os.Symlink(filepath.Join(kubelet, "plugins"), filepath.Join(kubelet, "pods", "inside")))
	must(t, os.WriteFile(filepath.Join(kubelet, "pods", "file"), nil, 0o640))
	r, err := NewRoot(kubelet)
	if err != nil {
		t.Fatal(err)
	}
	return r, kubelet, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestResolveAcceptsOnlyPathsBeneathTheRootWithoutSymlinks(t *testing.T) {
	r, kubelet, outside := newTestRoot(t)
	cases := []struct {
		name, path string
		want       error // nil: accepted
	}{
		{"existing staging dir", kubelet + "/plugins/csi/globalmount", nil},
		{"existing pod target", kubelet + "/pods/uid/volumes/mount", nil},
		{"target not created yet", kubelet + "/pods/uid2/volumes/mount", nil},
		{"trailing slash and double slash", kubelet + "/pods//uid/volumes/mount/", nil},
		{"a file as the last component (block target)", kubelet + "/pods/file", nil},
		{"below a file", kubelet + "/pods/file/x", nil},
		{"the root itself", kubelet, ErrOutsideRoot},
		{"the root with a slash", kubelet + "/", ErrOutsideRoot},
		{"host root", "/", ErrOutsideRoot},
		{"etc-like dir outside", outside, ErrOutsideRoot},
		{"sibling with the root as prefix", kubelet + "-other/x", ErrOutsideRoot},
		{"dot-dot escaping", kubelet + "/pods/../../etc", ErrMalformed},
		{"dot-dot staying inside", kubelet + "/pods/../plugins", ErrMalformed},
		{"symlink escaping", kubelet + "/pods/escape", ErrSymlink},
		{"below a symlink escaping", kubelet + "/pods/escape/new", ErrSymlink},
		{"symlink staying inside", kubelet + "/pods/inside/csi", ErrSymlink},
		{"proc self", "/proc/self", ErrSystemPath},
		{"proc itself", "/proc", ErrSystemPath},
		{"sys", "/sys/kernel", ErrSystemPath},
		{"dev", "/dev/shm/x", ErrSystemPath},
		{"relative", "pods/x", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"NUL", kubelet + "/pods/a\x00b", ErrMalformed},
		{"10 KB path", kubelet + "/" + strings.Repeat("a/", 5000), ErrTooLong},
		{"long component", kubelet + "/" + strings.Repeat("a", 256), ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.Resolve("target_path", c.path)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Resolve(%q) = %v, want accepted", c.path, err)
				}
				if got != filepath.Clean(c.path) {
					t.Fatalf("Resolve(%q) = %q, want %q", c.path, got, filepath.Clean(c.path))
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Resolve(%q) = %q, %v; want %v", c.path, got, err, c.want)
			}
			var he *Error
			if !errors.As(err, &he) || he.Field != "target_path" {
				t.Fatalf("error %v is not a *Error naming target_path", err)
			}
			if !strings.HasPrefix(err.Error(), "target_path ") || len(err.Error()) > 700 {
				t.Fatalf("message %q does not start with the field or is too long", err.Error())
			}
		})
	}
}

func TestResolveOutsideNamesThePathAndTheRoot(t *testing.T) {
	r, kubelet, _ := newTestRoot(t)
	_, err := r.Resolve("staging_target_path", "/etc")
	want := `staging_target_path "/etc" is outside the kubelet root: it must name an entry beneath the kubelet root ` + kubelet
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

var errLoop = unix.ELOOP

func TestLstatWalkMatchesOpenat2(t *testing.T) {
	r, kubelet, _ := newTestRoot(t)
	cases := map[string]error{
		"plugins/csi/globalmount": nil,
		"pods/escape":             errLoop,
		"pods/escape/x":           errLoop,
		"pods/inside/csi":         errLoop,
	}
	for rel, want := range cases {
		err := lstatWalk(r.Dir(), rel)
		if (want == nil) != (err == nil) || want != nil && !errors.Is(err, want) {
			t.Errorf("lstatWalk(%s, %q) = %v, want %v", kubelet, rel, err, want)
		}
	}
}

func TestNewRootRefusesRootsThatAllowEverything(t *testing.T) {
	link := filepath.Join(t.TempDir(), "slash")
	must(t, os.Symlink("/", link))
	for _, dir := range []string{"/", link, "/proc", "/dev", "relative", "/does/not/exist"} {
		if _, err := NewRoot(dir); err == nil {
			t.Errorf("NewRoot(%q) accepted", dir)
		}
	}
}

func TestNewRootResolvesALinkedRoot(t *testing.T) {
	resolved := t.TempDir()
	link := filepath.Join(t.TempDir(), "kubelet")
	must(t, os.Symlink(resolved, link))
	r, err := NewRoot(link)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("target_path", resolved+"/pods/x"); err != nil {
		t.Fatalf("a path under the resolved root: %v", err)
	}
	got, err := r.Resolve("target_path", link+"/pods/x")
	if err != nil || got != resolved+"/pods/x" {
		t.Fatalf("a path under the configured root = %q, %v; want %s/pods/x", got, err, resolved)
	}
}

func TestCheckID(t *testing.T) {
	cases := map[string]error{
		"9f3c1d2e-5b6a-4c7d-8e9f-0a1b2c3d4e5f": nil,
		"":                                     ErrMalformed,
		"a\nb":                                 ErrMalformed,
		"a\rb":                                 ErrMalformed,
		"a\x7fb":                               ErrMalformed,
		strings.Repeat("a", 256):               ErrTooLong,
		strings.Repeat("a", 255):               nil,
	}
	for id, want := range cases {
		err := CheckID("volume_id", id)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("CheckID(%q) = %v, want %v", id, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\r\x7f") {
			t.Errorf("message %q carries a raw control character", err.Error())
		}
	}
}

// FuzzResolve checks that whatever Resolve accepts is clean and strictly
// beneath the root, with no system path and no "..".
func FuzzResolve(f *testing.F) {
	base := f.TempDir()
	kubelet := filepath.Join(base, "kubelet")
	if err := os.MkdirAll(filepath.Join(kubelet, "pods", "a"), 0o750); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(kubelet, "pods", "l")); err != nil {
		f.Fatal(err)
	}
	r, err := NewRoot(kubelet)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/pods/a", "/pods/l/x", "/../etc", "//pods/./a/", "/pods/a/../../..", "/proc/self", ""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, p string, underRoot bool) {
		if underRoot {
			p = kubelet + p
		}
		got, err := r.Resolve("target_path", p)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("Resolve(%q): %v is not a *Error", p, err)
			}
			return
		}
		if !strings.HasPrefix(got, kubelet+"/") || got != filepath.Clean(got) || strings.Contains(got, "/../") {
			t.Fatalf("Resolve(%q) accepted %q", p, got)
		}
		if strings.HasPrefix(got, "/pods/l") || strings.HasPrefix(got, kubelet+"/pods/l/") || got == kubelet+"/pods/l" {
			t.Fatalf("Resolve(%q) accepted %q through a symlink", p, got)
		}
	})
}
