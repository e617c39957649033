package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// overlayOut is an element of "catena overlay ls --json".
type overlayOut struct {
	Name           string    `json:"name"`
	Volume         volumeOut `json:"volume"`
	Attached       string    `json:"attached"`
	LeaseMs        int64     `json:"lease_ms"`
	Writer         bool      `json:"writer"`
	Owner          string    `json:"owner"`
	RenewedAgoMs   int64     `json:"renewed_ago_ms"`
	ExclusiveBytes int64     `json:"exclusive_bytes"`
}

// TestOverlayCommands drives catena overlay attach, ls, detach and
// promote through the binary, with their errors.
func TestOverlayCommands(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	addr := freeAddr(t)
	startDev(t, filepath.Join(tmp, "data"), addr)
	m := addr
	ls := func(vol string, want ...string) []overlayOut {
		t.Helper()
		l := decode[[]overlayOut](t, "overlay ls --json "+vol, ok(t, m, "overlay", "ls", "--json", vol))
		var names []string
		for _, o := range l {
			names = append(names, o.Name)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("overlay ls --json %s: %q; want %q", vol, names, want)
		}
		return l
	}
	ok(t, m, "volume", "create", "vol", "1G")
	if out := ok(t, m, "overlay", "attach", "vol", "a", "--lease", "1h"); !strings.HasPrefix(out, "overlay vol+a attached") {
		t.Fatalf("overlay attach vol a = %q", out)
	}
	wantFail(t, run(t, m, nil, "overlay", "attach", "vol", "a"), "overlay attach vol", "file exists")
	wantFail(t, run(t, m, nil, "overlay", "attach", "vol", "b+c"), "overlay attach vol", "invalid argument")
	wantFail(t, run(t, m, nil, "overlay", "attach", "nope", "a"), "overlay attach nope", "no such file")
	wantFail(t, run(t, m, nil, "overlay", "attach", "vol+a", "x"), "overlay attach vol+a", "invalid argument")
	wantFail(t, run(t, m, nil, "overlay", "attach", "vol", "x", "--lease", "-1s"), "--lease")
	wantFail(t, run(t, m, nil, "volume", "create", "x+y", "1G"), "invalid argument")
	wantFail(t, run(t, m, nil, "volume", "rm", "vol"), "volume rm", "overlays")
	l := ls("vol", "a")
	if l[0].Volume.Name != "vol+a" || l[0].LeaseMs != 3600000 || l[0].Writer || l[0].Volume.Size != 1<<30 {
		t.Fatalf("overlay ls --json vol = %+v", l)
	}
	if out := ok(t, m, "overlay", "ls", "vol"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "\na ") || !strings.Contains(out, "vol+a") {
		t.Fatalf("overlay ls vol:\n%s", out)
	}
	// The overlay is a volume of its own name.
	if v := decode[volumeOut](t, "volume info --json vol+a", ok(t, m, "volume", "info", "--json", "vol+a")); v.Name != "vol+a" || v.ReadOnly {
		t.Fatalf("volume info --json vol+a = %+v", v)
	}
	ok(t, m, "overlay", "attach", "vol", "a", "--replace")
	ok(t, m, "overlay", "attach", "vol", "b")
	ls("vol", "a", "b")
	ok(t, m, "overlay", "detach", "vol", "b")
	wantFail(t, run(t, m, nil, "overlay", "detach", "vol", "b"), "overlay detach vol b", "no such file")
	ls("vol", "a")
	if out := ok(t, m, "overlay", "promote", "vol", "a"); !strings.HasPrefix(out, "overlay vol+a promoted: it is volume vol now") {
		t.Fatalf("overlay promote vol a = %q", out)
	}
	ls("vol")
	wantFail(t, run(t, m, nil, "overlay", "promote", "vol", "a"), "overlay promote vol", "no such file")
	wantFail(t, run(t, m, nil, "volume", "info", "vol+a"), "no such file")
	ok(t, m, "volume", "rm", "vol")
}
