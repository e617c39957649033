// Package clock is the one source of time for Catena's glue code (master,
// chunkserver, client): Now, timers, tickers, AfterFunc and a Sleep that
// returns early when its context ends. Production code takes a Clock (nil
// means Real) and never calls time.Now, time.Sleep, time.NewTimer or
// time.NewTicker itself, so tests can drive time with a Fake.
//
// The protocol cores (internal/chain, internal/meta) take no clock at all:
// they see time only as ticks and timestamps passed in by their callers.
//
// # Model
//
// A Clock reads the time and makes timers; Real is the system's, Fake
// moves only when a test calls Advance or Set, firing what became due in
// deadline order (BlockUntil waits for a goroutine to arm its timer, so a
// test never sleeps to let it). Callers take a Clock in their Config and
// pass it through clock.Or, so nil means Real.
//
// # Caller's duties
//
// Stop timers and tickers when done. A Fake's timers fire during the
// Advance call that reaches them; a ticker read too slowly drops ticks, as
// time.Ticker does.
package clock
