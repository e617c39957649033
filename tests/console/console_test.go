package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/testtools"
)

const (
	// pageTimeout bounds each wait for the page to show something.
	pageTimeout = 15 * time.Second
	// deadWithin bounds how long after a kill the page shows the server
	// dead: the master's dead-after (1.25 s), a console sample (1 s) and
	// a page poll (1 s), with room for a slow machine.
	deadWithin = 10 * time.Second
)

// browser starts headless Chromium and returns a tab's context, closed
// when the test ends, and the console messages the tab has written so far.
func browser(t *testing.T) (context.Context, func() []chromedp.ConsoleMessage) {
	t.Helper()
	testtools.Programs(t, "tests/console", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), // on PATH: /usr/bin/chromium on Debian
		chromedp.NoSandbox,            // tests run as root, where the sandbox refuses to start
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var got []chromedp.ConsoleMessage
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	}()
	return ctx, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// await polls the JavaScript expression in the page until it is true.
func await(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("page never showed %s (%s): %v\npage text:\n%s", what, expr, err, body)
	}
}

// artifactDir is where a test keeps its files: $CATENA_ARTIFACTS/<test>
// when set, else the test's artifact directory (kept with go test
// -artifacts).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CATENA_ARTIFACTS")
	if dir == "" {
		return t.ArtifactDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, cl *client.Client, path string, size int) {
	t.Helper()
	ctx := context.Background()
	f, err := cl.Create(ctx, path, client.CreateOptions{ChunkSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("catena"), size/6), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConsolePage loads the console in Chromium: no console errors, every
// chunkserver alive, then a killed one dead within seconds.
func TestConsolePage(t *testing.T) {
	ctx, messages := browser(t)
	c := clustertest.New(t, cluster.Config{Chunkservers: 3, MasterHTTPAddr: "127.0.0.1:0",
		Labels: func(i int) map[string]string { return map[string]string{"zone": fmt.Sprintf("zone-%c", 'a'+i)} }})
	cl := clustertest.Client(t, c)
	if _, err := cl.CreateVolume(context.Background(), "vm1", 64<<20, client.VolumeOptions{}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + c.MasterHTTPAddr(0) + "/"
	t.Logf("console at %s", url)

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	await(t, ctx, "3 chunkservers alive", `document.querySelectorAll('#chunkservers tbody tr[data-state="alive"]').length === 3`, pageTimeout)
	await(t, ctx, "the cluster healthy", `document.getElementById('health').dataset.level === 'ok'`, pageTimeout)
	await(t, ctx, "the volume and its export", `document.getElementById('volumes').textContent.includes('vm1')`, pageTimeout)
	await(t, ctx, "failure domains", `document.getElementById('chunkservers').textContent.includes('zone-c')`, pageTimeout)
	await(t, ctx, "the leader", `document.getElementById('masters').textContent.includes('leader')`, pageTimeout)
	writeFile(t, cl, "/data", 12<<20) // traffic for the graphs, chunks for the repairs

	victim := 1
	id := c.ChunkserverID(victim)
	killed := time.Now()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`document.querySelector('#chunkservers tbody tr[data-id="%d"]')`, id)
	await(t, ctx, "the killed chunkserver dead", row+`?.dataset.state === 'dead'`, deadWithin)
	t.Logf("chunkserver %d shown dead %v after the kill", id, time.Since(killed).Round(10*time.Millisecond))
	await(t, ctx, "2 chunkservers alive", `document.querySelectorAll('#chunkservers tbody tr[data-state="alive"]').length === 2`, pageTimeout)
	await(t, ctx, "the cluster degraded", `document.getElementById('health').dataset.level === 'degraded'`, pageTimeout)
	await(t, ctx, "the death among the events", `document.getElementById('events').textContent.includes('declared dead')`, pageTimeout)
	await(t, ctx, "the graphs", `document.querySelectorAll('#g-servers path.series').length > 0 && document.querySelectorAll('#g-throughput path.series').length > 0`, pageTimeout)

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	shot := filepath.Join(artifactDir(t), "console-chunkserver-dead.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	for _, m := range messages() {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException, chromedp.ConsoleWarning:
			t.Errorf("page console %s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text)
		default:
			t.Logf("page console: %s", m)
		}
	}
}

// snapshotOf fetches a console's /api/snapshot.
func snapshotOf(addr string) (*console.View, error) {
	resp, err := http.Get("http://" + addr + "/api/snapshot")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v console.View
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, v.Error)
	}
	if v.Snapshot == nil {
		return nil, fmt.Errorf("empty snapshot")
	}
	return &v, nil
}

// leaderOf is the id of the leader the snapshot names, "" for none.
func leaderOf(s *console.Snapshot) string {
	for _, m := range s.Masters {
		if m.Leader {
			return m.ID
		}
	}
	return ""
}

// shows checks that a console's view is the leader's: served under the
// console's own id, naming leader, with every chunkserver alive and the
// volume.
func shows(v *console.View, self, leader string, alive int, volume string) error {
	n := 0
	for _, cs := range v.Chunkservers {
		if cs.Alive {
			n++
		}
	}
	switch {
	case v.Error != "":
		return fmt.Errorf("console error: %s", v.Error)
	case v.Master != self:
		return fmt.Errorf("served as %q, want %q", v.Master, self)
	case leaderOf(v.Snapshot) != leader:
		return fmt.Errorf("leader %q, want %q", leaderOf(v.Snapshot), leader)
	case n != alive:
		return fmt.Errorf("%d chunkservers alive, want %d", n, alive)
	case !slices.ContainsFunc(v.Volumes, func(vol console.Volume) bool { return vol.Name == volume }):
		return fmt.Errorf("volume %s missing: %+v", volume, v.Volumes)
	}
	return nil
}

// TestFollowerConsoleShowsLeader: a follower's console serves the
// leader's snapshot (its chunkservers, volumes and events), and after the
// leader dies, the new leader's.
func TestFollowerConsoleShowsLeader(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Masters: 3, Chunkservers: 3, MasterHTTPAddr: "127.0.0.1:0"})
	cl := clustertest.Client(t, c)
	if _, err := cl.CreateVolume(context.Background(), "vm1", 64<<20, client.VolumeOptions{}); err != nil {
		t.Fatal(err)
	}
	leader := c.LeaderIndex()
	if leader < 0 {
		t.Fatal("no leader")
	}
	follower := (leader + 1) % c.NumMasters()
	idOf := func(i int) string { return fmt.Sprintf("m%d", i+1) }
	addr := c.MasterHTTPAddr(follower)
	if addr == "" || addr == c.MasterHTTPAddr(leader) {
		t.Fatalf("console addresses: follower %q, leader %q", addr, c.MasterHTTPAddr(leader))
	}
	clustertest.Eventually(t, 15*time.Second, func() error {
		v, err := snapshotOf(addr)
		if err != nil {
			return err
		}
		if err := shows(v, idOf(follower), idOf(leader), 3, "vm1"); err != nil {
			return err
		}
		leads := func(e console.Event) bool {
			return e.Kind == console.EventLeader && strings.Contains(e.Message, idOf(leader))
		}
		if !slices.ContainsFunc(v.Events, leads) {
			return fmt.Errorf("the leader's events are missing: %+v", v.Events)
		}
		return nil
	})

	if err := c.KillMaster(leader); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next, err := c.AwaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		v, err := snapshotOf(addr)
		if err != nil {
			return err
		}
		return shows(v, idOf(follower), idOf(next), 3, "vm1")
	})
}
