//go:build race

package chunkstore

// engineRace: the race detector slows the model test tenfold; it runs
// fewer seeds then.
const engineRace = true
