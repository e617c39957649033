package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Overlays (docs/overlays.md): a copier's view of a volume, the writable
// volume "VOL+NAME", which sees VOL as it was at the attach plus the
// copier's own writes; and writer sessions: at most one writer of a
// volume (or overlay) at a time.

// OverlaySep separates a volume's name from its overlay's.
const OverlaySep = "+"

// OverlayName is the volume name of overlay name of volume vol.
func OverlayName(vol, name string) string { return vol + OverlaySep + name }

// OverlayInfo describes one overlay of a volume.
type OverlayInfo struct {
	Name     string     // NAME (its volume is Volume.Name, VOL+NAME)
	Volume   VolumeInfo // with its shared and exclusive bytes
	Attached time.Time
	Lease    time.Duration // detached after this long without a renewal
	Writer   bool          // a writer session holds it
	Owner    string        // the writer identity holding it
	// RenewedAgo: since its writer's last renewal (or its attach, or the
	// master leader's election, whichever is latest).
	RenewedAgo time.Duration
}

// AttachOverlay makes overlay name of volume vol, a copy of vol as of now
// (no data is copied); it is detached when no writer renews it for lease
// (0: the master's default, 30 s).
func (c *Client) AttachOverlay(ctx context.Context, vol, name string, lease time.Duration) (*VolumeInfo, error) {
	return c.attachOverlay(ctx, vol, name, lease, false)
}

// ReattachOverlay is AttachOverlay replacing an overlay of that name in
// one step (a copier's restart): the old overlay's writer is fenced and
// its own space freed, the new one sees the volume as of now.
func (c *Client) ReattachOverlay(ctx context.Context, vol, name string, lease time.Duration) (*VolumeInfo, error) {
	return c.attachOverlay(ctx, vol, name, lease, true)
}

func (c *Client) attachOverlay(ctx context.Context, vol, name string, lease time.Duration, replace bool) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.AttachOverlayResponse, error) {
		return v.AttachOverlay(ctx, &api.AttachOverlayRequest{Volume: vol, Name: name, LeaseMs: lease.Milliseconds(), Replace: replace})
	})
	if err != nil {
		return nil, opError("attach overlay", OverlayName(vol, name), err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// ListOverlays returns the overlays of volume vol, sorted by name.
func (c *Client) ListOverlays(ctx context.Context, vol string) ([]OverlayInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.ListOverlaysResponse, error) {
		return v.ListOverlays(ctx, &api.ListOverlaysRequest{Volume: vol})
	})
	if err != nil {
		return nil, opError("list overlays", vol, err)
	}
	var out []OverlayInfo
	for _, o := range resp.GetOverlays() {
		out = append(out, OverlayInfo{Name: o.GetName(), Volume: volumeFromAPI(o.GetInfo()),
			Attached: time.Unix(0, o.GetAttachedUnixNano()), Lease: time.Duration(o.GetLeaseMs()) * time.Millisecond,
			Writer: o.GetWriter(), Owner: o.GetOwner(), RenewedAgo: time.Duration(o.GetRenewedAgoMs()) * time.Millisecond})
	}
	return out, nil
}

// DetachOverlay removes overlay name of vol and frees its own space; its
// writer's next write fails with ErrFenced.
func (c *Client) DetachOverlay(ctx context.Context, vol, name string) error {
	_, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.DetachOverlayResponse, error) {
		return v.DetachOverlay(ctx, &api.DetachOverlayRequest{Volume: vol, Name: name})
	})
	return opError("detach overlay", OverlayName(vol, name), err)
}

