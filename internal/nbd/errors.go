package nbd

import "errors"

// Errors.
var (
	// ErrProtocol: the peer sent bytes that violate the NBD protocol; the
	// connection is closed.
	ErrProtocol = errors.New("nbd: protocol violation")
	// ErrUnknownExport: Exports.Open has no export of that name.
	ErrUnknownExport = errors.New("nbd: unknown export")
	// ErrExportDenied: Exports.Open refuses the caller that export (it
	// may not use it); the client hears NBD_REP_ERR_POLICY with why.
	ErrExportDenied = errors.New("nbd: export denied")
	// ErrServerClosed: Serve returns it after Close.
	ErrServerClosed = errors.New("nbd: server closed")
)
