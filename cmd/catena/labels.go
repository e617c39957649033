package main

import (
	"errors"
	"fmt"
	"strings"
)

// errBadLabel is returned by parseLabels.
var errBadLabel = errors.New("catena: bad label (want KEY=VALUE)")

// parseLabels turns KEY=VALUE items into a map; nil when there are none.
func parseLabels(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q", errBadLabel, it)
		}
		out[k] = v
	}
	return out, nil
}