// PromoteOverlay makes overlay name's view the content of volume vol, in
// O(metadata): vol's writer is fenced (nothing it sends lands from the
// answer on), the overlay's writer goes on writing, now the volume, and
// the other overlays keep their views.
func (c *Client) PromoteOverlay(ctx context.Context, vol, name string) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.PromoteOverlayResponse, error) {
		return v.PromoteOverlay(ctx, &api.PromoteOverlayRequest{Volume: vol, Name: name})
	})
	if err != nil {
		return nil, opError("promote overlay", OverlayName(vol, name), err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// WriterOptions configures OpenVolumeWriter.
type WriterOptions struct {
	// Lease: how long the session lives without a renewal (0: the
	// master's default, 30 s; an overlay's own lease wins). The volume
	// renews it every Lease/3.
	Lease time.Duration
	// TakeOver fences a live session instead of failing with ErrExist:
	// for a writer known dead before its lease lapsed.
	TakeOver bool
	// Owner is the writer's identity (default: this host and process). A
	// writer naming the owner of the live session joins it instead of
	// being refused: the same writer restarted after a crash, or one
	// writer's several processes.
	Owner string
	// Keep: Close leaves the session to its owner (to rejoin, or to lapse)
	// instead of releasing it; for a writer whose processes come and go.
	Keep bool
	// OnFenced, when set, is called once when the session is found
	// fenced.
	OnFenced func(error)
}

// defaultOwner names this process as a writer.
func defaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/pid%d", host, os.Getpid())
}

// writer is an open volume's writer session.
type writer struct {
	session string
	keep    bool // Close does not release the session
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu     sync.Mutex
	fenced error
}

// OpenVolumeWriter opens volume (or overlay) name as its one writer: it
// fails with ErrExist while another writer's session is live. The
// session is renewed in the background until Close, which releases it;
// once it is fenced (promoted over, detached, taken over), every write
// fails with ErrFenced.
func (c *Client) OpenVolumeWriter(ctx context.Context, name string, opts WriterOptions) (*Volume, error) {
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.AttachWriterResponse, error) {
		return v.AttachWriter(ctx, &api.AttachWriterRequest{Volume: name, LeaseMs: opts.Lease.Milliseconds(),
			TakeOver: opts.TakeOver, Owner: opts.Owner})
	})
	if rpcerr.Code(err) == api.ErrorCode_EXISTS {
		// Another writer holds it: the master says which, and since when.
		err = withMessage(ErrExist, err)
	}
	if err != nil {
		return nil, opError("open volume writer", name, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	w := &writer{session: resp.GetSession(), keep: opts.Keep, stop: make(chan struct{}), done: make(chan struct{})}
	f := newFile(c, "volume "+name, FileInfo{Inode: vi.Inode, Name: name, Size: vi.Size,
		Replication: vi.Replication, ChunkSize: vi.ChunkSize, ModTime: vi.ModTime})
	f.session = w.session
	if err := f.Reload(ctx); err != nil {
		f.Close()
		if !resp.GetJoined() && !opts.Keep {
			c.releaseWriter(vi.Inode, w.session)
		}
		return nil, err
	}
	v := &Volume{f: f, info: vi, w: w}
	lease := time.Duration(resp.GetLeaseMs()) * time.Millisecond
	go v.renewLoop(max(lease/3, 10*time.Millisecond), opts.OnFenced)
	return v, nil
}

// renewLoop renews v's session every period until Close or a fence.
func (v *Volume) renewLoop(period time.Duration, onFenced func(error)) {
	defer close(v.w.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-v.w.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), period)
		err := v.CheckSession(ctx)
		cancel()
		if errors.Is(err, ErrFenced) {
			if onFenced != nil {
				onFenced(err)
			}
			return
		}
		// Any other failure (no leader for a moment) is retried at the
		// next period; the lease covers a few.
	}
}

// fencedErr is the error of a fenced writer, or nil.
func (v *Volume) fencedErr() error {
	if v.w == nil {
		return nil
	}
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	return v.w.fenced
}

// CheckSession asks the master whether v's writer session still holds
// (nil for a volume opened without one); ErrFenced when not, after which
// every write fails with it.
func (v *Volume) CheckSession(ctx context.Context) error {
	if v.w == nil {
		return nil
	}
	if err := v.fencedErr(); err != nil {
		return err
	}
	_, err := callVolumes(ctx, v.f.c, func(ctx context.Context, a api.VolumesClient) (*api.RenewWriterResponse, error) {
		return a.RenewWriter(ctx, &api.RenewWriterRequest{Inode: v.info.Inode, Session: v.w.session})
	})
	if err = opError("write", v.f.path, err); errors.Is(err, ErrFenced) {
		v.w.mu.Lock()
		v.w.fenced = err
		v.w.mu.Unlock()
	}
	return err
}

// Session is the volume's writer session ("" when opened by OpenVolume).
func (v *Volume) Session() string {
	if v.w == nil {
		return ""
	}
	return v.w.session
}

func (c *Client) releaseWriter(ino uint64, session string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	callVolumes(ctx, c, func(ctx context.Context, a api.VolumesClient) (*api.ReleaseWriterResponse, error) {
		return a.ReleaseWriter(ctx, &api.ReleaseWriterRequest{Inode: ino, Session: session})
	})
}

// closeWriter stops the renewals and releases a live session.
func (v *Volume) closeWriter() {
	if v.w == nil {
		return
	}
	v.w.once.Do(func() {
		close(v.w.stop)
		<-v.w.done
		if v.fencedErr() == nil && !v.w.keep {
			v.f.c.releaseWriter(v.info.Inode, v.w.session)
		}
	})
}
