package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report gathers the runs of vactor bench and summarizes them per case
// (operation and concurrency) and contender. Its JSON form is what -json
// writes.
type report struct {
	Target     string            `json:"target"`
	Server     string            `json:"server"`
	Settings   reportSettings    `json:"settings"`
	Contenders []reportContender `json:"contenders"`
	Cases      []*caseReport     `json:"cases"`
}

type reportSettings struct {
	Ops         []string `json:"ops"`
	GetRatio    float64  `json:"get_ratio"`
	ValueSize   int      `json:"value_size"`
	Keys        int      `json:"keys"`
	Concurrency []int    `json:"concurrency"`
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Rounds      int      `json:"rounds"`
	Prefix      string   `json:"keyspace_prefix"`
}

type reportContender struct {
	Name string `json:"name"`
	Peer bool   `json:"peer"`
	Desc string `json:"description"`
}

// caseReport is one operation at one concurrency level.
type caseReport struct {
	Op          string           `json:"op"`
	Concurrency int              `json:"concurrency"`
	Results     []*contenderCase `json:"results"`
}

// contenderCase is one contender's runs of a case and their medians.
type contenderCase struct {
	Contender string      `json:"contender"`
	Peer      bool        `json:"peer"`
	Runs      []runResult `json:"runs"`
	Failures  []string    `json:"failures,omitempty"`
	// Medians over the runs.
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	CPUusPerOp  float64 `json:"cpu_us_per_op"`
	// ServerUsPerOp is the server's CPU time per operation; -1 when not
	// measured (cluster mode).
	ServerUsPerOp float64 `json:"server_cpu_us_per_op"`
	Errors        uint64  `json:"errors"`
	// RatioToBestPeer is OpsPerSec over the best peer's OpsPerSec in this
	// case (0 when no peer ran).
	RatioToBestPeer float64 `json:"ratio_to_best_peer"`
	// Latency merges the latency histograms of every run.
	Latency latencies `json:"-"`
}

func newReport(t *target, server string, s benchSettings) *report {
	r := &report{
		Target: t.describe(),
		Server: server,
		Settings: reportSettings{
			Ops: s.ops, GetRatio: s.ratio, ValueSize: s.valueSize, Keys: s.keys, Concurrency: s.levels,
			Duration: s.duration.String(), Warmup: s.warmup.String(), Rounds: s.rounds, Prefix: s.prefix,
		},
	}
	for _, c := range s.contenders {
		r.Contenders = append(r.Contenders, reportContender{c.name, c.peer, c.desc})
	}
	for _, op := range s.ops {
		for _, l := range s.levels {
			cr := &caseReport{Op: op, Concurrency: l}
			for _, c := range s.contenders {
				cr.Results = append(cr.Results, &contenderCase{Contender: c.name, Peer: c.peer})
			}
			r.Cases = append(r.Cases, cr)
		}
	}
	return r
}

// entry returns the record of contender in case (op, level).
func (r *report) entry(op string, level int, contender string) *contenderCase {
	for _, c := range r.Cases {
		if c.Op != op || c.Concurrency != level {
			continue
		}
		for _, cc := range c.Results {
			if cc.Contender == contender {
				return cc
			}
		}
	}
	return nil
}

// add records a worker's result.
func (r *report) add(res runResult) {
	if cc := r.entry(res.Op, res.Concurrency, res.Contender); cc != nil {
		cc.Runs = append(cc.Runs, res)
	}
}

// fail records a run that produced no result.
func (r *report) fail(op string, level int, contender, why string) {
	if cc := r.entry(op, level, contender); cc != nil {
		cc.Failures = append(cc.Failures, why)
	}
}

// summarize computes the medians and ratios.
func (r *report) summarize() {
	for _, c := range r.Cases {
		best := 0.0
		for _, cc := range c.Results {
			cc.summarize()
			if cc.Peer && len(cc.Runs) > 0 {
				best = max(best, cc.OpsPerSec)
			}
		}
		for _, cc := range c.Results {
			if best > 0 && len(cc.Runs) > 0 {
				cc.RatioToBestPeer = cc.OpsPerSec / best
			}
		}
	}
}

