package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestPipelineCopies(t *testing.T) {
	for _, size := range []int{0, 1, 999, 1000, 1001, 12345} {
		src := make([]byte, size)
		rng := rand.New(rand.NewChaCha8([32]byte{byte(size)}))
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		var dst bytes.Buffer
		pieces := 0
		n, err := pipeline(context.Background(), 1000, 3, readFull(iotest.HalfReader(bytes.NewReader(src))), func(p []byte) error {
			pieces++
			if len(p) == 0 || len(p) > 1000 {
				t.Fatalf("piece of %d bytes", len(p))
			}
			dst.Write(p)
			return nil
		})
		if err != nil || n != int64(size) || !bytes.Equal(dst.Bytes(), src) {
			t.Fatalf("size %d: n %d err %v equal %v", size, n, err, bytes.Equal(dst.Bytes(), src))
		}
		if want := (size + 999) / 1000; pieces != want {
			t.Fatalf("size %d: %d pieces; want %d", size, pieces, want)
		}
	}
}

func TestPipelineErrors(t *testing.T) {
	errRead := errors.New("read failed")
	r := io.MultiReader(bytes.NewReader(make([]byte, 2500)), iotest.ErrReader(errRead))
	n, err := pipeline(context.Background(), 1000, 2, readFull(r), func(p []byte) error { return nil })
	if !errors.Is(err, errRead) || n != 2500 {
		t.Fatalf("fill error: n %d err %v; want 2500, %v", n, err, errRead)
	}

	errWrite := errors.New("write failed")
	calls := 0
	n, err = pipeline(context.Background(), 10, 2, readFull(bytes.NewReader(make([]byte, 100))), func(p []byte) error {
		calls++
		if calls == 3 {
			return errWrite
		}
		return nil
	})
	if !errors.Is(err, errWrite) || n != 20 {
		t.Fatalf("drain error: n %d err %v; want 20, %v", n, err, errWrite)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = pipeline(ctx, 10, 2, readFull(bytes.NewReader(make([]byte, 100))), func(p []byte) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err %v", err)
	}
}
