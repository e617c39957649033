package cluster

import (
	"fmt"
	"net"

	"github.com/catena-io/catena/internal/chunkserver"
	"github.com/catena-io/catena/internal/master"
)

// chunkserverNode is the Network name of chunkserver slot i.
func chunkserverNode(i int) string { return fmt.Sprintf("cs%d", i+1) }

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

		Lease:             c.cfg.Lease,
		DriftMargin:       c.cfg.DriftMargin,
		RepairInterval:    c.cfg.RepairInterval,
		RepairConcurrency: c.cfg.RepairConcurrency,
		RepairBytesPerSec: c.cfg.RepairBytesPerSec,
		Dialer:            c.net.Dialer(MasterNode),
	}
}

// chunkserverConfig is the configuration of chunkserver slot i, listening
// on ln, with the slot's faulty disk and a dialer on the Network.
func (c *Cluster) chunkserverConfig(i int, n *csNode, ln net.Listener) chunkserver.Config {
	var labels map[string]string
	if c.cfg.Labels != nil {
		labels = c.cfg.Labels(i)
	}
	return chunkserver.Config{
		Dir:               n.dir,
		Listener:          ln,
		Masters:           c.masterAddrsLocked(),
		Labels:            labels,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		ScrubInterval:     c.cfg.ScrubInterval,
		ScrubBytesPerSec:  c.cfg.ScrubBytesPerSec,
		ColdAfter:         c.cfg.ColdAfter,
		ReportPage:        c.cfg.ReportPage,
		Dialer:            c.net.Dialer(n.name),
		FS:                n.disk.fs(),
		Logger:            c.log.With("proc", n.name),
	}
}