func (cc *contenderCase) summarize() {
	if len(cc.Runs) == 0 {
		return
	}
	var ops, p50, p99, p999, allocs, bytes, cpu, srv []float64
	cc.Latency = latencies{}
	cc.Errors = 0
	for _, r := range cc.Runs {
		ops = append(ops, r.OpsPerSec)
		p50 = append(p50, us(r.Latency.quantile(0.5)))
		p99 = append(p99, us(r.Latency.quantile(0.99)))
		p999 = append(p999, us(r.Latency.quantile(0.999)))
		n := float64(max(r.Ops, 1))
		allocs = append(allocs, float64(r.Mallocs)/n)
		bytes = append(bytes, float64(r.AllocBytes)/n)
		cpu = append(cpu, r.CPU*1e6/n)
		if r.ServerCPU >= 0 {
			srv = append(srv, r.ServerCPU*1e6/n)
		}
		cc.Errors += r.Errors
		cc.Latency = cc.Latency.add(r.Latency)
	}
	cc.OpsPerSec, cc.P50us, cc.P99us, cc.P999us = median(ops), median(p50), median(p99), median(p999)
	cc.AllocsPerOp, cc.BytesPerOp, cc.CPUusPerOp = median(allocs), median(bytes), median(cpu)
	cc.ServerUsPerOp = -1
	if len(srv) == len(cc.Runs) {
		cc.ServerUsPerOp = median(srv)
	}
}

// median returns the median of xs (the mean of the middle two for an
// even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// micros formats a latency for progress lines: 3 or 4 significant
// digits, in µs or ms.
func micros(d time.Duration) string { return roundDur(d).String() }

// groupDigits formats x rounded to an integer with thousands separators.
func groupDigits(x float64) string {
	s := strconv.FormatFloat(x, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// latencyText formats microseconds with 3 significant digits or so.
func latencyText(v float64) string {
	switch {
	case v >= 1000:
		return groupDigits(v)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// opName is the display name of an operation.
func opName(op string, ratio float64) string {
	switch op {
	case opGet:
		return "GET"
	case opSet:
		return "SET"
	}
	return fmt.Sprintf("mixed %.0f%% GET / %.0f%% SET", ratio*100, (1-ratio)*100)
}

// printTable writes the summary table.
func (r *report) printTable(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "\nvactor bench: %s, %s\n", r.Target, r.Server)
	fmt.Fprintf(w, "%s keys, %d-byte values, %s per run after %s warm-up, one process per contender; median of %d round(s)\n",
		groupDigits(float64(s.Keys)), s.ValueSize, s.Duration, s.Warmup, s.Rounds)
	for _, c := range r.Cases {
		fmt.Fprintf(w, "\n%s, %d goroutine(s)\n", opName(c.Op, s.GetRatio), c.Concurrency)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "contender\tops/s\tp50 µs\tp99 µs\tp99.9 µs\tallocs/op\tB/op\tCPU µs/op\tsrv µs/op\t÷ best peer\t")
		for _, cc := range c.Results {
			if len(cc.Runs) == 0 {
				why := "no result"
				if len(cc.Failures) > 0 {
					why = "failed: " + cc.Failures[0]
				}
				fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\n", cc.Contender, why)
				continue
			}
			ratio := "-"
			if cc.RatioToBestPeer > 0 {
				ratio = strconv.FormatFloat(cc.RatioToBestPeer, 'f', 2, 64)
			}
			note := ""
			if cc.Errors > 0 {
				note = fmt.Sprintf("  (%d errors)", cc.Errors)
			}
			srv := "-"
			if cc.ServerUsPerOp >= 0 {
				srv = strconv.FormatFloat(cc.ServerUsPerOp, 'f', 2, 64)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.0f\t%.2f\t%s\t%s\t%s\n", cc.Contender, groupDigits(cc.OpsPerSec),
				latencyText(cc.P50us), latencyText(cc.P99us), latencyText(cc.P999us),
				cc.AllocsPerOp, cc.BytesPerOp, cc.CPUusPerOp, srv, ratio, note)
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(w, "\nCPU µs/op: the client process's CPU time per operation; srv µs/op: the server's (INFO cpu; standalone only).")
	if peers := r.peerNames(); len(peers) > 0 {
		fmt.Fprintln(w, "÷ best peer: ops/s over the best of", strings.Join(peers, ", "), "in the same case.")
	} else {
		fmt.Fprintln(w, "÷ best peer: none ran (-contenders names no peer).")
	}
}

// peerNames lists the peers that ran.
func (r *report) peerNames() []string {
	var names []string
	for _, c := range r.Contenders {
		if c.Peer {
			names = append(names, c.Name)
		}
	}
	return names
}

// writeJSON writes the report as JSON to path, or to stdout for "-".
func (r *report) writeJSON(path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
