package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/minio/minio-go/v7"

	"github.com/catena-io/catena/internal/lincheck"
)

// TestObjectsLinearizable: clients put, get and delete a few keys of one
// bucket at random, at once; each key is a register (absent = 0, a PUT
// writes a value's block, a DELETE writes 0), and porcupine checks the
// whole history (lincheck.Model). A GET must return a whole object (a
// torn or mixed body fails lincheck.Decode): an object appears
// atomically, and a reader never sees an older object after a newer one.
func TestObjectsLinearizable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5<<20)
	ctx := context.Background()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "lin", minio.MakeBucketOptions{}))
	const keys, workers = 3, 4
	dur := 6 * time.Second
	if testing.Short() {
		dur = 3 * time.Second
	}
	h := lincheck.NewHistory()
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		r := rand.New(rand.NewPCG(uint64(w), 0x53))
		wg.Go(func() {
			for seq := uint64(1); time.Now().Before(stop); seq++ {
				k := r.IntN(keys)
				name := fmt.Sprintf("k%d", k)
				octx, cancel := context.WithTimeout(ctx, 20*time.Second)
				in := lincheck.Input{Block: k, Worker: w}
				call := h.Now()
				var err error
				var out lincheck.Output
				switch p := r.IntN(10); {
				case p < 4:
					in.Write, in.Value = true, uint64(w+1)<<40|seq
					_, err = e.mc.PutObject(octx, "lin", name, bytes.NewReader(lincheck.Encode(in.Value)), lincheck.BlockSize, minio.PutObjectOptions{})
				case p < 6:
					in.Write = true // value 0: absent
					err = e.mc.RemoveObject(octx, "lin", name, minio.RemoveObjectOptions{})
				default:
					var body []byte
					if o, gerr := e.mc.GetObject(octx, "lin", name, minio.GetObjectOptions{}); gerr != nil {
						err = gerr
					} else {
						body, err = io.ReadAll(o)
						o.Close()
					}
					switch {
					case code(err) == "NoSuchKey":
						err = nil // absent: 0
					case err == nil:
						if out.Value, err = lincheck.Decode(body); err != nil {
							errs <- fmt.Errorf("worker %d: GET %s: %w", w, name, err)
							cancel()
							return
						}
					}
				}
				ret := h.Now()
				cancel()
				op := porcupine.Operation{ClientId: w, Input: in, Output: out, Call: call, Return: ret}
				switch {
				case err == nil:
				case in.Write:
					// It may still take effect, at any time from now on.
					op.Return, op.Output = math.MaxInt64, lincheck.Output{Unknown: true}
				default:
					continue // a failed GET has no effect
				}
				h.Add(op)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lincheck.Check(t, h, 10)
}
