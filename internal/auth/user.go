package auth

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
)

// User is the POSIX identity a client or reader certificate carries
// (catena admin cert issue --uid --gid --groups): the master checks the
// namespace's permissions against it. It is written into the
// certificate's subject as organization entries "uid=N", "gid=N" and
// "groups=N,N".
type User struct {
	UID, GID uint32
	Groups   []uint32
}

// organization encodes u as subject organization entries.
func (u User) organization() []string {
	out := []string{"uid=" + strconv.FormatUint(uint64(u.UID), 10), "gid=" + strconv.FormatUint(uint64(u.GID), 10)}
	if len(u.Groups) > 0 {
		var gs []string
		for _, g := range u.Groups {
			gs = append(gs, strconv.FormatUint(uint64(g), 10))
		}
		out = append(out, "groups="+strings.Join(gs, ","))
	}
	return out
}

// userOf parses the identity a certificate carries; named is false when
// it carries none.
func userOf(c *x509.Certificate) (u User, named bool, err error) {
	num := func(s string) (uint32, error) {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("certificate of %q: bad id %q", c.Subject.CommonName, s)
		}
		return uint32(n), nil
	}
	hasGID := false
	for _, o := range c.Subject.Organization {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch k {
		case "uid":
			if u.UID, err = num(v); err != nil {
				return User{}, false, err
			}
			named = true
		case "gid":
			if u.GID, err = num(v); err != nil {
				return User{}, false, err
			}
			hasGID = true
		case "groups":
			for _, g := range strings.Split(v, ",") {
				n, err := num(g)
				if err != nil {
					return User{}, false, err
				}
				u.Groups = append(u.Groups, n)
			}
		}
	}
	if named && !hasGID {
		u.GID = u.UID
	}
	return u, named, nil
}

// ParseUser parses "UID[:GID]" and a list of groups "N,N" (may be "").
func ParseUser(ids, groups string) (User, error) {
	var u User
	uid, gid, hasGID := strings.Cut(ids, ":")
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		return u, fmt.Errorf("bad uid %q", uid)
	}
	u.UID, u.GID = uint32(n), uint32(n)
	if hasGID {
		g, err := strconv.ParseUint(gid, 10, 32)
		if err != nil {
			return u, fmt.Errorf("bad gid %q", gid)
		}
		u.GID = uint32(g)
	}
	if groups != "" {
		for _, s := range strings.Split(groups, ",") {
			g, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return u, fmt.Errorf("bad group %q", s)
			}
			u.Groups = append(u.Groups, uint32(g))
		}
	}
	return u, nil
}

// PeerUser is the identity the caller's certificate names; named is
// false when it names none, or without TLS.
func PeerUser(ctx context.Context) (u User, named bool) {
	c := peerCert(ctx)
	if c == nil {
		return User{}, false
	}
	u, named, err := userOf(c)
	return u, named && err == nil
}
