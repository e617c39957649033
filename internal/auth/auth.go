// Package auth is Catena's mutual TLS: a cluster CA, certificates that
// carry a role, and the check of that role on every RPC.
//
// A TLS directory (every process's --tls-dir) holds the cluster CA's
// certificate (ca.crt) and the process's own certificate and key (tls.crt,
// tls.key); the CA's directory also holds its key (ca.key), which only the
// operator keeps. A certificate names its holder (the subject's common
// name) and its role (the subject's organizational unit): master,
// chunkserver, client or admin. Every connection is mutual TLS 1.3: each
// side presents its certificate, signed by the cluster CA, and the server
// decides what the caller may do from the role in it (Rules), never from a
// field of the request. A client also checks that the server it reached
// holds a server role (master or chunkserver), so a stolen client
// certificate cannot impersonate a server. Host names are not checked: a
// certificate of the cluster CA with the right role is the identity.
//
// Model: InitCA and Issue write files; Load reads them once (a rotated
// certificate takes effect at the process's next start); the rest are pure
// functions of the credentials and the connection's peer.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Role is what a certificate allows its holder to do.
type Role string

// The roles.
const (
	RoleMaster      Role = "master"
	RoleChunkserver Role = "chunkserver"
	RoleClient      Role = "client"
	RoleAdmin       Role = "admin"
	// RoleReader is a client that may only read: the master refuses it
	// every change and grants it read-only capabilities.
	RoleReader Role = "reader"
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleMaster, RoleChunkserver, RoleClient, RoleAdmin, RoleReader:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want master, chunkserver, client, reader or admin)", s)
}

// Files of a TLS directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// Validity of what InitCA and Issue make.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 2 * 365 * 24 * time.Hour
)

// ErrNoCA: the directory holds no CA (ca.crt and ca.key).
var ErrNoCA = errors.New("auth: no cluster CA")

// InitCA makes a new cluster CA in dir (created if missing): ca.crt and
// ca.key. It refuses to replace an existing one.
func InitCA(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return fmt.Errorf("auth: %s already holds a CA (%s); remove it first to make a new one", dir, CAKeyFile)
	}
	key, der, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "catena cluster CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, CAValidity, nil, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CACertFile), "CERTIFICATE", der, 0o644)
}

// Issue signs, with the CA in caDir, a certificate for name in role and
// writes it with its key and the CA's certificate into outDir (created if
// missing): a TLS directory for --tls-dir. The CAs outDir already trusts
// stay trusted. hosts (names and addresses) go
// into the certificate as well, for tools that check them.
func Issue(caDir string, role Role, name string, hosts []string, outDir string) error {
	return IssueUser(caDir, role, name, nil, hosts, outDir)
}

// IssueUser is Issue for a certificate that also names a user (client
// and reader certificates only): the identity the master checks the
// namespace's permissions against.
func IssueUser(caDir string, role Role, name string, user *User, hosts []string, outDir string) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	if user != nil && role != RoleClient && role != RoleReader {
		return fmt.Errorf("auth: a %s certificate names no user (only client and reader ones do; admin is root)", role)
	}
	if name == "" {
		return errors.New("auth: a certificate needs a name")
	}
	caCert, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, OrganizationalUnit: []string{string(role)}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if user != nil {
		tmpl.Subject.Organization = user.organization()
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, der, err := sign(tmpl, CertValidity, caCert, caKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return err
	}
	// The issuing CA first, then those the directory already trusted (a
	// CA rotation keeps the old one trusted until UntrustCA).
	trusted := []*x509.Certificate{caCert}
	if have, err := readCerts(outDir); err == nil {
		trusted = mergeCerts(trusted, have)
	}
	if err := writeCerts(filepath.Join(outDir, CACertFile), trusted); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(outDir, KeyFile), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(outDir, CertFile), "CERTIFICATE", der, 0o644)
}

// sign makes a key and a certificate of tmpl for it, valid from an hour
// ago for validity (not past parent's end), signed by parent's key (self
// signed when parent is nil).
func sign(tmpl *x509.Certificate, validity time.Duration, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial(), now.Add(-time.Hour), now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	} else if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	return key, der, err
}

// Creds are a process's credentials: its certificate and the cluster CA,
// as its TLS directory holds them. Every handshake first checks whether the
// directory's files changed (a stat of each) and takes the new ones when
// they did and load: a certificate is rotated by writing the new one into
// the directory (catena admin cert issue does, file by file, each by an
// atomic rename), with the process running; connections already open keep
// theirs. A set that does not load (caught between two files), or of
// another role or name (a new identity, which a restart takes), is
// ignored.
type Creds struct {
	Role Role   // of the certificate loaded first; a rotation keeps it
	Name string // likewise: a chunkserver's id is bound to it

	dir string
	mu  sync.Mutex
	cur *material
}

// material is what one load of a TLS directory read.
type material struct {
	cert  tls.Certificate
	pool  *x509.CertPool
	role  Role
	name  string
	stamp string // the files' sizes and modification times
}

