package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
)

// TestIssueAndLoad: a certificate issued by the CA loads with its role and
// name; the CA is not replaced; a directory mixing two CAs is refused.
func TestIssueAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := InitCA(ca); err != nil {
		t.Fatal(err)
	}
	if err := InitCA(ca); err == nil {
		t.Fatal("a second InitCA replaced the CA")
	}
	if err := Issue(ca, "root", "x", nil, filepath.Join(dir, "x")); err == nil {
		t.Fatal("a certificate of an unknown role was issued")
	}
	if err := Issue(filepath.Join(dir, "none"), RoleClient, "x", nil, filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "no cluster CA") {
		t.Fatalf("issue without a CA: %v", err)
	}
	out := filepath.Join(dir, "cs7")
	if err := Issue(ca, RoleChunkserver, "cs7", []string{"10.0.0.7", "cs7.example"}, out); err != nil {
		t.Fatal(err)
	}
	c, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != RoleChunkserver || c.Name != "cs7" {
		t.Fatalf("loaded %s %q, want chunkserver cs7", c.Role, c.Name)
	}
	leaf, _ := x509.ParseCertificate(c.cur.cert.Certificate[0])
	if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 1 {
		t.Fatalf("hosts: %v %v", leaf.IPAddresses, leaf.DNSNames)
	}

	// ca.crt of another CA beside this certificate: refused.
	other := filepath.Join(dir, "other")
	if err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(other, CACertFile))
	if err := os.WriteFile(filepath.Join(out, CACertFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(out); err == nil {
		t.Fatal("a certificate of another CA loaded")
	}
}

// handshake runs a TLS handshake between a server with srv's
// credentials allowing allow and a client with cli's wanting want; it
// returns the server's and the client's errors.
func handshake(t *testing.T, srv, cli *Creds, allow []Role, want []Role) (error, error) {
	t.Helper()
	// Real sockets: net.Pipe has no buffer, and both sides write at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	s := tls.Server(a, srv.ServerTLS(allow...))
	c := tls.Client(b, cli.ClientTLS(want...))
	errc := make(chan error, 1)
	go func() {
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client's certificate is checked after the
			// client's side completes; a read carries the verdict.
			_, err = s.Read(make([]byte, 1))
		}
		errc <- err
	}()
	cerr := c.Handshake()
	if cerr == nil {
		c.Write([]byte{1})
	}
	serr := <-errc
	return serr, cerr
}

// TestVerify: each side checks the other's chain to the cluster CA, the
// server the caller's role when it restricts roles, the client the
// server's role; an expired certificate is refused.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := InitCA(ca); err != nil {
		t.Fatal(err)
	}
	load := func(ca string, role Role, name string) *Creds {
		out := filepath.Join(dir, name)
		if err := Issue(ca, role, name, nil, out); err != nil {
			t.Fatal(err)
		}
		c, err := Load(out)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	m := load(ca, RoleMaster, "m1")
	cl := load(ca, RoleClient, "alice")
	cs := load(ca, RoleChunkserver, "cs1")
	if serr, cerr := handshake(t, m, cl, nil, []Role{RoleMaster}); serr != nil || cerr != nil {
		t.Fatalf("client to master: server %v, client %v", serr, cerr)
	}
	if serr, _ := handshake(t, m, cl, []Role{RoleMaster}, []Role{RoleMaster}); serr == nil {
		t.Fatal("a listener for masters only took a client")
	}
	if _, cerr := handshake(t, cs, cl, nil, []Role{RoleMaster}); cerr == nil {
		t.Fatal("a client wanting a master accepted a chunkserver")
	}
	if _, cerr := handshake(t, cl, m, nil, nil); cerr == nil {
		t.Fatal("a client certificate served as a server")
	}
	otherCA := filepath.Join(dir, "other")
	if err := InitCA(otherCA); err != nil {
		t.Fatal(err)
	}
	foreign := load(otherCA, RoleAdmin, "eve")
	if serr, _ := handshake(t, m, foreign, nil, []Role{RoleMaster}); serr == nil {
		t.Fatal("a certificate of another CA was taken")
	}

	// An expired certificate of the right CA.
	caCert, caKey, err := loadCA(ca)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "old", OrganizationalUnit: []string{"admin"}},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	expired := &Creds{Role: RoleAdmin, Name: "old", cur: &material{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool: cl.cur.pool, role: RoleAdmin}}
	if serr, _ := handshake(t, m, expired, nil, []Role{RoleMaster}); serr == nil {
		t.Fatal("an expired certificate was taken")
	}
}

