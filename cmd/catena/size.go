package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// errBadSize is returned by parseSize.
var errBadSize = errors.New("catena: bad size (want e.g. 4096, 64K, 16MiB, 1GiB)")

// sizeUnits are binary multipliers; "M", "MB" and "MiB" all mean 2^20,
// since chunk sizes are powers of two.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseSize parses a non-negative byte count with an optional binary unit.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: %q", errBadSize, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errBadSize, s)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("%w: %q", errBadSize, s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w: %q is too large", errBadSize, s)
	}
	return n * mult, nil
}

// formatSize renders n bytes for humans: "512 B", "64 MiB", "1.5 GiB".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("KMGTP"[exp]) + "iB"
}
