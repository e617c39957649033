package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
)

// envMaster overrides the default --master.
const envMaster = "CATENA_MASTER"

// envTLSDir is the default --tls-dir.
const envTLSDir = "CATENA_TLS_DIR"

// globals holds the flags shared by every subcommand.
type globals struct {
	masters string // --master: comma-separated master addresses
	json    bool   // --json, registered by the subcommands that support it
	verbose bool   // --verbose: debug logs on stderr
	tlsDir  string // --tls-dir: this process's TLS directory ("": plain TCP)
	// --log-level ("": the command's default) and --log-format.
	logLevel, logFormat string
}

// creds loads --tls-dir (nil when it is empty: plain TCP).
func (g *globals) creds() (*auth.Creds, error) {
	if g.tlsDir == "" {
		return nil, nil
	}
	return auth.Load(g.tlsDir)
}

// clientConfig is the client library's configuration from the global
// flags.
func (g *globals) clientConfig(stderr io.Writer) client.Config {
	return client.Config{Masters: g.masterList(), Logger: g.debugLogger(stderr), TLSDir: g.tlsDir}
}

// masterList splits --master into addresses.
func (g *globals) masterList() []string {
	out := splitList(g.masters)
	if len(out) == 0 {
		out = []string{client.DefaultMaster}
	}
	return out
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// logger returns a client command's logger: stderr, warnings and up
// unless --log-level or --verbose say otherwise.
func (g *globals) logger(stderr io.Writer) *slog.Logger {
	return g.loggerAt(stderr, slog.LevelWarn)
}

// serverLogger is a server's logger: info and up by default (every state
// change is logged at info).
func (g *globals) serverLogger(stderr io.Writer) *slog.Logger {
	return g.loggerAt(stderr, slog.LevelInfo)
}

// loggerAt is logger with level as the default; --log-format picks text
// or JSON lines (both checked by checkLogFlags before any command runs).
func (g *globals) loggerAt(stderr io.Writer, level slog.Level) *slog.Logger {
	if g.logLevel != "" {
		_ = level.UnmarshalText([]byte(g.logLevel))
	}
	if g.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// checkLogFlags validates --log-level and --log-format.
func (g *globals) checkLogFlags() error {
	if g.logLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(g.logLevel)); err != nil {
			return fmt.Errorf("bad --log-level %q: want debug, info, warn or error", g.logLevel)
		}
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return fmt.Errorf("bad --log-format %q: want text or json", g.logFormat)
	}
	return nil
}

// probeTimeout bounds the reachability check of newClient.
const probeTimeout = 2 * time.Second

// newClient connects to the masters named by --master. It fails fast with
// client.ErrMasterUnreachable when none accepts a TCP connection, so a user
// who forgot "catena dev" hears it at once instead of after the client's
// retry budget.
func (g *globals) newClient() (*client.Client, error) {
	masters := g.masterList()
	if !anyReachable(masters, probeTimeout) {
		return nil, client.ErrMasterUnreachable
	}
	if err := g.checkTransport(masters); err != nil {
		return nil, err
	}
	return client.New(g.clientConfig(os.Stderr))
}

// checkTransport tells a user whose --tls-dir does not match the master's
// listener so at once, instead of after the client's retries: it probes
// the first master that answers with a TLS handshake. Without --tls-dir,
// beside a catena dev data directory (devDir) whose master speaks TLS, it
// uses dev's admin credentials.
func (g *globals) checkTransport(masters []string) error {
	for _, a := range masters {
		tlsServer, known := probeTLS(a, probeTimeout)
		switch {
		case !known:
			continue
		case tlsServer && g.tlsDir == "" && exists(filepath.Join(devTLSDir, auth.CertFile)):
			g.tlsDir = devTLSDir // beside a catena dev: its admin credentials
		case tlsServer && g.tlsDir == "":
			return fmt.Errorf("master at %s requires mutual TLS: give --tls-dir (or set %s) a directory with a client certificate (catena admin cert issue)", a, envTLSDir)
		case !tlsServer && g.tlsDir != "":
			return fmt.Errorf("master at %s does not use TLS: drop --tls-dir (and %s)", a, envTLSDir)
		}
		return nil
	}
	// No master answered yet (a front end waiting for it): beside a
	// catena dev, its credentials are the best guess.
	if g.tlsDir == "" && exists(filepath.Join(devTLSDir, auth.CertFile)) {
		g.tlsDir = devTLSDir
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// probeTLS reports whether the server at addr answers a TLS handshake;
// known is false when it could not tell (unreachable).
func probeTLS(addr string, timeout time.Duration) (tlsServer, known bool) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false, false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// No certificate is offered and none is checked: only whether the
	// other side speaks TLS at all matters here.
	err = tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}).HandshakeContext(ctx)
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		return true, true
	case errors.As(err, &rh), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return false, true
	}
	return false, false
}

