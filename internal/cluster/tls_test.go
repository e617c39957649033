package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/rpcerr"
)

func ptr[T any](v T) *T { return &v }

// fileInode is the inode of the file at p.
func fileInode(t *testing.T, cl *client.Client, p string) uint64 {
	t.Helper()
	fi, err := cl.Stat(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Inode
}

// TestTLSCluster: a cluster run with mutual TLS serves its clients; a
// caller without a certificate of the cluster CA gets nothing, and one
// whose certificate's role does not allow a call is refused it
// (PERMISSION_DENIED), whatever the request says: the attacks of a caller
// holding a client or a chunkserver certificate change neither data,
// chains nor metadata (the cleanup checks replicas and metadata).
func TestTLSCluster(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	ctx := context.Background()
	cl := clustertest.Client(t, c)
	f, err := cl.Create(ctx, "/f", client.CreateOptions{ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("catena"), 100000)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, before, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}

	// Certificates of the cluster CA, one per role, and one of another CA.
	dir := t.TempDir()
	ca := filepath.Join(c.Dir(), "tls", "ca")
	issue := func(ca string, role auth.Role, name string) string {
		out := filepath.Join(dir, name)
		if err := auth.Issue(ca, role, name, nil, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	clientDir := issue(ca, auth.RoleClient, "mallory-client")
	serverDir := issue(ca, auth.RoleChunkserver, "mallory-cs")
	otherCA := filepath.Join(dir, "other-ca")
	if err := auth.InitCA(otherCA); err != nil {
		t.Fatal(err)
	}
	foreignDir := issue(otherCA, auth.RoleAdmin, "foreign-admin")
	conn := func(addr, tlsDir string, want auth.Role) *grpc.ClientConn {
		t.Helper()
		opt := grpc.WithTransportCredentials(insecure.NewCredentials())
		if tlsDir != "" {
			creds, err := auth.Load(tlsDir)
			if err != nil {
				t.Fatal(err)
			}
			opt = creds.DialOption(want)
		}
		cc, err := grpc.NewClient(addr, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	call := func(what string, fn func(ctx context.Context) error) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return fn(ctx)
	}
	denied := func(what string, err error) {
		t.Helper()
		if rpcerr.Code(err) != api.ErrorCode_PERMISSION_DENIED {
			t.Errorf("%s: %v, want PERMISSION_DENIED", what, err)
		}
	}
	csAddr := c.Chunkserver(0).Addr()
	h, epoch := before[0].Handle, before[0].Epoch

	// No certificate, or one of another CA: no call gets through.
	for name, tlsDir := range map[string]string{"plain TCP": "", "foreign CA": foreignDir} {
		mc := api.NewMasterClient(conn(c.MasterAddr(), tlsDir, auth.RoleMaster))
		if err := call(name, func(ctx context.Context) error {
			_, err := mc.Status(ctx, &api.StatusRequest{})
			return err
		}); err == nil {
			t.Errorf("%s: Status answered", name)
		}
		cs := api.NewChunkserverClient(conn(csAddr, tlsDir, auth.RoleChunkserver))
		if err := call(name, func(ctx context.Context) error {
			_, err := cs.Read(ctx, &api.ReadRequest{Handle: h, Epoch: epoch, Length: 4096})
			return err
		}); err == nil {
			t.Errorf("%s: Read answered", name)
		}
	}

	// A client certificate: no server's calls, no admin's.
	mc := api.NewMasterClient(conn(c.MasterAddr(), clientDir, auth.RoleMaster))
	denied("client: Register with 1 PiB free", call("", func(ctx context.Context) error {
		_, err := mc.Register(ctx, &api.RegisterRequest{ServerId: 666, Addr: "127.0.0.1:1", FreeBytes: 1 << 50})
		return err
	}))
	denied("client: Heartbeat", call("", func(ctx context.Context) error {
		_, err := mc.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: c.ChunkserverID(0)})
		return err
	}))
	denied("client: ReportReplica", call("", func(ctx context.Context) error {
		_, err := mc.ReportReplica(ctx, &api.ReportReplicaRequest{ServerId: c.ChunkserverID(0), Handle: h, Epoch: epoch,
			Problem: api.ReplicaProblem_REPLICA_CORRUPT})
		return err
	}))
	adm := api.NewAdminClient(conn(c.MasterAddr(), clientDir, auth.RoleMaster))
	denied("client: AddMaster", call("", func(ctx context.Context) error {
		_, err := adm.AddMaster(ctx, &api.AddMasterRequest{Id: "evil", RaftAddr: "127.0.0.1:1"})
		return err
	}))
	cs := api.NewChunkserverClient(conn(csAddr, clientDir, auth.RoleChunkserver))
	denied("client: Reconfigure at epoch 1000", call("", func(ctx context.Context) error {
		_, err := cs.Reconfigure(ctx, &api.ReconfigureRequest{Handle: h, Epoch: 1000,
			Chain: []*api.ServerRef{{Id: c.ChunkserverID(0), Addr: csAddr}}})
		return err
	}))
	denied("client: CreateReplica", call("", func(ctx context.Context) error {
		_, err := cs.CreateReplica(ctx, &api.CreateReplicaRequest{Handle: 1 << 40, Epoch: 1, ChunkSize: 1 << 20})
		return err
	}))
	denied("client: Fetch", call("", func(ctx context.Context) error {
		st, err := cs.Fetch(ctx, &api.FetchRequest{Handle: h})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}))
	denied("client: Chain", call("", func(ctx context.Context) error {
		st, err := cs.Chain(ctx)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}))

	// A client certificate, at a chunkserver: no Read or Write without the
	// master's capability for that very chunk (handles count up from 1).
	head := before[0].Chain[0]
	csHead := api.NewChunkserverClient(conn(head.Addr, clientDir, auth.RoleChunkserver))
	csTail := api.NewChunkserverClient(conn(before[0].Chain[len(before[0].Chain)-1].Addr, clientDir, auth.RoleChunkserver))
	denied("client: Read without a capability", call("", func(ctx context.Context) error {
		_, err := csTail.Read(ctx, &api.ReadRequest{Handle: h, Epoch: epoch, Length: 4096})
		return err
	}))
	denied("client: Write without a capability", call("", func(ctx context.Context) error {
		_, err := csHead.Write(ctx, &api.WriteRequest{Handle: h, Epoch: epoch, Data: []byte("EVIL"), ClientId: 666, RequestId: 1})
		return err
	}))
	other, err := cl.Create(ctx, "/g", client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.WriteAt([]byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	gc, err := mc.GetChunks(ctx, &api.GetChunksRequest{Inode: fileInode(t, cl, "/g")})
	if err != nil || len(gc.Chunks) != 1 || gc.Chunks[0].Handle == h {
		t.Fatalf("client: GetChunks: %v, %v", gc, err)
	}
	denied("client: Read of one chunk with another's capability", call("", func(ctx context.Context) error {
		_, err := csTail.Read(ctx, &api.ReadRequest{Handle: h, Epoch: epoch, Length: 4096, Capability: gc.Chunks[0].Capability})
		return err
	}))

	// A reader certificate: reads, and changes nothing.
	readerDir := issue(ca, auth.RoleReader, "rita-reader")
	mr := api.NewMasterClient(conn(c.MasterAddr(), readerDir, auth.RoleMaster))
	denied("reader: Create", call("", func(ctx context.Context) error {
		_, err := mr.Create(ctx, &api.CreateRequest{Path: "/by-reader"})
		return err
	}))
	denied("reader: AllocateChunk", call("", func(ctx context.Context) error {
		_, err := mr.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: fileInode(t, cl, "/f"), Index: 9})
		return err
	}))
	rc, err := mr.GetChunks(ctx, &api.GetChunksRequest{Inode: fileInode(t, cl, "/f")})
	if err != nil || len(rc.Chunks) == 0 {
		t.Fatalf("reader: GetChunks: %v, %v", rc, err)
	}
	r0 := rc.Chunks[0]
	csHeadR := api.NewChunkserverClient(conn(r0.Chain[0].Addr, readerDir, auth.RoleChunkserver))
	csTailR := api.NewChunkserverClient(conn(r0.Chain[len(r0.Chain)-1].Addr, readerDir, auth.RoleChunkserver))
	if err := call("", func(ctx context.Context) error {
		resp, err := csTailR.Read(ctx, &api.ReadRequest{Handle: r0.Handle, Epoch: r0.Epoch, Length: 6, Capability: r0.Capability})
		if err == nil && string(resp.Data) != "catena" {
			t.Errorf("reader: read %q", resp.Data)
		}
		return err
	}); err != nil {
		t.Errorf("reader: Read with its capability: %v", err)
	}
	denied("reader: Write with its read-only capability", call("", func(ctx context.Context) error {
		_, err := csHeadR.Write(ctx, &api.WriteRequest{Handle: r0.Handle, Epoch: r0.Epoch, Data: []byte("EVIL"),
			ClientId: 666, RequestId: 2, Capability: r0.Capability})
		return err
	}))

	// A user's certificate (uid 1001): capabilities as its permissions
	// allow. /f is root's, mode 0644: read-only; /g made 0600: none.
	userDir := filepath.Join(dir, "bob")
	if err := auth.IssueUser(ca, auth.RoleClient, "bob", &auth.User{UID: 1001, GID: 1001}, nil, userDir); err != nil {
		t.Fatal(err)
	}
	mu := api.NewMasterClient(conn(c.MasterAddr(), userDir, auth.RoleMaster))
	uc, err := mu.GetChunks(ctx, &api.GetChunksRequest{Inode: fileInode(t, cl, "/f")})
	if err != nil || len(uc.Chunks) == 0 {
		t.Fatalf("user: GetChunks of a readable file: %v, %v", uc, err)
	}
	u0 := uc.Chunks[0]
	csHeadU := api.NewChunkserverClient(conn(u0.Chain[0].Addr, userDir, auth.RoleChunkserver))
	denied("user: Write to root's 0644 file with its capability", call("", func(ctx context.Context) error {
		_, err := csHeadU.Write(ctx, &api.WriteRequest{Handle: u0.Handle, Epoch: u0.Epoch, Data: []byte("EVIL"),
			ClientId: 667, RequestId: 1, Capability: u0.Capability})
		return err
	}))
	denied("user: SetSize of root's file", call("", func(ctx context.Context) error {
		_, err := mu.SetSize(ctx, &api.SetSizeRequest{Inode: fileInode(t, cl, "/f"), Size: 1})
		return err
	}))
	gi := fileInode(t, cl, "/g")
	if _, err := cl.SetAttr(ctx, gi, client.SetAttrIn{Mode: ptr(uint32(0o600))}); err != nil {
		t.Fatal(err)
	}
	denied("user: GetChunks of root's 0600 file", call("", func(ctx context.Context) error {
		_, err := mu.GetChunks(ctx, &api.GetChunksRequest{Inode: gi})
		return err
	}))
	// An access ACL naming bob opens the 0600 file to him, read only; he
	// may not set one himself (not the owner), nor a malformed one anyone.
	acl := func(entries ...[3]uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 2)
		for _, e := range entries {
			b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
			b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
			b = binary.LittleEndian.AppendUint32(b, e[2])
		}
		return b
	}
	bobReads := acl([3]uint32{0x01, 6, 0}, [3]uint32{0x02, 4, 1001}, [3]uint32{0x04, 0, 0}, [3]uint32{0x10, 4, 0}, [3]uint32{0x20, 0, 0})
	fu := api.NewFSClient(conn(c.MasterAddr(), userDir, auth.RoleMaster))
	denied("user: set an ACL on root's file", call("", func(ctx context.Context) error {
		_, err := fu.SetXattr(ctx, &api.SetXattrRequest{Inode: gi, Name: "system.posix_acl_access", Value: bobReads})
		return err
	}))
	if err := cl.SetXattr(ctx, gi, "system.posix_acl_access", bobReads[:10], 0); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("a malformed ACL: %v, want ErrInvalid", err)
	}
	if err := cl.SetXattr(ctx, gi, "system.posix_acl_access", bobReads, 0); err != nil {
		t.Fatal(err)
	}
	ac, err := mu.GetChunks(ctx, &api.GetChunksRequest{Inode: gi})
	if err != nil || len(ac.Chunks) != 1 {
		t.Fatalf("user: GetChunks of a file whose ACL names him: %v, %v", ac, err)
	}
	csTailU := api.NewChunkserverClient(conn(ac.Chunks[0].Chain[len(ac.Chunks[0].Chain)-1].Addr, userDir, auth.RoleChunkserver))
	if err := call("", func(ctx context.Context) error {
		resp, err := csTailU.Read(ctx, &api.ReadRequest{Handle: ac.Chunks[0].Handle, Epoch: ac.Chunks[0].Epoch, Length: 4, Capability: ac.Chunks[0].Capability})
		if err == nil && string(resp.Data) != "mine" {
			t.Errorf("user: read %q through the ACL", resp.Data)
		}
		return err
	}); err != nil {
		t.Errorf("user: Read through the ACL: %v", err)
	}
	denied("user: Write through a read-only ACL", call("", func(ctx context.Context) error {
		_, err := api.NewChunkserverClient(conn(ac.Chunks[0].Chain[0].Addr, userDir, auth.RoleChunkserver)).Write(ctx,
			&api.WriteRequest{Handle: ac.Chunks[0].Handle, Epoch: ac.Chunks[0].Epoch, Data: []byte("EVIL"), ClientId: 667, RequestId: 2, Capability: ac.Chunks[0].Capability})
		return err
	}))
	// Holding a file open (which keeps it after its last name goes) is for
	// files the caller could open: /f (0644) yes, /g once without the ACL no.
	if err := call("", func(ctx context.Context) error {
		if _, err := fu.RenewMount(ctx, &api.RenewMountRequest{Session: 4242, TtlMs: 60000}); err != nil {
			return err
		}
		_, err := fu.Hold(ctx, &api.HoldRequest{Session: 4242, Inode: fileInode(t, cl, "/f")})
		return err
	}); err != nil {
		t.Errorf("user: Hold of a readable file: %v", err)
	}
	// The session is bob's: another client can neither end it, renew it,
	// hold with it nor let go of what it holds (and so have an open file
	// with no name deleted under bob's mount).
	fm := api.NewFSClient(conn(c.MasterAddr(), clientDir, auth.RoleMaster))
	denied("client: EndMount of another's session", call("", func(ctx context.Context) error {
		_, err := fm.EndMount(ctx, &api.EndMountRequest{Session: 4242})
		return err
	}))
	denied("client: Unhold with another's session", call("", func(ctx context.Context) error {
		_, err := fm.Unhold(ctx, &api.HoldRequest{Session: 4242, Inode: fileInode(t, cl, "/f")})
		return err
	}))
	denied("client: RenewMount of another's session", call("", func(ctx context.Context) error {
		_, err := fm.RenewMount(ctx, &api.RenewMountRequest{Session: 4242, TtlMs: 1})
		return err
	}))
	if err := call("", func(ctx context.Context) error {
		_, err := fu.Hold(ctx, &api.HoldRequest{Session: 4242, Inode: fileInode(t, cl, "/f")})
		return err
	}); err != nil {
		t.Errorf("user: Hold with his session after another's EndMount: %v", err)
	}
	if err := cl.RemoveXattr(ctx, gi, "system.posix_acl_access"); err != nil {
		t.Fatal(err)
	}
	denied("user: Hold of root's 0600 file", call("", func(ctx context.Context) error {
		_, err := fu.Hold(ctx, &api.HoldRequest{Session: 4242, Inode: gi})
		return err
	}))
	if err := call("", func(ctx context.Context) error {
		_, err := fu.EndMount(ctx, &api.EndMountRequest{Session: 4242})
		return err
	}); err != nil {
		t.Errorf("user: EndMount: %v", err)
	}
	denied("user: Create in root's /", call("", func(ctx context.Context) error {
		_, err := mu.Create(ctx, &api.CreateRequest{Path: "/by-bob"})
		return err
	}))

	// A chunkserver certificate: no master's calls, no client's.
	cs2 := api.NewChunkserverClient(conn(csAddr, serverDir, auth.RoleChunkserver))
	denied("chunkserver: Reconfigure", call("", func(ctx context.Context) error {
		_, err := cs2.Reconfigure(ctx, &api.ReconfigureRequest{Handle: h, Epoch: 1000,
			Chain: []*api.ServerRef{{Id: c.ChunkserverID(0), Addr: csAddr}}})
		return err
	}))
	denied("chunkserver: Read", call("", func(ctx context.Context) error {
		_, err := cs2.Read(ctx, &api.ReadRequest{Handle: h, Epoch: epoch, Length: 4096})
		return err
	}))
	mc2 := api.NewMasterClient(conn(c.MasterAddr(), serverDir, auth.RoleMaster))
	denied("chunkserver: Remove", call("", func(ctx context.Context) error {
		_, err := mc2.Remove(ctx, &api.RemoveRequest{Path: "/f"})
		return err
	}))
	// Another chunkserver's certificate may not speak for cs1: its id is
	// bound to the certificate it registered with.
	victim := c.ChunkserverID(0)
	denied("chunkserver: Register as cs1", call("", func(ctx context.Context) error {
		_, err := mc2.Register(ctx, &api.RegisterRequest{ServerId: victim, Addr: "127.0.0.1:1", FreeBytes: 1 << 50})
		return err
	}))
	denied("chunkserver: Heartbeat as cs1", call("", func(ctx context.Context) error {
		_, err := mc2.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: victim, Addr: "127.0.0.1:1", Full: true, ReportGen: 1})
		return err
	}))
	denied("chunkserver: ReportReplica as cs1", call("", func(ctx context.Context) error {
		_, err := mc2.ReportReplica(ctx, &api.ReportReplicaRequest{ServerId: victim, Handle: h, Epoch: epoch,
			Problem: api.ReplicaProblem_REPLICA_CORRUPT})
		return err
	}))

	// A Chain update forged in the name of the tail's predecessor, the
	// next in sequence at the current epoch: the tail would apply it and
	// serve bytes nobody wrote; sent with another chunkserver's
	// certificate, it is dropped. (The stream ends once the tail has
	// handled everything sent on it.)
	chainOf := before[0].Chain
	tail, pred := chainOf[len(chainOf)-1], chainOf[len(chainOf)-2]
	tailSrv := c.Chunkserver(c.ChunkserverIndex(tail.ID))
	rep, err := tailSrv.Store().Get(chunkstore.Handle(h))
	if err != nil {
		t.Fatal(err)
	}
	forged := &api.ChainMessage{From: pred.ID, ChainEpoch: epoch, Msg: &api.ChainMessage_Update{Update: &api.Update{
		Handle: h, Epoch: epoch, Seq: rep.Meta().AppliedSeq + 1, Kind: api.UpdateKind_WRITE, Offset: 0, Data: []byte("EVIL"), Length: 4}}}
	func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := api.NewChunkserverClient(conn(tailSrv.Addr(), serverDir, auth.RoleChunkserver)).Chain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(forged); err != nil {
			t.Fatal(err)
		}
		st.CloseSend()
		st.Recv()
	}()

	// The Raft port takes masters only.
	creds, err := auth.Load(clientDir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", c.Master().RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	if tc, err := creds.Client(raw, time.Now().Add(5*time.Second), auth.RoleMaster); err == nil {
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Write([]byte{0})
		if _, err := tc.Read(make([]byte, 1)); err == nil {
			t.Error("the Raft port answered a client certificate")
		}
		tc.Close()
	}

	// Nothing changed: the same chains, the same bytes, a healthy cluster.
	_, after, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if after[i].Epoch != before[i].Epoch || len(after[i].Chain) != len(before[i].Chain) {
			t.Errorf("chunk %d: epoch %d chain %v after the attacks, was %d %v", i, after[i].Epoch, after[i].Chain, before[i].Epoch, before[i].Chain)
		}
	}
	g, err := cl.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := make([]byte, len(data))
	if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back after the attacks: %v, equal %v", err, bytes.Equal(got, data))
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chunkservers) != 3 || st.Chunks.UnderReplicated != 0 {
		t.Fatalf("status after the attacks: %d chunkservers, %v", len(st.Chunkservers), st.Chunks)
	}

	// Rotation with the cluster running: new certificates for the masters
	// and the chunkservers, written into their TLS directories; the next
	// handshakes present them, and clients old and new go on.
	admin, err := auth.Load(c.TLSDir())
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		conn, err := tls.Dial("tcp", c.MasterAddr(), admin.ClientTLS(auth.RoleMaster))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := serial()
	for _, role := range []auth.Role{auth.RoleMaster, auth.RoleChunkserver} {
		// The same names: a chunkserver's id is bound to its certificate's.
		if err := auth.Issue(ca, role, "cluster-"+string(role), nil, filepath.Join(c.Dir(), "tls", string(role))); err != nil {
			t.Fatal(err)
		}
	}
	if serial() == old {
		t.Fatal("the master still presents its old certificate")
	}
	fresh := clustertest.Client(t, c)
	h2, err := fresh.Create(ctx, "/after-rotation", client.CreateOptions{ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.WriteAt(data, 0); err != nil {
		t.Fatalf("write after the rotation: %v", err)
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read by the old client after the rotation: %v", err)
	}

	// The CA itself rotates, with the cluster running and the clients
	// going on at every step (auth/trust.go).
	ca2 := filepath.Join(dir, "ca2")
	if err := auth.InitCA(ca2); err != nil {
		t.Fatal(err)
	}
	dirs := map[auth.Role]string{}
	for _, role := range []auth.Role{auth.RoleMaster, auth.RoleChunkserver, auth.RoleAdmin} {
		dirs[role] = filepath.Join(c.Dir(), "tls", string(role))
	}
	ops := func(step string) {
		t.Helper()
		if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read by an old client: %v", step, err)
		}
		cl := clustertest.Client(t, c)
		h, err := cl.Create(ctx, "/ca-rotation/"+step, client.CreateOptions{ChunkSize: 1 << 20})
		if err == nil {
			_, err = h.WriteAt(data[:4096], 0)
			err = errors.Join(err, h.Close())
		}
		if err != nil {
			t.Fatalf("%s: write by a new client: %v", step, err)
		}
	}
	if err := cl.MkdirAll(ctx, "/ca-rotation", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if err := auth.TrustCA(d, ca2); err != nil {
			t.Fatal(err)
		}
	}
	ops("both-trusted")
	if err := auth.UntrustCA(dirs[auth.RoleMaster], ca); err == nil {
		t.Fatal("UntrustCA dropped the CA of the directory's own certificate")
	}
	for role, d := range dirs {
		name := "cluster-" + string(role)
		if err := auth.Issue(ca2, role, name, nil, d); err != nil {
			t.Fatal(err)
		}
	}
	ops("new-certificates")
	for _, d := range dirs {
		if err := auth.UntrustCA(d, ca); err != nil {
			t.Fatal(err)
		}
	}
	ops("old-ca-dropped")
	// A certificate of the old CA is now foreign.
	mcOld := api.NewMasterClient(conn(c.MasterAddr(), clientDir, auth.RoleMaster))
	if err := call("", func(ctx context.Context) error {
		_, err := mcOld.Status(ctx, &api.StatusRequest{})
		return err
	}); err == nil {
		t.Error("a certificate of the old CA is still taken")
	}
}
