package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/rpcerr"
)

// adminTimeout bounds one admin command, redirects included, and
// adminAttempt one call; adding a master waits for it to catch up with
// the group's log (the master's own bound is 2 minutes).
const (
	adminTimeout = 30 * time.Second
	adminAttempt = 5 * time.Second
	addTimeout   = 3 * time.Minute
)

func newAdminCmd(g *globals) *cobra.Command {
	admin := &cobra.Command{Use: "admin", Short: "Administer the cluster"}
	mcmd := &cobra.Command{Use: "master", Short: "Change or list the master group (Raft voters)"}
	admin.AddCommand(mcmd)

	var addr string
	add := &cobra.Command{
		Use:     "add ID RAFTADDR",
		Short:   "Add a master: start it first with --join; it becomes a voter once it has caught up",
		Example: "  catena admin master add m4 10.0.0.4:7071 --addr 10.0.0.4:7070",
		Args:    args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fail("admin", callAdminFor(cmd.Context(), g, addTimeout, func(ctx context.Context, c api.AdminClient) error {
				_, err := c.AddMaster(ctx, &api.AddMasterRequest{Id: a[0], RaftAddr: a[1], Addr: addr})
				return err
			}))
		},
	}
	add.Flags().StringVar(&addr, "addr", "", "the new master's gRPC address (it records it itself when omitted)")
	remove := &cobra.Command{
		Use:   "remove NAME|ID",
		Short: "Remove a master voter",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fail("admin", callAdmin(cmd.Context(), g, func(ctx context.Context, c api.AdminClient) error {
				_, err := c.RemoveMaster(ctx, &api.RemoveMasterRequest{Id: a[0]})
				return err
			}))
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the masters: the leader, followers, and learners still catching up",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *api.ListMastersResponse
			err := callAdmin(cmd.Context(), g, func(ctx context.Context, c api.AdminClient) error {
				var err error
				resp, err = c.ListMasters(ctx, &api.ListMastersRequest{})
				return err
			})
			if err != nil {
				return fail("admin", err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				type member struct {
					ID       string `json:"id"`
					Addr     string `json:"addr"`
					RaftAddr string `json:"raft_addr"`
					Leader   bool   `json:"leader"`
					Voter    bool   `json:"voter"`
				}
				ms := []member{}
				for _, m := range resp.Masters {
					ms = append(ms, member{m.Id, m.Addr, m.RaftAddr, m.Leader, m.Voter})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"masters": ms})
			}
			for _, m := range resp.Masters {
				role := "follower"
				switch {
				case m.Leader:
					role = "leader"
				case !m.Voter:
					role = "learner" // catching up; a voter once it has
				}
				fmt.Fprintf(out, "%-8s %-8s grpc %-22s raft %s\n", m.Id, role, m.Addr, m.RaftAddr)
			}
			return nil
		},
	}
	list.Flags().BoolVar(&g.json, "json", false, "JSON output")
	mcmd.AddCommand(add, remove, list)
	admin.AddCommand(newChunkserverAdminCmd(g))
	admin.AddCommand(newRebalanceCmd(g))
	admin.AddCommand(newCACmd(), newCertCmd())
	admin.AddCommand(newS3AdminCmd(g))
	return admin
}

