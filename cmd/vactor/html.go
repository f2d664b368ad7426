package main

import (
	"bytes"
	"fmt"
	"html"
	"os"
	"strconv"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/components"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// latencyPoints are the quantiles the latency charts plot.
var latencyPoints = []struct {
	label string
	q     float64
}{
	{"p50", 0.5}, {"p75", 0.75}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}, {"max", 1},
}

// writeHTML writes the report as an HTML page: the table, then for each
// operation the throughput by concurrency, then for each case the
// latency distribution of every contender (all rounds merged). The page
// loads echarts from assets (go-echarts' CDN when empty).
func (r *report) writeHTML(path, assets string) error {
	page := components.NewPage()
	page.SetPageTitle("vactor bench")
	page.SetLayout(components.PageFlexLayout)
	if assets != "" {
		page.SetAssetsHost(assets)
	}
	s := r.Settings
	sub := fmt.Sprintf("%s, %s; %s keys, %d B values, %s runs, median of %d round(s)",
		r.Target, r.Server, groupDigits(float64(s.Keys)), s.ValueSize, s.Duration, s.Rounds)
	for _, op := range s.Ops {
		page.AddCharts(r.throughputChart(op, sub))
	}
	for _, c := range r.Cases {
		page.AddCharts(r.latencyChart(c, sub))
	}
	var buf bytes.Buffer
	if err := page.Render(&buf); err != nil {
		return err
	}
	var table strings.Builder
	r.printTable(&table)
	out := strings.Replace(buf.String(), "<body>",
		"<body>\n<pre style=\"font-size:13px;margin:16px\">"+html.EscapeString(table.String())+"</pre>", 1)
	return os.WriteFile(path, []byte(out), 0o644)
}

// throughputChart is a bar chart of the median ops/s of each contender
// at each concurrency level of op.
func (r *report) throughputChart(op, sub string) *charts.Bar {
	bar := charts.NewBar()
	bar.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: opName(op, r.Settings.GetRatio) + ": throughput by concurrency", Subtitle: sub}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "goroutines"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "ops/s"}),
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "420px"}),
	)
	var levels []string
	for _, l := range r.Settings.Concurrency {
		levels = append(levels, strconv.Itoa(l))
	}
	bar.SetXAxis(levels)
	for _, c := range r.Contenders {
		var data []opts.BarData
		for _, l := range r.Settings.Concurrency {
			v := 0.0
			if cc := r.entry(op, l, c.Name); cc != nil {
				v = float64(int64(cc.OpsPerSec))
			}
			data = append(data, opts.BarData{Value: v})
		}
		bar.AddSeries(c.Name, data)
	}
	return bar
}

// latencyChart plots the latency quantiles of every contender in case c,
// on a logarithmic axis.
func (r *report) latencyChart(c *caseReport, sub string) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{
			Title:    fmt.Sprintf("%s, %d goroutine(s): latency distribution", opName(c.Op, r.Settings.GetRatio), c.Concurrency),
			Subtitle: sub,
		}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "quantile"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "µs", Type: "log"}),
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "420px"}),
	)
	var xs []string
	for _, p := range latencyPoints {
		xs = append(xs, p.label)
	}
	line.SetXAxis(xs)
	for _, cc := range c.Results {
		if len(cc.Runs) == 0 {
			continue
		}
		var data []opts.LineData
		for _, p := range latencyPoints {
			v := us(cc.Latency.quantile(p.q))
			data = append(data, opts.LineData{Value: strconv.FormatFloat(v, 'f', 1, 64)})
		}
		line.AddSeries(cc.Contender, data)
	}
	return line
}
