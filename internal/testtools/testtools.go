package testtools

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Packages maps the programs tests use to the Debian packages that bring
// them.
var Packages = map[string]string{
	"nbdinfo": "libnbd-bin", "nbdcopy": "libnbd-bin",
	"qemu-img": "qemu-utils", "qemu-io": "qemu-utils",
	"fio": "fio", "fusermount3": "fuse3", "sqlite3": "sqlite3",
	"git": "git", "tar": "tar", "diff": "diffutils", "prometheus": "prometheus",
	"chromium": "chromium",
}

// CI reports whether the tests run in CI (CI=true), where nothing may be
// skipped for lack of a program.
func CI() bool { return os.Getenv("CI") == "true" }

// Programs skips (or, in CI, fails) t unless every program is on PATH.
// pkg names the Go package in the message, e.g. "tests/nbd".
func Programs(t testing.TB, pkg string, progs ...string) {
	t.Helper()
	var missing, debs []string
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
			if d := Packages[p]; d != "" && !contains(debs, d) {
				debs = append(debs, d)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	why := fmt.Sprintf("%s not installed", strings.Join(missing, ", "))
	if len(debs) > 0 {
		why += fmt.Sprintf(" (Debian: apt-get install %s)", strings.Join(debs, " "))
	}
	Lacking(t, pkg, why)
}

// RootAndFUSE skips (or, in CI, fails) t unless it runs as root with
// /dev/fuse.
func RootAndFUSE(t testing.TB, pkg string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Lacking(t, pkg, "needs root")
		return
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Lacking(t, pkg, "no /dev/fuse")
	}
}

// Lacking reports that the machine lacks what t needs: a skip with one
// line "PKG: skipped: WHY", or in CI a failure.
func Lacking(t testing.TB, pkg, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s: %s (CI must run every test; .ci/run installs what they need)", pkg, why)
		return
	}
	t.Skipf("%s: skipped: %s", pkg, why)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
