package main

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNodeToolsNamesWhatToInstall(t *testing.T) {
	without := func(absent ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, a := range absent {
				if name == a {
					return "", errors.New("executable file not found in $PATH")
				}
			}
			return "/usr/sbin/" + name, nil
		}
	}
	if err := checkNodeTools(without()); err != nil {
		t.Fatalf("all tools present: %v", err)
	}
	err := checkNodeTools(without("mkfs.xfs", "xfs_growfs"))
	if err == nil {
		t.Fatal("no error without xfsprogs")
	}
	msg := err.Error()
	for _, want := range []string{"mkfs.xfs, xfs_growfs", "install xfsprogs", "non-root"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "util-linux") {
		t.Errorf("message %q asks for a package whose tools are present", msg)
	}
	if err := checkNodeTools(without("losetup", "mkfs.xfs")); err == nil || !strings.Contains(err.Error(), "util-linux and xfsprogs") {
		t.Errorf("two packages missing: %v", err)
	}
}
