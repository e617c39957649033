package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/proctest"
	"github.com/catena-io/catena/internal/testtools"
)

// TestPrometheusScrape: a real Prometheus scrapes `catena dev
// --metrics-listen` (master and three chunkservers in one process,
// labelled by node) while files are written and read through the CLI;
// PromQL queries over the scraped series find the bytes written and read
// at the chunkservers, the Raft leader, three live chunkservers named
// cs1..cs3 with fresh heartbeats, the chunks, and request rates and
// latency quantiles of the chunkservers' Write RPC.
func TestPrometheusScrape(t *testing.T) {
	testtools.Programs(t, "tests/metrics", "prometheus")
	dir := t.TempDir()
	bin, err := proctest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	master, metricsAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	proctest.Start(t, bin, "dev", "catena dev: master listening", nil, "dev", "--insecure",
		"--dir", filepath.Join(dir, "data"), "--listen", master, "--metrics-listen", metricsAddr)

	promAddr := proctest.FreeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: catena
    static_configs:
      - targets: ['%s']
`, metricsAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := proctest.Spawn(t, "prometheus", "prometheus", proctest.Options{}, "--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	if err := prom.AwaitStderr("Server is ready to receive web requests", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, prom.Stderr())
	}

	// Write and read through the CLI, as a user would.
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"--master", master}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("catena %v: %v\n%s", args, err, out)
		}
	}
	for i := range 5 {
		cli("put", src, "/f"+strconv.Itoa(i))
		cli("get", "/f"+strconv.Itoa(i), filepath.Join(dir, "back"))
	}

	query := func(q string) ([]float64, error) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return nil, err
		}
		if r.Status != "success" {
			return nil, fmt.Errorf("query %s: %s", q, r.Error)
		}
		var out []float64
		for _, s := range r.Data.Result {
			str, _ := s.Value[1].(string)
			v, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	// want: the query returns exactly one value and check accepts it.
	want := func(q string, check func(float64) bool, what string) {
		t.Helper()
		clustertest.Eventually(t, time.Minute, func() error {
			vs, err := query(q)
			if err != nil {
				return err
			}
			if len(vs) != 1 || !check(vs[0]) {
				return fmt.Errorf("%s = %v; want %s", q, vs, what)
			}
			return nil
		})
	}
	const mib = 1 << 20
	want(`sum(catena_chunkserver_write_bytes_total)`, func(v float64) bool { return v >= 15*mib }, "at least 15 MiB (5 files of 3 MiB)")
	want(`sum(catena_chunkserver_read_bytes_total)`, func(v float64) bool { return v >= 15*mib }, "at least 15 MiB")
	want(`catena_raft_is_leader{node="m1"}`, func(v float64) bool { return v == 1 }, "1")
	want(`catena_chunkservers{state="alive"}`, func(v float64) bool { return v == 3 }, "3")
	want(`count(catena_chunkserver_heartbeat_age_seconds{chunkserver=~"cs[1-3]"} < 10)`, func(v float64) bool { return v == 3 }, "3 fresh heartbeats")
	want(`catena_chunks{state="total"}`, func(v float64) bool { return v >= 5 }, "at least 5 chunks")
	want(`catena_chunks{state="under_replicated"}`, func(v float64) bool { return v == 0 }, "0")
	// Counters (the writes were over within a scrape or two: a rate
	// over them may see no increase).
	want(`sum(catena_rpc_requests_total{service="catena.v1.Chunkserver",method="Write",code="OK"})`,
		func(v float64) bool { return v >= 5 }, "at least 5 Write RPCs")
	want(`histogram_quantile(0.5, sum by (le) (catena_chunkserver_write_duration_seconds_bucket))`,
		func(v float64) bool { return v > 0 && v < 10 }, "a median write latency between 0 and 10 s")
	want(`count(count by (node) (catena_chunkserver_fsync_duration_seconds_count))`, func(v float64) bool { return v == 3 }, "3 nodes fsyncing")
	want(`up{job="catena"}`, func(v float64) bool { return v == 1 }, "1")
}
