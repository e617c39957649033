// Command catena is Catena's single binary: the master, the chunkserver, the
// embedded "dev" cluster, and the command-line client (put, get, cat, ls,
// mkdir, rm, mv, stat, status, version; bench lives in bench.go), and the
// cluster's administration (admin: the master group, the CA and its
// certificates).
//
// Transport: --tls-dir (or CATENA_TLS_DIR) names this process's TLS
// directory (internal/auth); every connection is then mutual TLS. A
// client command first probes the master with a TLS handshake
// (checkTransport), so a missing or needless --tls-dir is one clear line
// at once; beside a catena dev data directory it uses dev's admin
// credentials by itself.
//
// Model: each subcommand is a thin translation of flags into a Config or a
// client call. All cluster access goes through the client package; this
// command never talks to a chunkserver directly.
//
// Output contract (scripts rely on it):
//   - results go to stdout; with --json (ls, stat, status) stdout is exactly
//     one JSON document;
//   - a failure exits non-zero and prints exactly one line on stderr,
//     "catena: <what failed>: <reason>"; usage is printed only for flag and
//     argument errors (exit status 2);
//   - progress bars go to stderr, only on a terminal, and only once a
//     transfer has run for more than a second;
//   - log lines go to stderr, warnings and errors only unless --verbose.
//
// Invariant: no package-level mutable state. Shared flags live in globals,
// created per root command, so tests can build independent roots.
package main
