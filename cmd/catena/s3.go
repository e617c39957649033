package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/s3"
)

// s3Gateway is a running S3 gateway.
type s3Gateway struct {
	addr string
	srv  *http.Server
	stop context.CancelFunc
	done chan struct{}
	// onClose, when set, runs once the gateway stopped.
	onClose func()
}

// startS3 serves the S3 gateway over c on listen until Close.
func startS3(ctx context.Context, c *client.Client, cfg s3.Config, listen string, log *slog.Logger) (*s3Gateway, error) {
	cfg.Client = c
	cfg.Logger = log
	gw, err := s3.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := gw.Init(ctx); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, localErr(err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g := &s3Gateway{addr: l.Addr().String(), stop: stop, done: make(chan struct{}),
		srv: &http.Server{Handler: gw, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go gw.Run(rctx)
	go func() {
		defer close(g.done)
		if err := g.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("catena s3: serving", "err", err)
		}
	}()
	return g, nil
}

// Close stops the gateway, letting requests under way finish for a few
// seconds.
func (g *s3Gateway) Close() error {
	g.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := g.srv.Shutdown(ctx)
	if err != nil {
		g.srv.Close()
	}
	<-g.done
	if g.onClose != nil {
		g.onClose()
	}
	return nil
}

func newS3Cmd(g *globals) *cobra.Command {
	var listen, root, region string
	var expiry time.Duration
	cmd := &cobra.Command{
		Use:   "s3 [--listen ADDR] [--root DIR]",
		Short: "Serve the namespace as S3: buckets are the directories of --root, objects their files",
		Long: "Serve the namespace below --root over the S3 API (path-style requests, AWS\n" +
			"Signature V4). Buckets are the subdirectories of --root, an object is a file\n" +
			"(a key's '/' separates directories), so objects and files are the same data.\n\n" +
			"Requests are signed with access keys made by `catena admin s3 key create`,\n" +
			"and act as the key's uid:gid. On a cluster with TLS the gateway needs an\n" +
			"admin certificate (--tls-dir) to read the keys and act as their users.",
		Example: "  catena admin s3 key create alice --uid 1000:1000 --json\n" +
			"  catena s3 --listen 127.0.0.1:9000\n" +
			"  aws --endpoint-url http://127.0.0.1:9000 s3 mb s3://photos",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := g.checkTransport(g.masterList()); err != nil {
				return fail("s3", err)
			}
			c, err := client.New(g.clientConfig(cmd.ErrOrStderr()))
			if err != nil {
				return fail("s3", err)
			}
			defer c.Close()
			ctx := cmd.Context()
			err = g.waitForMaster(ctx, cmd.ErrOrStderr(), "s3", func(ctx context.Context) error {
				_, err := c.Stat(ctx, "/")
				return err
			})
			if ctx.Err() != nil {
				return nil // stopped while waiting
			}
			if err != nil {
				return fail("s3", err)
			}
			log := g.serverLogger(cmd.ErrOrStderr())
			gw, err := startS3(ctx, c, s3.Config{Root: root, Region: region, MultipartExpiry: expiry}, listen, log)
			if err != nil {
				return fail("s3", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena s3: serving %s on http://%s/ (try: aws --endpoint-url http://%s s3 ls)\n", rootOrDefault(root), gw.addr, gw.addr)
			<-ctx.Done()
			return fail("s3", gw.Close())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9000", "address to serve S3 on (plain HTTP)")
	f.StringVar(&root, "root", "/s3", "directory whose subdirectories are the buckets (made, mode 1777, by the first CreateBucket)")
	f.StringVar(&region, "region", "us-east-1", "the region GetBucketLocation answers (requests signed for any region are accepted)")
	f.DurationVar(&expiry, "multipart-expiry", 24*time.Hour, "remove a multipart upload (or an interrupted PUT's temporary file) untouched for this long")
	return cmd
}

func rootOrDefault(root string) string {
	if root == "" {
		return "/s3"
	}
	return root
}

// newS3AdminCmd is `catena admin s3 key create|ls|rm`.
func newS3AdminCmd(g *globals) *cobra.Command {
	s3cmd := &cobra.Command{Use: "s3", Short: "The S3 gateway's access keys"}
	keyCmd := &cobra.Command{Use: "key", Short: "Create, list and remove S3 access keys (kept in " + s3.KeysDir + ", root's)"}
	s3cmd.AddCommand(keyCmd)
	var uid string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME [--uid UID[:GID]]",
		Short: "Issue an access key; requests signed with it act as UID:GID (default 0:0, root)",
		Example: "  catena admin s3 key create backup --uid 1000:1000 --json\n" +
			"  {\"access_key_id\": \"CK...\", \"secret_access_key\": \"...\"}",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			u, err := parseUIDGID(uid)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			return fail("admin", g.withClient(func(c *client.Client) error {
				key, err := s3.NewKeys(c, nil).Create(cmd.Context(), a[0], u[0], u[1])
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return writeJSON(out, map[string]any{"access_key_id": key.AccessKeyID, "secret_access_key": key.SecretAccessKey,
						"name": key.Name, "uid": key.UID, "gid": key.GID})
				}
				fmt.Fprintf(out, "access key id:     %s\nsecret access key: %s\nacts as:           uid %d gid %d\n", key.AccessKeyID, key.SecretAccessKey, key.UID, key.GID)
				return nil
			}))
		},
	}
	create.Flags().StringVar(&uid, "uid", "0:0", "the POSIX identity UID[:GID] the key's requests act as")
	create.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	var lsJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the access keys (not their secrets)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fail("admin", g.withClient(func(c *client.Client) error {
				keys, err := s3.NewKeys(c, nil).List(cmd.Context())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if lsJSON {
					type entry struct {
						AccessKeyID string    `json:"access_key_id"`
						Name        string    `json:"name"`
						UID         uint32    `json:"uid"`
						GID         uint32    `json:"gid"`
						Created     time.Time `json:"created"`
					}
					list := []entry{}
					for _, k := range keys {
						list = append(list, entry{k.AccessKeyID, k.Name, k.UID, k.GID, k.Created})
					}
					return writeJSON(out, map[string]any{"keys": list})
				}
				for _, k := range keys {
					fmt.Fprintf(out, "%-20s %-20s %d:%d  %s\n", k.AccessKeyID, k.Name, k.UID, k.GID, k.Created.Format(time.RFC3339))
				}
				return nil
			}))
		},
	}
	ls.Flags().BoolVar(&lsJSON, "json", false, "JSON output")
	rm := &cobra.Command{
		Use:   "rm ACCESS_KEY_ID|NAME",
		Short: "Remove an access key; gateways refuse it within seconds",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fail("admin", g.withClient(func(c *client.Client) error {
				_, err := s3.NewKeys(c, nil).Remove(cmd.Context(), a[0])
				return err
			}))
		},
	}
	keyCmd.AddCommand(create, ls, rm)
	return s3cmd
}

// parseUIDGID parses "UID[:GID]" (GID defaults to UID).
func parseUIDGID(s string) ([2]uint32, error) {
	a, b, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(a, 10, 32)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("--uid %q: want UID[:GID]", s)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.ParseUint(b, 10, 32); err != nil {
			return [2]uint32{}, fmt.Errorf("--uid %q: want UID[:GID]", s)
		}
	}
	return [2]uint32{uint32(uid), uint32(gid)}, nil
}
