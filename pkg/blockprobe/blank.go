// Package blockprobe answers one question without running blkid: is a
// block device certainly blank?
//
// NodeStage must never format a device that holds data, so it asks blkid
// what the device holds. On a new Cinder volume the answer is nearly always
// "nothing", and the blkid process is then the largest cost the driver adds
// to a first stage (about 10 ms of a 20-40 ms mkfs and mount on a 2-CPU
// node; docs/benchmarks.md, Node). Blank reads, with O_DIRECT, every region
// blkid examines for a signature and reports true only when all of it is
// zero. A signature needs non-zero bytes at its offset, so blkid could not
// find one either. Any non-zero byte, or any doubt, answers false and the
// caller asks blkid as before.
package blockprobe

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// The regions, from an strace of util-linux 2.38 `blkid -p` on a blank
// 1 GiB device, widened for margin. At the head: every superblock and
// partition-table magic (ZFS labels and uberblocks reach 512 KiB), then
// single probes at 1, 2 and 4 MiB (VMFS and friends), 8 MiB for margin.
// At the tail: RAID metadata (md 0.90/1.0, DDF, vendor RAIDs), the backup
// GPT, ZFS labels 2-3 and nilfs2's second superblock, all within the last
// 512 KiB. Head and tail are read whole, twice what blkid reads.
const (
	headBytes  = 1 << 20
	probeBytes = 4 << 10
	tailBytes  = 1 << 20
)

var probeOffsets = []int64{1 << 20, 2 << 20, 4 << 20, 8 << 20}

// align is the O_DIRECT alignment used for offsets, lengths and the
// buffer: 4 KiB covers 512-byte and 4 KiB logical sectors.
const align = 4 << 10

type region struct{ off, n int64 }

// regions lists what to read on a device of size bytes, clamped to the
// device, aligned for O_DIRECT and merged where they overlap.
func regions(size int64) []region {
	want := []region{{0, headBytes}}
	for _, off := range probeOffsets {
		want = append(want, region{off, probeBytes})
	}
	tail := max(0, (size-tailBytes)&^(align-1))
	want = append(want, region{tail, size - tail})
	slices.SortFunc(want, func(a, b region) int { return cmp.Compare(a.off, b.off) })

	var out []region
	for _, r := range want {
		if r.off >= size {
			continue
		}
		r.n = min(r.n, size-r.off)
		if last := len(out) - 1; last >= 0 && r.off <= out[last].off+out[last].n {
			out[last].n = max(out[last].n, r.off+r.n-out[last].off)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Blank reports whether every byte blkid would probe on the block device
// at path is zero. An error means the answer is unknown, never "blank".
func Blank(path string) (bool, error) {
	f, err := openDirect(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("reading the size of %s: %w", path, err)
	}
	if size <= 0 {
		return false, fmt.Errorf("%s has no media (size %d)", path, size)
	}
	rs := regions(size)
	longest := int64(0)
	for _, r := range rs {
		longest = max(longest, r.n)
	}
	// mmap gives page-aligned memory, which O_DIRECT needs.
	buf, err := unix.Mmap(-1, 0, int((longest+align-1)&^(align-1)), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false, fmt.Errorf("allocating a read buffer for %s: %w", path, err)
	}
	// An unmap failure of our own anonymous mapping changes no answer.
	defer func() { _ = unix.Munmap(buf) }()
	for _, r := range rs {
		b := buf[:r.n]
		if _, err := f.ReadAt(b, r.off); err != nil {
			return false, fmt.Errorf("reading %d bytes at offset %d of %s: %w", r.n, r.off, path, err)
		}
		if !allZero(b) {
			return false, nil
		}
	}
	return true, nil
}

// openDirect opens path for reading past the page cache, so the answer is
// what the device holds and a new volume's pages are not cached for
// nothing. Where O_DIRECT is refused it reads through the cache.
func openDirect(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EINVAL) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return f, nil
}

var zeros = make([]byte, 64<<10)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
