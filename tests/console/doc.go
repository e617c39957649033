// Package console tests the web console a master serves (internal/console,
// master.Config.HTTPAddr) end to end: against an in-process cluster, the
// page is loaded in headless Chromium (Debian's chromium, driven with
// chromedp) and must load with no console error or uncaught exception,
// show every chunkserver alive, then a killed one dead within seconds; a
// full-page screenshot is kept as a test artifact ($CATENA_ARTIFACTS, or
// go test -artifacts). A following master's console serves the leader's
// snapshot, and follows a new leader after a failover.
//
// Without chromium the browser test skips with its reason (fails under
// CI=true; .ci/run installs it).
package console
