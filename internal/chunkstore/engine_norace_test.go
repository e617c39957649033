//go:build !race

package chunkstore

const engineRace = false
