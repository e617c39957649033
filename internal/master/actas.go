package master

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/internal/meta"
)

// MDActAs is the gRPC metadata key with which an admin caller (root)
// makes a call as another POSIX identity, "UID:GID[:G1,G2,...]", as a
// root process may setuid: the S3 gateway holds an admin certificate and
// acts as the user each access key is tied to, so that the namespace's
// permissions hold for S3 requests as for that user's own certificate.
// Only an admin certificate may use it (a user's own certificate is
// never widened by it); on a cluster without TLS every caller is root
// and it is ignored. The name is a wire contract (internal/s3 sends it).
const MDActAs = "catena-act-as"

// actAs returns the identity an admin caller on ctx asks to act as, and
// whether it asks; a malformed value acts as meta.Nobody.
func actAs(ctx context.Context) (meta.User, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return meta.User{}, false
	}
	vs := md.Get(MDActAs)
	if len(vs) == 0 {
		return meta.User{}, false
	}
	u, ok := ParseActAs(vs[len(vs)-1])
	if !ok {
		return meta.Nobody, true
	}
	return u, true
}

// ParseActAs parses a MDActAs value.
func ParseActAs(s string) (meta.User, bool) {
	num := func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), err == nil
	}
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return meta.User{}, false
	}
	uid, ok1 := num(parts[0])
	gid, ok2 := num(parts[1])
	if !ok1 || !ok2 {
		return meta.User{}, false
	}
	u := meta.User{UID: uid, GID: gid, Root: uid == 0}
	if len(parts) == 3 && parts[2] != "" {
		for _, g := range strings.Split(parts[2], ",") {
			n, ok := num(g)
			if !ok {
				return meta.User{}, false
			}
			u.Groups = append(u.Groups, n)
		}
	}
	return u, true
}
