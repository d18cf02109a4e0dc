package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"syscall"
)

type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func (r rawJSON) into(v any) error { return json.Unmarshal(r, v) }

// Linux lseek whence values for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// prepareDataFile makes dst a sparse file of size bytes holding a copy of src
// (if src is not empty).
func prepareDataFile(src, dst string, size int64) error {
	if src != "" {
		if err := copySparse(src, dst); err != nil {
			return err
		}
	} else {
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return growFile(dst, size)
}

// growFile extends path to size bytes; it never shrinks.
func growFile(path string, size int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	return os.Truncate(path, size)
}

func removeFile(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}

// copySparse copies src to dst, skipping holes so a mostly empty 10 GiB
// volume copies in milliseconds. Dirty pages of a mounted loop device are
// flushed first so data written through a mount is captured.
func copySparse(src, dst string) error {
	syscall.Sync()
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	size := st.Size()
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	var off int64
	for off < size {
		data, err := in.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // no more data
			}
			// Filesystem without SEEK_DATA: plain copy of the rest.
			data = off
		}
		hole, err := in.Seek(data, seekHole)
		if err != nil {
			hole = size
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			out.Close()
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			out.Close()
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil && !errors.Is(err, io.EOF) {
			out.Close()
			return err
		}
		off = hole
	}
	return out.Close()
}