func newCACmd() *cobra.Command {
	ca := &cobra.Command{Use: "ca", Short: "The cluster's certificate authority"}
	ca.AddCommand(&cobra.Command{
		Use:     "init DIR",
		Short:   "Make a new cluster CA in DIR (ca.crt, and ca.key to keep safe)",
		Example: "  catena admin ca init /etc/catena/ca",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := auth.InitCA(a[0]); err != nil {
				return fail("admin", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena admin: cluster CA in %s (keep %s private; issue certificates with catena admin cert issue)\n",
				a[0], filepath.Join(a[0], auth.CAKeyFile))
			return nil
		},
	})
	var add, remove string
	trust := &cobra.Command{
		Use:   "trust TLSDIR... (--add CA | --remove CA)",
		Short: "Add a CA to (or remove one from) the CAs TLS directories trust: the steps of a CA rotation",
		Long: "A running process takes its directory's new ca.crt at its next handshake. To rotate the cluster CA:\n" +
			"  1. catena admin ca init NEW\n" +
			"  2. catena admin ca trust DIR... --add NEW          (every process's TLS directory)\n" +
			"  3. catena admin cert issue NAME --ca NEW --out DIR  (for every directory: the CAs it trusts stay)\n" +
			"  4. catena admin ca trust DIR... --remove OLD\n" +
			"A CA is a CA directory or a PEM file of CA certificates. --remove refuses to leave a directory\n" +
			"unable to verify its own certificate.",
		Example: "  catena admin ca trust /etc/catena/tls-m1 /etc/catena/tls-cs1 --add /etc/catena/ca-2026",
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (add == "") == (remove == "") {
				return &usageError{cmd: cmd, err: fmt.Errorf("give one of --add and --remove")}
			}
			for _, dir := range a {
				var err error
				if add != "" {
					err = auth.TrustCA(dir, add)
				} else {
					err = auth.UntrustCA(dir, remove)
				}
				if err != nil {
					return fail("admin", err)
				}
			}
			verb := "trust " + add
			if remove != "" {
				verb = "no longer trust " + remove
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena admin: %d TLS directories %s\n", len(a), verb)
			return nil
		},
	}
	trust.Flags().StringVar(&add, "add", "", "the CA to trust as well")
	trust.Flags().StringVar(&remove, "remove", "", "the CA to trust no longer")
	ca.AddCommand(trust)
	return ca
}

func newCertCmd() *cobra.Command {
	var caDir, role, out, uid, groups string
	var hosts []string
	issue := &cobra.Command{
		Use:   "issue NAME --ca DIR --role master|chunkserver|client|reader|admin --out DIR",
		Short: "Issue a certificate signed by the cluster CA: a TLS directory for --tls-dir",
		Example: "  catena admin cert issue cs1 --ca /etc/catena/ca --role chunkserver --out /etc/catena/tls --host 10.0.0.5\n" +
			"  catena admin cert issue alice --ca /etc/catena/ca --role client --uid 1000:1000 --out ~/.catena/tls",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if caDir == "" || out == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--ca and --out are required")}
			}
			r, err := auth.ParseRole(role)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			var user *auth.User
			if uid != "" {
				u, err := auth.ParseUser(uid, groups)
				if err != nil {
					return &usageError{cmd: cmd, err: fmt.Errorf("--uid/--groups: %w", err)}
				}
				user = &u
			} else if groups != "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--groups needs --uid")}
			}
			if err := auth.IssueUser(caDir, r, a[0], user, hosts, out); err != nil {
				return fail("admin", err)
			}
			who := ""
			if user != nil {
				who = fmt.Sprintf(", user %d:%d", user.UID, user.GID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena admin: %s certificate for %q%s in %s (use --tls-dir %s)\n", r, a[0], who, out, out)
			return nil
		},
	}
	issue.Flags().StringVar(&caDir, "ca", "", "the CA's directory (catena admin ca init)")
	issue.Flags().StringVar(&role, "role", "", "what the holder may do: master, chunkserver, client, reader (reads only) or admin")
	issue.Flags().StringVar(&out, "out", "", "directory to write ca.crt, tls.crt and tls.key to")
	issue.Flags().StringArrayVar(&hosts, "host", nil, "a host name or address to put in the certificate (repeatable)")
	issue.Flags().StringVar(&uid, "uid", "", "client and reader certificates: the user UID[:GID] the holder is (the namespace's permissions apply; without it, nobody 65534)")
	issue.Flags().StringVar(&groups, "groups", "", "with --uid: supplementary groups, GID,GID,...")
	cert := &cobra.Command{Use: "cert", Short: "Certificates of the cluster CA"}
	cert.AddCommand(issue)
	return cert
}

// callAdmin runs fn against the master leader: it tries each --master
// address and follows NOT_LEADER redirects until adminTimeout.
func callAdmin(ctx context.Context, g *globals, fn func(context.Context, api.AdminClient) error) error {
	return callAdminFor(ctx, g, adminAttempt, fn)
}

