package device

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// virtioSerialLength is the size of the virtio-blk serial field: QEMU
// truncates the Cinder volume id to its first 20 characters.
const virtioSerialLength = 20

// shortID is the volume id as a virtio-blk serial shows it.
func shortID(volumeID string) string {
	if len(volumeID) > virtioSerialLength {
		return volumeID[:virtioSerialLength]
	}
	return volumeID
}

// SerialMatches reports whether a serial read from a disk names the volume:
// the full id (virtio-scsi, NVMe), its first 20 characters (virtio-blk), or
// the id without dashes (VMware and other WWN-style serials).
func SerialMatches(serial, volumeID string) bool {
	serial = strings.TrimSpace(serial)
	if serial == "" || volumeID == "" {
		return false
	}
	if serial == volumeID || serial == strings.ReplaceAll(volumeID, "-", "") {
		return true
	}
	// A truncated serial must still be long enough to be unambiguous:
	// 20 characters of a UUID carry 72 random bits.
	return len(serial) >= virtioSerialLength && strings.HasPrefix(volumeID, serial)
}

// readSerial returns the serial of <sysRoot>/block/<name>, trying the
// virtio-blk attribute, the SCSI unit serial number VPD page (0x80) and the
// NVMe controller serial, in that order. It returns "" when the disk
// exposes none of them.
func readSerial(sysRoot, name string) string {
	base := filepath.Join(sysRoot, "block", name)
	if s := readTrimmed(filepath.Join(base, "serial")); s != "" {
		return s
	}
	if data, err := os.ReadFile(filepath.Join(base, "device", "vpd_pg80")); err == nil {
		if s := parseVPD80(data); s != "" {
			return s
		}
	}
	// For nvme0n1, device/ is the nvme0 controller, which holds the serial.
	return readTrimmed(filepath.Join(base, "device", "serial"))
}

// parseVPD80 extracts the serial from a raw SCSI "Unit Serial Number" VPD
// page: a 4-byte header whose bytes 2-3 hold the length, then ASCII.
func parseVPD80(page []byte) string {
	if len(page) < 4 || page[1] != 0x80 {
		return ""
	}
	n := int(page[2])<<8 | int(page[3])
	body := page[4:]
	if n < len(body) {
		body = body[:n]
	}
	return string(bytes.Trim(body, " \x00\n"))
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.Trim(string(data), " \x00\n\t")
}

// uuidTemplate marks where a canonical UUID has dashes.
const uuidTemplate = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"

// IsUUID reports whether s is a canonical UUID (8-4-4-4-12 hexadecimal
// digits), the form of Cinder volume ids.
func IsUUID(s string) bool {
	return len(s) == len(uuidTemplate) && isUUIDPrefix(s)
}

// LooksLikeVolumeSerial reports whether a disk serial has the shape Nova
// gives a Cinder volume: a UUID, possibly cut to 20 characters, or its 32
// hex digits without dashes.
func LooksLikeVolumeSerial(serial string) bool {
	if len(serial) == 32 {
		return isHex(serial)
	}
	return len(serial) >= virtioSerialLength && isUUIDPrefix(serial)
}

// isUUIDPrefix reports whether s is the start of a canonical UUID: hex
// digits, with dashes where uuidTemplate has them.
func isUUIDPrefix(s string) bool {
	if len(s) > len(uuidTemplate) {
		return false
	}
	for i := range len(s) {
		if uuidTemplate[i] == '-' {
			if s[i] != '-' {
				return false
			}
		} else if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := range len(s) {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