// TestRulesCoverEveryMethod: every RPC of every service has a rule (a new
// one without is refused to all, and this test says so).
func TestRulesCoverEveryMethod(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{api.Master_ServiceDesc, api.Chunkserver_ServiceDesc, api.Admin_ServiceDesc,
		api.FS_ServiceDesc, api.Volumes_ServiceDesc, api.ReplicaDiff_ServiceDesc} {
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range sd.Streams {
			names = append(names, s.StreamName)
		}
		for _, n := range names {
			full := "/" + sd.ServiceName + "/" + n
			if len(Rules[full]) == 0 {
				t.Errorf("%s has no rule", full)
			}
		}
	}
	if Allowed(api.Chunkserver_Reconfigure_FullMethodName, RoleClient) || !Allowed(api.Chunkserver_Reconfigure_FullMethodName, RoleMaster) {
		t.Fatal("Reconfigure: masters only")
	}
	// A reader looks and reads; it changes nothing.
	for _, m := range []string{api.Master_Lookup_FullMethodName, api.Master_GetChunks_FullMethodName,
		api.Chunkserver_Read_FullMethodName, api.FS_Readdir_FullMethodName, api.Volumes_GetVolume_FullMethodName} {
		if !Allowed(m, RoleReader) {
			t.Errorf("a reader may not call %s", m)
		}
	}
	for _, m := range []string{api.Master_Create_FullMethodName, api.Master_AllocateChunk_FullMethodName,
		api.Master_SetSize_FullMethodName, api.Master_Remove_FullMethodName, api.Chunkserver_Write_FullMethodName,
		api.FS_Setattr_FullMethodName, api.FS_Create_FullMethodName, api.FS_SetXattr_FullMethodName,
		api.Volumes_CreateVolume_FullMethodName, api.Volumes_ResizeVolume_FullMethodName, api.Admin_AddMaster_FullMethodName} {
		if Allowed(m, RoleReader) {
			t.Errorf("a reader may call %s", m)
		}
	}
}

// TestRotation: a certificate written into the TLS directory of a running
// process is the one its next handshake presents; one of another role or
// name is ignored.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := InitCA(ca); err != nil {
		t.Fatal(err)
	}
	mdir, cdir := filepath.Join(dir, "m"), filepath.Join(dir, "c")
	for _, x := range []struct {
		role Role
		out  string
	}{{RoleMaster, mdir}, {RoleClient, cdir}} {
		if err := Issue(ca, x.role, string(x.role), nil, x.out); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Load(mdir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Load(cdir)
	if err != nil {
		t.Fatal(err)
	}
	presented := func() string {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s := tls.Server(c, m.ServerTLS())
			s.Handshake()
			s.Read(make([]byte, 1))
			s.Close()
		}()
		conn, err := tls.Dial("tcp", l.Addr().String(), cl.ClientTLS(RoleMaster))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := presented()
	if err := Issue(ca, RoleMaster, "master", nil, mdir); err != nil {
		t.Fatal(err)
	}
	second := presented()
	if second == first {
		t.Fatal("the rotated certificate was not presented")
	}
	want := second
	if err := Issue(ca, RoleClient, "master", nil, mdir); err != nil {
		t.Fatal(err)
	}
	if got := presented(); got != want {
		t.Fatal("a certificate of another role replaced the master's")
	}
	if err := Issue(ca, RoleMaster, "another", nil, mdir); err != nil {
		t.Fatal(err)
	}
	if got := presented(); got != want {
		t.Fatal("a certificate of another name replaced the master's")
	}
}

// BenchmarkCapability: what a chunkserver pays per Read or Write to check
// a capability, and the master per chunk to sign one.
func BenchmarkCapability(b *testing.B) {
	key := CapabilityKey{ID: 1, Secret: make([]byte, keySize)}
	var ring Keyring
	ring.Set([]*api.CapabilityKey{{Id: 1, Secret: key.Secret}})
	body := func() *api.CapabilityBody {
		return &api.CapabilityBody{Handle: 1234567, Epoch: 3, Rights: uint32(RightRead | RightWrite),
			ExpiresUnixMilli: time.Now().Add(time.Hour).UnixMilli(), ChunkSize: 64 << 20, Chain: []uint64{1 << 62, 1 << 61, 1 << 60}}
	}
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			Sign(key, body())
		}
	})
	b.Run("check", func(b *testing.B) {
		c := Sign(key, body())
		now := time.Now()
		for b.Loop() {
			if _, err := ring.Check(c, 1234567, 3, RightWrite, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTrust: TrustCA and UntrustCA change which CAs a TLS directory
// trusts, refusing what would break it; Issue keeps what it trusts.
func TestTrust(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	for _, ca := range []string{"ca1", "ca2"} {
		if err := InitCA(p(ca)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Issue(p("ca1"), RoleClient, "c", nil, p("c")); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		certs, err := readCerts(p("c"))
		if err != nil {
			t.Fatal(err)
		}
		return len(certs)
	}
	if err := UntrustCA(p("c"), p("ca2")); err == nil {
		t.Fatal("untrusting a CA the directory does not trust succeeded")
	}
	if err := UntrustCA(p("c"), p("ca1")); err == nil || !strings.Contains(err.Error(), "issue it a new one first") {
		t.Fatalf("untrusting the CA of the directory's own certificate: %v", err)
	}
	if err := TrustCA(p("c"), p("ca2")); err != nil || count() != 2 {
		t.Fatalf("trust ca2: %v, %d CAs", err, count())
	}
	if err := TrustCA(p("c"), filepath.Join(p("ca2"), CACertFile)); err != nil || count() != 2 {
		t.Fatalf("trust ca2 twice: %v, %d CAs", err, count())
	}
	if err := TrustCA(p("c"), filepath.Join(p("c"), CertFile)); err == nil {
		t.Fatal("a leaf certificate was trusted as a CA")
	}
	if err := Issue(p("ca2"), RoleClient, "c", nil, p("c")); err != nil || count() != 2 {
		t.Fatalf("issue from ca2: %v, %d CAs (want both kept)", err, count())
	}
	if err := UntrustCA(p("c"), p("ca1")); err != nil || count() != 1 {
		t.Fatalf("untrust ca1: %v, %d CAs", err, count())
	}
	if _, err := Load(p("c")); err != nil {
		t.Fatalf("the rotated directory does not load: %v", err)
	}
	if err := UntrustCA(p("c"), p("ca2")); err == nil {
		t.Fatal("the last CA was dropped")
	}
}
