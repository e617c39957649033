package testtools

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records a skip or a failure instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissingProgramSkipsOrFailsInCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Programs(r, "tests/x", "sh", "no-such-program-catena", "qemu-img-not-here")
	if !strings.HasPrefix(r.skipped, "tests/x: skipped: no-such-program-catena, qemu-img-not-here not installed") || r.failed != "" {
		t.Fatalf("outside CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	Programs(r, "tests/x", "no-such-program-catena")
	if r.failed == "" || r.skipped != "" || !strings.Contains(r.failed, "tests/x: no-such-program-catena not installed") {
		t.Fatalf("in CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	r = &recorder{TB: t}
	Programs(r, "tests/x", "sh")
	if r.failed != "" || r.skipped != "" {
		t.Fatalf("present program: skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestPackagesNamed(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Programs(r, "tests/nbd", "nbdinfo-missing")
	if strings.Contains(r.skipped, "apt-get") {
		t.Fatalf("unknown program named a package: %q", r.skipped)
	}
	if Packages["qemu-io"] != "qemu-utils" || Packages["nbdcopy"] != "libnbd-bin" {
		t.Fatal("package map")
	}
}
