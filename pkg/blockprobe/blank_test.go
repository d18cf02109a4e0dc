package blockprobe

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testSize = 64 << 20

func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0x53}, off); err != nil {
		t.Fatal(err)
	}
}

func TestBlankOnZeroes(t *testing.T) {
	for _, size := range []int64{512, 1 << 20, 3<<20 + 512, testSize} {
		got, err := Blank(sparseFile(t, size))
		if err != nil || !got {
			t.Errorf("size %d: Blank = %v, %v; want true", size, got, err)
		}
	}
}

// A byte anywhere blkid looks for a signature makes the device not blank.
func TestNonZeroWhereBlkidLooks(t *testing.T) {
	offsets := map[string]int64{
		"MBR boot signature":        510,
		"GPT header":                512,
		"ext superblock magic":      1080,
		"XFS superblock":            0,
		"ISO 9660 descriptor":       32 << 10,
		"btrfs superblock":          64<<10 + 64,
		"ZFS uberblock ring":        200 << 10,
		"ZFS second label":          256<<10 + 100,
		"end of the head":           headBytes - 1,
		"VMFS volume at 1 MiB":      1 << 20,
		"VMFS at 2 MiB":             2<<20 + 100,
		"probe at 4 MiB":            4 << 20,
		"margin probe at 8 MiB":     8<<20 + probeBytes - 1,
		"md 0.90 at the end":        testSize - 64<<10,
		"backup GPT, last sector":   testSize - 512,
		"ZFS label 2 near the tail": testSize - 512<<10,
		"start of the tail":         testSize - tailBytes,
	}
	for name, off := range offsets {
		path := sparseFile(t, testSize)
		writeByte(t, path, off)
		got, err := Blank(path)
		if err != nil || got {
			t.Errorf("%s (offset %d): Blank = %v, %v; want false", name, off, got, err)
		}
	}
}

// Data between the probed regions is not a signature; blkid ignores it
// too, so the device still counts as blank.
func TestDataOutsideTheProbedRegions(t *testing.T) {
	path := sparseFile(t, testSize)
	writeByte(t, path, 16<<20)
	got, err := Blank(path)
	if err != nil || !got {
		t.Errorf("Blank = %v, %v; want true", got, err)
	}
}

// Every filesystem and partition tool at hand leaves bytes Blank sees.
func TestRealSignatures(t *testing.T) {
	tools := [][]string{
		{"mkfs.ext4", "-F", "-q"},
		{"mkfs.ext3", "-F", "-q"},
		{"mkfs.xfs", "-f", "-q"},
		{"mkfs.btrfs", "-f", "-q"},
		{"mkswap"},
		{"mkfs.vfat"},
	}
	ran := 0
	for _, tool := range tools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			continue
		}
		path := sparseFile(t, 512<<20)
		if out, err := exec.Command(tool[0], append(tool[1:], path)...).CombinedOutput(); err != nil {
			t.Logf("%s could not format a file here: %v: %s", tool[0], err, out)
			continue
		}
		ran++
		if got, err := Blank(path); err != nil || got {
			t.Errorf("after %s: Blank = %v, %v; want false", tool[0], got, err)
		}
	}
	if sfdisk, err := exec.LookPath("sfdisk"); err == nil {
		for _, label := range []string{"dos", "gpt"} {
			path := sparseFile(t, testSize)
			cmd := exec.Command(sfdisk, "-q", path)
			cmd.Stdin = strings.NewReader("label: " + label + "\n,\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk %s: %v: %s", label, err, out)
			}
			ran++
			if got, err := Blank(path); err != nil || got {
				t.Errorf("after a %s partition table: Blank = %v, %v; want false", label, got, err)
			}
		}
	}
	if ran == 0 {
		t.Skip("no mkfs or sfdisk here to write real signatures")
	}
}

func TestBlankErrors(t *testing.T) {
	if _, err := Blank(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Blank on a missing path: want an error")
	}
	if got, err := Blank(sparseFile(t, 0)); err == nil || got {
		t.Errorf("Blank on an empty device = %v, %v; want an error", got, err)
	}
}

func TestRegions(t *testing.T) {
	cases := []struct {
		size int64
		want []region
	}{
		{4096, []region{{0, 4096}}},
		{1 << 20, []region{{0, 1 << 20}}},
		{testSize, []region{{0, 1<<20 + probeBytes}, {2 << 20, probeBytes}, {4 << 20, probeBytes}, {8 << 20, probeBytes}, {testSize - tailBytes, tailBytes}}},
		// An unaligned size: the tail starts on a 4 KiB boundary.
		{testSize + 512, []region{{0, 1<<20 + probeBytes}, {2 << 20, probeBytes}, {4 << 20, probeBytes}, {8 << 20, probeBytes}, {testSize - tailBytes, tailBytes + 512}}},
		// Small devices: the probe at 2 MiB falls in the tail.
		{2<<20 + 8192, []region{{0, 1<<20 + probeBytes}, {1<<20 + 8192, tailBytes}}},
		{2 << 20, []region{{0, 2 << 20}}},
	}
	for _, c := range cases {
		got := regions(c.size)
		if len(got) != len(c.want) {
			t.Errorf("regions(%d) = %v, want %v", c.size, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("regions(%d) = %v, want %v", c.size, got, c.want)
				break
			}
		}
	}
}
