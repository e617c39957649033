package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp allows the page only its own files: no inline script, nothing from
// elsewhere (the console works offline and cannot be made to load more).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console: the page at /, its script and style under
// /static/, and JSON at /api/snapshot (a View) and /api/history (the
// samples, oldest first). Read-only: only GET and HEAD are served.
func (c *Console) Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.HandleFunc("GET /api/snapshot", c.serveSnapshot)
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct {
			IntervalSeconds float64  `json:"interval_s"`
			Samples         []Sample `json:"samples"`
		}{c.cfg.Interval.Seconds(), c.History()})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

func (c *Console) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	v := c.View()
	if v == nil {
		c.sample(r.Context()) // Run has not sampled yet
		if v = c.View(); v == nil {
			msg := "no snapshot yet"
			c.mu.Lock()
			if c.err != nil {
				msg = c.err.Error()
			}
			c.mu.Unlock()
			writeJSON(w, http.StatusServiceUnavailable, struct {
				Error string `json:"error"`
			}{msg})
			return
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
