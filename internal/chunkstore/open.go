package chunkstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// Open opens the store of dir on fsys (see OpenConfig).
func Open(fsys FS, dir string) (*Store, error) { return OpenConfig(Config{FS: fsys, Dir: dir}) }

// OpenConfig opens the chunk engine in cfg.Dir/engine, creating it if need
// be and recovering it after a crash, then converts the replicas an older
// chunkserver kept one file each in cfg.Dir/chunks (formats 2 and 3) into
// it: a chunkserver upgraded in place keeps every replica, its epoch,
// chain, applied (epoch, seq), its bad blocks and its ahead blocks. Each
// replica is synced into the engine before its old file is removed, so a
// crash during the conversion loses nothing: the next Open converts the
// rest (and again any replica both still have).
//
// Only one Store may be open on a directory at a time.
func OpenConfig(cfg Config) (*Store, error) {
	s, err := openEngine(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.convertLegacy(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// convertLegacy moves every format-2/3 replica file of cfg.Dir/chunks into
// the engine, then removes the emptied directory.
func (e *Store) convertLegacy(cfg Config) error {
	chunks := path.Join(cfg.Dir, "chunks")
	if _, err := cfg.FS.Stat(chunks); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("chunkstore: convert: %w", err)
	}
	old, err := openFileStoreConfig(cfg)
	if err != nil {
		return fmt.Errorf("chunkstore: convert: %w", err)
	}
	defer old.Close()
	metas := old.List()
	for _, m := range metas {
		if err := e.convertOne(old, m); err != nil {
			return fmt.Errorf("chunkstore: convert replica %016x: %w", uint64(m.Handle), err)
		}
	}
	if len(metas) > 0 {
		e.log.Info("format-3 replicas converted into the chunk engine", "replicas", len(metas))
	}
	if names, err := cfg.FS.ReadDir(chunks); err == nil && len(names) == 0 {
		if err := cfg.FS.Remove(chunks); err == nil {
			if err := cfg.FS.SyncDir(cfg.Dir); err != nil {
				return fmt.Errorf("chunkstore: convert: %w", err)
			}
		}
	}
	return nil
}

// convertOne copies replica m of old into the engine, durably, then
// removes it from old. An engine copy left by an interrupted conversion is
// replaced (the old file is only removed after a complete copy synced).
func (e *Store) convertOne(old *fileStore, m Meta) error {
	src, err := old.Get(m.Handle)
	if err != nil {
		return err
	}
	if _, err := e.Get(m.Handle); err == nil {
		if err := e.Delete(m.Handle); err != nil {
			return err
		}
	}
	m = src.Meta()
	dst, err := e.Create(m)
	if err != nil {
		return err
	}
	ahead := make(map[int64]bool)
	for _, b := range src.AheadBlocks() {
		ahead[b] = true
	}
	buf := make([]byte, BlockSize)
	copyBlock := func(b int64, record bool) error {
		off := b * BlockSize
		n := min(int64(BlockSize), m.ChunkSize-off)
		p := buf[:n]
		if _, err := src.ReadAt(p, off); errors.Is(err, ErrCorrupt) {
			return dst.Invalidate(off, n)
		} else if err != nil {
			return err
		}
		if isZero(p) {
			if record {
				return dst.Zero(off, n) // a record of the change, which takes no space
			}
			return nil // a hole stays a hole
		}
		return dst.WriteAt(p, off)
	}
	nblocks := (m.ChunkSize + BlockSize - 1) / BlockSize
	for b := range nblocks {
		if !ahead[b] {
			if err := copyBlock(b, false); err != nil {
				return err
			}
		}
	}
	dst.SetAppliedAt(m.AppliedEpoch, m.AppliedSeq)
	// Blocks written after the old replica's last sync are newer than its
	// applied seq says: written after the SetAppliedAt, they are not
	// covered by it, so recovery lists them as ahead again; they are ahead
	// here too.
	var list []int64
	for b := range nblocks {
		if ahead[b] {
			if err := copyBlock(b, true); err != nil {
				return err
			}
			list = append(list, b)
		}
	}
	if err := e.Sync(); err != nil {
		return err
	}
	dst.ahead = list
	return old.Delete(m.Handle)
}
