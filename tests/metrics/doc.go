// Package metrics tests Catena's Prometheus metrics with a real
// Prometheus server (Debian's prometheus package) scraping a real
// `catena dev` process, checked by PromQL queries over
// what it scraped. A missing prometheus skips (fails under CI=true: .ci/run
// installs it).
package metrics
