package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkserver"
	"github.com/catena-io/catena/internal/master"
)

// chunkserverNode is the Network name of chunkserver slot i.
func chunkserverNode(i int) string { return fmt.Sprintf("cs%d", i+1) }

// metricsOf is the registerer of process node: Config.Metrics with a
// node label, nil without.
func (c *Cluster) metricsOf(node string) prometheus.Registerer {
	if c.cfg.Metrics == nil {
		return nil
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, c.cfg.Metrics)
}

// masterConfig is the master's configuration: the cluster's knobs and a
// dialer on the Network.
func (c *Cluster) masterConfig(dir string) master.Config {
	return master.Config{
		ID:         "m1",
		Dir:        dir,
		ListenAddr: c.cfg.MasterAddr,
		RaftAddr:   c.cfg.RaftAddr,
		DeadAfter:  c.cfg.DeadAfter,
		Logger:     c.log.With("proc", MasterNode),

		Lease:                c.cfg.Lease,
		DriftMargin:          c.cfg.DriftMargin,
		RepairInterval:       c.cfg.RepairInterval,
		RepairConcurrency:    c.cfg.RepairConcurrency,
		RebalanceConcurrency: c.cfg.RebalanceConcurrency,
		RepairBytesPerSec:    c.cfg.RepairBytesPerSec,
		Dialer:               c.net.Dialer(MasterNode),
		TLS:                  c.tls.creds(auth.RoleMaster),
	}
}

// chunkserverConfig is the configuration of chunkserver slot i, listening
// on ln, with the slot's faulty disk and a dialer on the Network.
func (c *Cluster) chunkserverConfig(i int, n *csNode, ln net.Listener) chunkserver.Config {
	var labels map[string]string
	if c.cfg.Labels != nil {
		labels = c.cfg.Labels(i)
	}
	var capacity int64
	if c.cfg.Capacity != nil {
		capacity = c.cfg.Capacity(i)
	}
	return chunkserver.Config{
		Dir:               n.dir,
		Capacity:          capacity,
		Listener:          ln,
		Masters:           c.masterAddrsLocked(),
		Labels:            labels,
		Name:              n.name,
		Metrics:           c.metricsOf(n.name),
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		ScrubInterval:     c.cfg.ScrubInterval,
		ScrubBytesPerSec:  c.cfg.ScrubBytesPerSec,
		ColdAfter:         c.cfg.ColdAfter,
		ReportPage:        c.cfg.ReportPage,
		Dialer:            c.net.Dialer(n.name),
		FS:                n.disk.fs(),
		Logger:            c.log.With("proc", n.name),
		TLS:               c.tls.creds(auth.RoleChunkserver),
	}
}

// clusterTLS is the credentials of a cluster run with mutual TLS.
type clusterTLS struct {
	byRole    map[auth.Role]*auth.Creds
	clientDir string // a TLS directory with an admin certificate
}

// newClusterTLS makes a CA in dir/ca and a TLS directory per role beside
// it, or uses those a previous start made there.
func newClusterTLS(dir string) (*clusterTLS, error) {
	ca := filepath.Join(dir, "ca")
	if _, err := os.Stat(filepath.Join(ca, auth.CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		if err := auth.InitCA(ca); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	t := &clusterTLS{byRole: map[auth.Role]*auth.Creds{}, clientDir: filepath.Join(dir, "admin")}
	for _, role := range []auth.Role{auth.RoleMaster, auth.RoleChunkserver, auth.RoleAdmin} {
		out := filepath.Join(dir, string(role))
		creds, err := auth.Load(out)
		if err == nil {
			t.byRole[role] = creds
			continue
		}
		if err := auth.Issue(ca, role, "cluster-"+string(role), []string{"127.0.0.1"}, out); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		creds, err = auth.Load(out)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		t.byRole[role] = creds
	}
	return t, nil
}

// creds are the credentials of role; nil without TLS.
func (t *clusterTLS) creds(role auth.Role) *auth.Creds {
	if t == nil {
		return nil
	}
	return t.byRole[role]
}

// dialOption is the transport of the harness's own connections to
// servers of role want (as an admin).
func (t *clusterTLS) dialOption(want auth.Role) grpc.DialOption {
	if t == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return t.byRole[auth.RoleAdmin].DialOption(want)
}
