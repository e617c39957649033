package auth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Rotating the cluster CA, with the cluster running:
//
//  1. catena admin ca init NEW;
//  2. every TLS directory trusts NEW as well (TrustCA; each process takes
//     the new ca.crt at its next handshake);
//  3. every directory gets a certificate issued by NEW (Issue keeps the
//     CAs a directory already trusts);
//  4. every directory stops trusting OLD (UntrustCA).
//
// At every step each process trusts the CA of every certificate in use.

// TrustCA adds the CA certificates in ca (a PEM file, or a CA directory)
// to those the TLS directory dir trusts (its ca.crt).
func TrustCA(dir, ca string) error {
	add, err := readCerts(ca)
	if err != nil {
		return err
	}
	have, err := readCerts(dir)
	if err != nil {
		return err
	}
	return writeCerts(filepath.Join(dir, CACertFile), mergeCerts(have, add))
}

// UntrustCA removes the CA certificates in ca from those dir trusts. It
// refuses when dir's own certificate would no longer verify (the process
// could prove itself to nobody) or no CA would remain.
func UntrustCA(dir, ca string) error {
	drop, err := readCerts(ca)
	if err != nil {
		return err
	}
	have, err := readCerts(dir)
	if err != nil {
		return err
	}
	keep := slices.DeleteFunc(slices.Clone(have), func(c *x509.Certificate) bool {
		return slices.ContainsFunc(drop, func(d *x509.Certificate) bool { return bytes.Equal(c.Raw, d.Raw) })
	})
	if len(keep) == len(have) {
		return fmt.Errorf("auth: %s does not trust that CA", dir)
	}
	pool := x509.NewCertPool()
	for _, c := range keep {
		pool.AddCert(c)
	}
	leafPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return fmt.Errorf("auth: TLS directory %s: %w", dir, err)
	}
	b, _ := pem.Decode(leafPEM)
	if b == nil {
		return fmt.Errorf("auth: %s: no certificate", filepath.Join(dir, CertFile))
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("auth: %s's own certificate was issued by that CA: issue it a new one first", dir)
	}
	if len(keep) == 0 { // (its own certificate verified against nothing)
		return fmt.Errorf("auth: %s would trust no CA", dir)
	}
	return writeCerts(filepath.Join(dir, CACertFile), keep)
}

// readCerts reads the certificates of a PEM file, or of a directory's
// ca.crt.
func readCerts(path string) ([]*x509.Certificate, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, CACertFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: %s: %w", path, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("auth: %s: %q is not a CA certificate", path, c.Subject.CommonName)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("auth: %s: no CA certificate", path)
	}
	return out, nil
}

// mergeCerts is have with the certificates of add it lacks appended.
func mergeCerts(have, add []*x509.Certificate) []*x509.Certificate {
	out := slices.Clone(have)
	for _, c := range add {
		if !slices.ContainsFunc(out, func(h *x509.Certificate) bool { return bytes.Equal(h.Raw, c.Raw) }) {
			out = append(out, c)
		}
	}
	return out
}

// writeCerts replaces path (atomically) with certs in PEM.
func writeCerts(path string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("auth: no certificate to write")
	}
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