// debugLogger is the client library's logger: stderr with --verbose, else
// nil (silent).
func (g *globals) debugLogger(stderr io.Writer) *slog.Logger {
	if !g.verbose {
		return nil
	}
	return g.logger(stderr)
}

// anyReachable reports whether a TCP connection to one of addrs succeeds.
func anyReachable(addrs []string, timeout time.Duration) bool {
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, timeout); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// buildRoot builds the catena command tree and the global flags it parses.
func buildRoot() (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:           "catena",
		Short:         "Catena: a distributed file and block store",
		Long:          "Catena is a distributed file and block store: a master, chunkservers,\nand a client, all in this one binary. Start with \"catena dev\".",
		SilenceUsage:  true,
		SilenceErrors: true,
		// With Args set, cobra hands an unknown subcommand to the root, which
		// reports it as a usage error rather than a runtime one.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("unknown command %q", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	def := os.Getenv(envMaster)
	if def == "" {
		def = client.DefaultMaster
	}
	root.PersistentFlags().StringVar(&g.masters, "master", def, "master address(es), comma-separated (env "+envMaster+")")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages on stderr")
	root.PersistentFlags().StringVar(&g.tlsDir, "tls-dir", os.Getenv(envTLSDir),
		"TLS directory (CA certificate, this process's certificate and key: catena admin cert issue); every connection is then mutual TLS (env "+envTLSDir+"; empty: plain TCP)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "",
		"log level on stderr: debug, info, warn or error (default: info for servers, warn for other commands)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json (one object per line)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := g.checkLogFlags(); err != nil {
			return &usageError{cmd: cmd, err: err}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd, err: err}
	})

	root.AddCommand(
		newMasterCmd(g),
		newChunkserverCmd(g),
		newDevCmd(g),
		newPutCmd(g),
		newGetCmd(g),
		newCatCmd(g),
		newAppendCmd(g),
		newLsCmd(g),
		newMkdirCmd(g),
		newChmodCmd(g),
		newSetrepCmd(g),
		newChownCmd(g),
		newRmCmd(g),
		newMvCmd(g),
		newCpCmd(g),
		newSnapshotCmd(g),
		newStatCmd(g),
		newStatusCmd(g),
		newVersionCmd(g),
	)
	root.AddCommand(newBenchCmd(g))
	root.AddCommand(newAdminCmd(g))
	root.AddCommand(newVolumeCmd(g), newOverlayCmd(g), newNbdCmd(g))
	root.AddCommand(newS3Cmd(g))
	root.AddCommand(newMirrorCmd(g))
	root.AddCommand(newMountCmds(g)...)
	strictGroups(root)
	return root, g
}

// strictGroups makes every command that only groups others (catena
// admin, catena volume, ...) refuse an unknown subcommand as a usage
// error (exit 2), as the root does, instead of printing its help and
// succeeding; without arguments it prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictGroups(sub)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil {
		return
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return &usageError{cmd: c, err: fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
}

// execute runs the CLI with args and returns the process exit status:
// 0 on success, 1 on a runtime failure, 2 on a usage error.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, g := buildRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "catena: %s\n", oneLine(strings.ReplaceAll(ue.err.Error(), "catena: ", "")))
		if ue.cmd != nil {
			fmt.Fprint(stderr, ue.cmd.UsageString())
		}
		return 2
	}
	fmt.Fprintf(stderr, "catena: %s\n", errorLine(err, g.masters))
	return 1
}

// args wraps a cobra argument validator so its failures count as usage errors.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return &usageError{cmd: cmd, err: err}
		}
		return nil
	}
}

// withClient runs fn with a fresh client and closes it afterwards.
func (g *globals) withClient(fn func(c *client.Client) error) error {
	c, err := g.newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}
