package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is what `catena bench` writes as JSON: the run's parameters and
// its results.
type Report struct {
	Started     time.Time `json:"started"`
	Host        string    `json:"host"`
	Cores       int       `json:"cores"`
	GoVersion   string    `json:"go_version"`
	Target      string    `json:"target"` // master address, or "embedded:<dir>"
	Replication int       `json:"replication"`
	ChunkSize   int64     `json:"chunk_size"`
	Size        int64     `json:"size"`
	Block       int       `json:"block"`
	Results     []Result  `json:"results"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	return nil
}

// WriteTable writes r's results as an aligned text table.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tconc\tblock\tbytes\tseconds\tMB/s\tops/s\tp50\tp99\tmax\t\n")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2f\t%s\t%.1f\t%s\t%s\t%s\t\n",
			x.Workload, x.Concurrency, ByteSize(int64(x.Block)), ByteSize(x.Bytes), x.Seconds,
			orDash(x.MBps, "%.1f"), x.OpsPerSec, usStr(x.P50us), usStr(x.P99us), usStr(x.MaxUs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.Note != "" {
			if _, err := fmt.Fprintf(w, "  %s: %s\n", x.Workload, x.Note); err != nil {
				return err
			}
		}
	}
	return nil
}

func orDash(v float64, f string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(f, v)
}

func usStr(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1000)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// ByteSize formats n with a binary unit (4KiB, 8MiB, 1GiB, 1.5GiB).
func ByteSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d%s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}
