package cinder

import (
	"strings"
	"unicode/utf8"
)

// maxIDLen bounds a volume, snapshot or node id. Cinder and Nova ids are
// 36-character UUIDs; 255 leaves room for any other cloud's id while
// keeping an id from becoming a request URL of arbitrary length.
const maxIDLen = 255

// checkID validates an id from a CSI request before it goes into a Cinder
// or Nova URL path, the one place the controller does so. A control
// character makes net/url refuse the URL; '/', '\', '?', '#', '%', "." and
// ".." would change which resource the URL names (DELETE
// /volumes/../snapshots/<id>). No Cinder or Nova id contains any of them,
// so such an id is InvalidArgument, quoted with %q so that the message
// never carries the raw character. A well-formed id that names nothing
// still reaches the cloud, whose 404 each RPC answers as the spec says
// (NotFound, or success for deletes).
func checkID(what, id string) error {
	switch {
	case id == "":
		return errInvalid("%s id is required", what)
	case len(id) > maxIDLen:
		return errInvalid("%s id is %d bytes long; ids are at most %d bytes", what, len(id), maxIDLen)
	case !utf8.ValidString(id):
		return errInvalid("%s id %q is not valid UTF-8", what, id)
	case id == "." || id == "..":
		return errInvalid("%s id %q is not an id", what, id)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b < 0x20 || b == 0x7f {
			return errInvalid("%s id %q contains a control character (byte %#02x at offset %d)", what, id, b, i)
		}
	}
	if i := strings.IndexAny(id, `/\?#%`); i >= 0 {
		return errInvalid("%s id %q contains %q, which no Cinder or Nova id has", what, id, id[i])
	}
	return nil
}

// checkOptionalID is checkID for a field the request may leave empty.
func checkOptionalID(what, id string) error {
	if id == "" {
		return nil
	}
	return checkID(what, id)
}
