package master

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
)

func fsClient(t *testing.T, m *Master) api.FSClient {
	t.Helper()
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return api.NewFSClient(cc)
}

// TestFSSpecialFilesRenameAndNames: the FS service carries special files
// with their device numbers, RENAME_EXCHANGE and RENAME_NOREPLACE, and
// answers NAME_TOO_LONG (not INVALID or NOT_FOUND) for names over 255 bytes.
func TestFSSpecialFilesRenameAndNames(t *testing.T) {
	m, _ := startMaster(t, t.TempDir(), newClock())
	fs := fsClient(t, m)
	ctx := context.Background()
	root := meta.RootInode

	for _, c := range []struct {
		name string
		typ  api.NodeType
		rdev uint32
	}{
		{"fifo", api.NodeType_NODE_FIFO, 0},
		{"chr", api.NodeType_NODE_CHAR_DEVICE, 0x103},
		{"blk", api.NodeType_NODE_BLOCK_DEVICE, 0x801},
		{"sock", api.NodeType_NODE_SOCKET, 0},
	} {
		r, err := fs.Mknod(ctx, &api.MknodRequest{Parent: root, Name: c.name, Type: c.typ, Mode: 0o640, Rdev: c.rdev, Uid: 3, Gid: 4})
		if err != nil {
			t.Fatalf("mknod %s: %v", c.name, err)
		}
		l, err := fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: c.name})
		if err != nil {
			t.Fatal(err)
		}
		if a := l.Attr; a.Type != c.typ || a.Rdev != c.rdev || a.Mode != 0o640 || a.Uid != 3 || a.Gid != 4 || a.Inode != r.Attr.Inode {
			t.Fatalf("%s: %v", c.name, a)
		}
	}
	for _, typ := range []api.NodeType{api.NodeType_NODE_FILE, api.NodeType_NODE_DIRECTORY, api.NodeType_NODE_SYMLINK} {
		_, err := fs.Mknod(ctx, &api.MknodRequest{Parent: root, Name: "x", Type: typ})
		wantCode(t, "mknod of "+typ.String(), err, api.ErrorCode_INVALID)
	}

	// RENAME_EXCHANGE swaps; RENAME_NOREPLACE refuses an existing name.
	fifo, _ := fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: "fifo"})
	blk, _ := fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: "blk"})
	if _, err := fs.Rename(ctx, &api.RenameAtRequest{SrcParent: root, SrcName: "fifo", DstParent: root, DstName: "blk", Exchange: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: "fifo"})
	b, _ := fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: "blk"})
	if a.Attr.Inode != blk.Attr.Inode || b.Attr.Inode != fifo.Attr.Inode {
		t.Fatalf("after exchange: fifo names %d, blk names %d", a.Attr.Inode, b.Attr.Inode)
	}
	_, err := fs.Rename(ctx, &api.RenameAtRequest{SrcParent: root, SrcName: "fifo", DstParent: root, DstName: "missing", Exchange: true})
	wantCode(t, "exchange with a missing name", err, api.ErrorCode_NOT_FOUND)
	_, err = fs.Rename(ctx, &api.RenameAtRequest{SrcParent: root, SrcName: "fifo", DstParent: root, DstName: "chr", NoReplace: true})
	wantCode(t, "noreplace", err, api.ErrorCode_EXISTS)

	long := strings.Repeat("n", 256)
	_, err = fs.LookupChild(ctx, &api.LookupChildRequest{Parent: root, Name: long})
	wantCode(t, "lookup long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Create(ctx, &api.CreateAtRequest{Parent: root, Name: long})
	wantCode(t, "create long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Mkdir(ctx, &api.MkdirAtRequest{Parent: root, Name: long})
	wantCode(t, "mkdir long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Mknod(ctx, &api.MknodRequest{Parent: root, Name: long, Type: api.NodeType_NODE_FIFO})
	wantCode(t, "mknod long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Symlink(ctx, &api.SymlinkRequest{Parent: root, Name: long, Target: "t"})
	wantCode(t, "symlink long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Link(ctx, &api.LinkRequest{Inode: fifo.Attr.Inode, Parent: root, Name: long})
	wantCode(t, "link long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Rename(ctx, &api.RenameAtRequest{SrcParent: root, SrcName: "fifo", DstParent: root, DstName: long})
	wantCode(t, "rename long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Unlink(ctx, &api.UnlinkRequest{Parent: root, Name: long})
	wantCode(t, "unlink long", err, api.ErrorCode_NAME_TOO_LONG)
	_, err = fs.Create(ctx, &api.CreateAtRequest{Parent: root, Name: long[:255]})
	if err != nil {
		t.Fatalf("create of a 255-byte name: %v", err)
	}
}

// TestBoundedNamesAndSizes: a new name with a control character is
// INVALID on every call that gives one; a size or chunk past MaxFileSize
// is FILE_TOO_BIG; neither changes anything.
func TestBoundedNamesAndSizes(t *testing.T) {
	m, mc := startMaster(t, t.TempDir(), newClock())
	fs := fsClient(t, m)
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	vols := api.NewVolumesClient(cc)
	ctx := context.Background()
	root := meta.RootInode
	f, err := mc.Create(ctx, &api.CreateRequest{Path: "/f", ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a\nb", "\x00", "tab\t", "esc\x1b[2J", "del\x7f"} {
		_, err := mc.Create(ctx, &api.CreateRequest{Path: "/" + name})
		wantCode(t, "create "+name, err, api.ErrorCode_INVALID)
		_, err = mc.Mkdir(ctx, &api.MkdirRequest{Path: "/d/" + name, Parents: true})
		wantCode(t, "mkdir -p "+name, err, api.ErrorCode_INVALID)
		_, err = mc.Rename(ctx, &api.RenameRequest{Src: "/f", Dst: "/" + name})
		wantCode(t, "rename to "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Create(ctx, &api.CreateAtRequest{Parent: root, Name: name})
		wantCode(t, "create at "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Mkdir(ctx, &api.MkdirAtRequest{Parent: root, Name: name})
		wantCode(t, "mkdir at "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Symlink(ctx, &api.SymlinkRequest{Parent: root, Name: name, Target: "f"})
		wantCode(t, "symlink "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Mknod(ctx, &api.MknodRequest{Parent: root, Name: name, Type: api.NodeType_NODE_FIFO})
		wantCode(t, "mknod "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Link(ctx, &api.LinkRequest{Inode: f.Info.Inode, Parent: root, Name: name})
		wantCode(t, "link "+name, err, api.ErrorCode_INVALID)
		_, err = fs.Rename(ctx, &api.RenameAtRequest{SrcParent: root, SrcName: "f", DstParent: root, DstName: name})
		wantCode(t, "rename at "+name, err, api.ErrorCode_INVALID)
		_, err = vols.CreateVolume(ctx, &api.CreateVolumeRequest{Name: name, Size: 1 << 20})
		wantCode(t, "volume "+name, err, api.ErrorCode_INVALID)
	}
	// UTF-8 and every printable byte stay allowed.
	if _, err := mc.Create(ctx, &api.CreateRequest{Path: "/été ~!@#$%^&*()"}); err != nil {
		t.Fatalf("create of a printable name: %v", err)
	}

	_, err = mc.SetSize(ctx, &api.SetSizeRequest{Inode: f.Info.Inode, Size: 1<<63 - 1, Mode: api.SetSizeMode_EXTEND})
	wantCode(t, "set size 2^63-1", err, api.ErrorCode_FILE_TOO_BIG)
	_, err = mc.SetSize(ctx, &api.SetSizeRequest{Inode: f.Info.Inode, Size: meta.MaxFileSize + 1, Mode: api.SetSizeMode_EXACT})
	wantCode(t, "set size max+1", err, api.ErrorCode_FILE_TOO_BIG)
	if _, err := mc.SetSize(ctx, &api.SetSizeRequest{Inode: f.Info.Inode, Size: meta.MaxFileSize, Mode: api.SetSizeMode_EXACT}); err != nil {
		t.Fatalf("set size to the maximum: %v", err)
	}
	_, err = mc.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: f.Info.Inode, Index: meta.MaxFileSize >> 20})
	wantCode(t, "chunk past the maximum", err, api.ErrorCode_FILE_TOO_BIG)

	ents, err := mc.List(ctx, &api.ListRequest{Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents.Entries {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "f,été ~!@#$%^&*()" {
		t.Fatalf("entries after the refused calls: %q", got)
	}
	if err := m.CheckState(); err != nil {
		t.Fatal(err)
	}
}

// TestListPages: List and Readdir answer in pages of at most listPage
// entries, sorted, with more while entries follow; the client library
// reads every page.
func TestListPages(t *testing.T) {
	defer func(n int) { listPage = n }(listPage)
	listPage = 3
	m, mc := startMaster(t, t.TempDir(), newClock())
	fs := fsClient(t, m)
	ctx := context.Background()
	var want []string
	for _, name := range []string{"g", "c", "a", "e", "b", "f", "d"} {
		if _, err := mc.Create(ctx, &api.CreateRequest{Path: "/" + name}); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{"a", "b", "c", "d", "e", "f", "g"}

	var got []string
	var pages []int
	for after := ""; ; {
		r, err := mc.List(ctx, &api.ListRequest{Path: "/", StartAfter: after})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(r.Entries))
		for _, e := range r.Entries {
			got = append(got, e.Name)
		}
		if !r.More {
			break
		}
		after = got[len(got)-1]
	}
	if strings.Join(got, "") != strings.Join(want, "") || len(pages) != 3 || pages[0] != 3 || pages[2] != 1 {
		t.Fatalf("List pages %v: %v, want %v in pages of 3", pages, got, want)
	}
	r, err := mc.List(ctx, &api.ListRequest{Path: "/", StartAfter: "b", Limit: 2})
	if err != nil || len(r.Entries) != 2 || r.Entries[0].Name != "c" || !r.More {
		t.Fatalf("List after b, limit 2: %v %v", r, err)
	}

	got = nil
	for after := ""; ; {
		r, err := fs.Readdir(ctx, &api.ReaddirRequest{Inode: meta.RootInode, StartAfter: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Entries) > 2 {
			t.Fatalf("Readdir page of %d entries, limit 2", len(r.Entries))
		}
		for _, e := range r.Entries {
			got = append(got, e.Name)
		}
		if !r.More {
			break
		}
		after = got[len(got)-1]
	}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("Readdir pages: %v, want %v", got, want)
	}
}

// TestAddMasterRefusesUnreachable: a voter whose Raft address does not
// answer is refused with INVALID, and the group is unchanged and serving
// (one such voter added to a single master would have left it without a
// quorum for good).
func TestAddMasterRefusesUnreachable(t *testing.T) {
	m, mc := startMaster(t, t.TempDir(), newClock())
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	adm := api.NewAdminClient(cc)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = adm.AddMaster(ctx, &api.AddMasterRequest{Id: "m9", RaftAddr: dead})
	wantCode(t, "add an unreachable master", err, api.ErrorCode_INVALID)
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("error %v: want it to say the address does not answer", err)
	}
	ls, err := adm.ListMasters(ctx, &api.ListMastersRequest{})
	if err != nil || len(ls.Masters) != 1 {
		t.Fatalf("masters after the refusal: %v %v", ls, err)
	}
	if _, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/still-serving"}); err != nil {
		t.Fatalf("the group after the refusal: %v", err)
	}
}

// TestAddMasterLearnerNeverCatchesUp: a master whose Raft address takes
// connections but never answers joins as a learner, which counts in no
// quorum; when it has not caught up within CatchUpTimeout it is removed
// again (UNAVAILABLE, saying so), and the group served throughout.
func TestAddMasterLearnerNeverCatchesUp(t *testing.T) {
	ctx := context.Background()
	m, err := Start(ctx, Config{Dir: t.TempDir(), ListenAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Logger: quietLogger(), CatchUpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	adm, mc := api.NewAdminClient(cc), api.NewMasterClient(cc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // a silent peer: holds every connection, says nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	served := make(chan error, 1)
	go func() {
		// Once the learner is in the configuration, the group commits.
		for {
			ls, err := adm.ListMasters(ctx, &api.ListMastersRequest{})
			if err != nil {
				served <- err
				return
			}
			if len(ls.Masters) == 2 {
				for _, x := range ls.Masters {
					if x.Id == "m9" && x.Voter {
						served <- errors.New("m9 became a voter")
						return
					}
				}
				_, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/during"})
				served <- err
				return
			}
		}
	}()
	_, err = adm.AddMaster(ctx, &api.AddMasterRequest{Id: "m9", RaftAddr: ln.Addr().String()})
	wantCode(t, "add a master that never catches up", err, api.ErrorCode_UNAVAILABLE)
	if err == nil || !strings.Contains(err.Error(), "did not catch up") {
		t.Fatalf("error %v: want it to say the master did not catch up", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("the group while a learner was added: %v", err)
	}
	ls, err := adm.ListMasters(ctx, &api.ListMastersRequest{})
	if err != nil || len(ls.Masters) != 1 || ls.Masters[0].Id != "m1" {
		t.Fatalf("masters after the learner was removed: %v %v", ls, err)
	}
	if _, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/after"}); err != nil {
		t.Fatalf("the group after: %v", err)
	}
}