// Load reads the TLS directory dir.
func Load(dir string) (*Creds, error) {
	m, err := loadMaterial(dir)
	if err != nil {
		return nil, err
	}
	return &Creds{Role: m.role, Name: m.name, dir: dir, cur: m}, nil
}

// stamp names the state of a TLS directory's files.
func stamp(dir string) string {
	var b strings.Builder
	for _, f := range []string{CACertFile, CertFile, KeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// current is the material to use now, reloaded when the files changed.
func (c *Creds) current() *material {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != "" && stamp(c.dir) != c.cur.stamp {
		if m, err := loadMaterial(c.dir); err == nil && m.role == c.Role && m.name == c.Name {
			c.cur = m
		}
	}
	return c.cur
}

func loadMaterial(dir string) (*material, error) {
	st := stamp(dir)
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("auth: TLS directory %s: %w", dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("auth: %s: no certificate", filepath.Join(dir, CACertFile))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("auth: TLS directory %s: %w", dir, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", filepath.Join(dir, CertFile), err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("auth: %s is not signed by %s: %w", filepath.Join(dir, CertFile), filepath.Join(dir, CACertFile), err)
	}
	role, name, err := identity(leaf)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", filepath.Join(dir, CertFile), err)
	}
	return &material{cert: cert, pool: pool, role: role, name: name, stamp: st}, nil
}

// identity is the role and name a certificate carries.
func identity(c *x509.Certificate) (Role, string, error) {
	if len(c.Subject.OrganizationalUnit) != 1 {
		return "", "", fmt.Errorf("certificate of %q carries no single role", c.Subject.CommonName)
	}
	role, err := ParseRole(c.Subject.OrganizationalUnit[0])
	return role, c.Subject.CommonName, err
}

// verify checks a peer's certificate chain against the cluster CA and
// returns the identity it proves.
func (c *Creds) verify(rawCerts [][]byte) (Role, string, error) {
	if len(rawCerts) == 0 {
		return "", "", errors.New("auth: no certificate")
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return "", "", fmt.Errorf("auth: peer certificate: %w", err)
		}
		certs[i] = cert
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: c.current().pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return "", "", fmt.Errorf("auth: peer certificate: %w", err)
	}
	return identity(certs[0])
}

// ServerTLS is the configuration of a listener: TLS 1.3, a client
// certificate of the cluster CA required, of one of the roles in allow
// (any when empty; a gRPC listener checks roles per call instead).
func (c *Creds) ServerTLS(allow ...Role) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &c.current().cert, nil
		},
		ClientAuth: tls.RequireAnyClientCert, // verified below, against the cluster CA only
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			role, name, err := c.verify(raw)
			if err == nil && len(allow) > 0 && !slices.Contains(allow, role) {
				err = fmt.Errorf("auth: %q holds role %s, want %v", name, role, allow)
			}
			return err
		},
	}
}

// Listener wraps l so that every connection it accepts is mutual TLS with
// a peer of one of the roles in allow (the handshake runs at the first
// read or write; a peer without such a certificate gets an error there).
func (c *Creds) Listener(l net.Listener, allow ...Role) net.Listener {
	return tls.NewListener(l, c.ServerTLS(allow...))
}

// Client makes conn the client side of a mutual TLS connection to a
// server of one of the roles in want, and runs the handshake by deadline.
func (c *Creds) Client(conn net.Conn, deadline time.Time, want ...Role) (net.Conn, error) {
	tc := tls.Client(conn, c.ClientTLS(want...))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// ClientTLS is the configuration of a connection to a server of one of
// the roles in want (any server role when empty).
func (c *Creds) ClientTLS(want ...Role) *tls.Config {
	if len(want) == 0 {
		want = []Role{RoleMaster, RoleChunkserver}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &c.current().cert, nil
		},
		// Host names are not what identifies a server: the chain to the
		// cluster CA and the role are, checked here.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			role, name, err := c.verify(raw)
			if err != nil {
				return err
			}
			if !slices.Contains(want, role) {
				return fmt.Errorf("auth: server %q holds role %s, want %v", name, role, want)
			}
			return nil
		},
	}
}

// ServerOption makes a gRPC server use c.
func (c *Creds) ServerOption() grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(c.ServerTLS()))
}

// DialOption makes a gRPC connection use c, to a server of a role in want.
func (c *Creds) DialOption(want ...Role) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(c.ClientTLS(want...)))
}

// PeerIdentity is the role and name the caller's certificate proves; ok
// is false on a connection without TLS.
func PeerIdentity(ctx context.Context) (role Role, name string, ok bool) {
	c := peerCert(ctx)
	if c == nil {
		return "", "", false
	}
	role, name, err := identity(c)
	return role, name, err == nil
}

// peerCert is the caller's verified certificate; nil without TLS.
func peerCert(ctx context.Context) *x509.Certificate {
	p, found := peer.FromContext(ctx)
	if !found {
		return nil
	}
	ti, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(ti.State.PeerCertificates) == 0 {
		return nil
	}
	return ti.State.PeerCertificates[0]
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w in %s (catena admin ca init)", ErrNoCA, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w key in %s: issue certificates where the CA was made", ErrNoCA, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("auth: %s: not a PEM CA certificate and key", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
