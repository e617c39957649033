package decide

import (
	"errors"
	"fmt"
)

var (
	// ErrNoChunkservers: fewer live chunkservers than a chain needs. Place
	// returns it inside a *ShortageError that says how many.
	ErrNoChunkservers = errors.New("decide: not enough chunkservers")
	// ErrInvalid: an argument no caller should pass (a chain of fewer than
	// one replica).
	ErrInvalid = errors.New("decide: invalid argument")
)

// ShortageError is Place's answer when fewer candidates than replicas are
// offered. It wraps ErrNoChunkservers; the master reports Need and Alive
// to the client.
type ShortageError struct {
	Need  int // replicas the chain needs
	Alive int // live candidates offered
}

func (e *ShortageError) Error() string {
	return fmt.Sprintf("%v: need %d chunkservers, %d alive", ErrNoChunkservers, e.Need, e.Alive)
}

func (e *ShortageError) Unwrap() error { return ErrNoChunkservers }
