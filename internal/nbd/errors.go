package nbd

import "errors"

// Errors.
var (
	// ErrProtocol: the peer sent bytes that violate the NBD protocol; the
	// connection is closed.
	ErrProtocol = errors.New("nbd: protocol violation")
	// ErrUnknownExport: Exports.Open has no export of that name.
	ErrUnknownExport = errors.New("nbd: unknown export")
	// ErrServerClosed: Serve returns it after Close.
	ErrServerClosed = errors.New("nbd: server closed")
)