// callAdminFor is callAdmin with attempts of up to attempt each.
func callAdminFor(ctx context.Context, g *globals, attempt time.Duration, fn func(context.Context, api.AdminClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, max(adminTimeout, attempt))
	defer cancel()
	queue := g.masterList()
	if err := g.checkTransport(queue); err != nil {
		return err
	}
	var last error
	next := ""
	for i := 0; ctx.Err() == nil; i++ {
		addr := queue[i%len(queue)]
		if next != "" {
			addr, next = next, ""
		}
		transport := grpc.WithTransportCredentials(insecure.NewCredentials())
		if creds, err := g.creds(); err != nil {
			return err
		} else if creds != nil {
			transport = creds.DialOption(auth.RoleMaster)
		}
		cc, err := grpc.NewClient(addr, transport)
		if err != nil {
			return err
		}
		actx, acancel := context.WithTimeout(ctx, attempt)
		err = fn(actx, api.NewAdminClient(cc))
		acancel()
		cc.Close()
		if err == nil {
			return nil
		}
		last = err
		if rpcerr.Code(err) == api.ErrorCode_NOT_LEADER {
			if hint := rpcerr.LeaderAddr(err); hint != "" && hint != addr {
				next = hint
				continue
			}
		} else if code := rpcerr.Code(err); code == api.ErrorCode_PERMISSION_DENIED {
			return fmt.Errorf("permission denied: %s", rpcerr.Message(err))
		} else if code != api.ErrorCode_UNAVAILABLE && code != api.ErrorCode_ERROR_CODE_UNSPECIFIED {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no master leader answered: %w", last)
}

func newChunkserverAdminCmd(g *globals) *cobra.Command {
	cs := &cobra.Command{Use: "chunkserver", Short: "Administer chunkservers"}
	var stop bool
	drain := &cobra.Command{
		Use:   "drain NAME|ID",
		Short: "Move every replica off a chunkserver before it is retired (--stop ends the drain)",
		Long: `Drain a chunkserver: nothing new is placed on it, and each chunk whose
chain it is in is first copied to another server, then the drained server
leaves that chain, so no chunk ever has fewer replicas than its factor.
Clients keep reading and writing throughout. catena status shows the
server as draining and how many chains it is still in; at 0 it holds
nothing and can be stopped. --stop ends the drain (what moved stays
moved).`,
		Example: "  catena admin chunkserver drain db7-disk2\n  catena status",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := g.chunkserverID(cmd.Context(), a[0])
			if err != nil {
				return fail("admin", err)
			}
			return fail("admin", callAdmin(cmd.Context(), g, func(ctx context.Context, c api.AdminClient) error {
				_, err := c.DrainChunkserver(ctx, &api.DrainChunkserverRequest{Id: id, Stop: stop})
				return err
			}))
		},
	}
	drain.Flags().BoolVar(&stop, "stop", false, "end the drain instead of starting it")
	var force bool
	remove := &cobra.Command{
		Use:   "remove NAME|ID",
		Short: "Forget a stopped chunkserver (after a drain, or when its disk is gone)",
		Long: `Remove a chunkserver from the cluster. Stop it first: a server the master
still hears from is refused (it would register again, as a new one).
The server leaves every chain it is still in, and the repair loop copies
those chunks back to their factor from the other members. Removal is
refused while the server holds the only up-to-date replica of a chunk
(a repair to another server still under way: catena status), unless
--force, which loses what only it had; a chunk whose only replica it
holds cannot be removed at all (remove its file first). After a
complete drain the server is in no chain and nothing is repaired.`,
		Example: "  catena admin chunkserver drain db7-disk2\n  catena status    # wait for db7-disk2 in 0 chains, then stop it\n  catena admin chunkserver remove db7-disk2",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := g.chunkserverID(cmd.Context(), a[0])
			if err != nil {
				return fail("admin", err)
			}
			return fail("admin", callAdmin(cmd.Context(), g, func(ctx context.Context, c api.AdminClient) error {
				resp, err := c.RemoveChunkserver(ctx, &api.RemoveChunkserverRequest{Id: id, Force: force})
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "removed chunkserver %s (it was in %d chains)\n", a[0], resp.Chains)
				}
				return err
			}))
		},
	}
	remove.Flags().BoolVar(&force, "force", false, "remove it even where it holds the only up-to-date replica (that data is lost)")
	cs.AddCommand(drain, remove)
	return cs
}

// chunkserverID resolves a chunkserver named on the command line, by its
// name or its id, through catena status.
func (g *globals) chunkserverID(ctx context.Context, arg string) (uint64, error) {
	id, numErr := strconv.ParseUint(arg, 10, 64)
	c, err := g.newClient()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	for _, s := range st.Chunkservers {
		if s.Name == arg || numErr == nil && s.ID == id {
			return s.ID, nil
		}
	}
	return 0, fmt.Errorf("no chunkserver named %q (catena status lists them, by name and id)", arg)
}
