package main

import (
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart is a chart written by writeCharts.
type chart struct {
	title string
	file  string // name in the output directory
}

// series is one set of bars: a value per mode.
type series struct {
	name   string
	values []float64
}

// writeCharts writes the report's charts into dir as SVG files: throughput,
// read latency (p50 and p99) and loader calls, a bar per mode (none for a
// skipped mode).
func writeCharts(rep *report, dir string) ([]chart, error) {
	var names []string
	var ops, p50, p99, calls []float64
	for _, r := range rep.results {
		names = append(names, r.mode.name)
		ops = append(ops, r.opsPerSec())
		p50 = append(p50, float64(r.p50())/1e6)
		p99 = append(p99, float64(r.p99())/1e6)
		calls = append(calls, float64(r.loaderCalls))
	}
	charts := []struct {
		chart
		y      string
		series []series
	}{
		{chart{"Throughput", "throughput.svg"}, "operations per second", []series{{"ops/s", ops}}},
		{chart{"Read latency", "latency.svg"}, "milliseconds", []series{{"p50", p50}, {"p99", p99}}},
		{chart{"Loader calls", "loader-calls.svg"}, "calls of the database", []series{{"loader calls", calls}}},
	}
	out := make([]chart, 0, len(charts))
	for _, c := range charts {
		if err := barChart(filepath.Join(dir, c.file), c.title, c.y, names, c.series); err != nil {
			return nil, err
		}
		out = append(out, c.chart)
	}
	return out, nil
}

// barChart writes a bar chart of ss, grouped by name, to file (its
// extension chooses the format).
func barChart(file, title, y string, names []string, ss []series) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = y
	p.Y.Tick.Marker = plainTicks{}
	top := 0.0
	for _, s := range ss {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	p.Y.Min, p.Y.Max = 0, max(top*1.25, 1) // room for the legend
	width := vg.Points(36) / vg.Length(len(ss))
	for i, s := range ss {
		bars, err := plotter.NewBarChart(plotter.Values(s.values), width)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = width * (vg.Length(i) - vg.Length(len(ss)-1)/2)
		p.Add(bars)
		if len(ss) > 1 {
			p.Legend.Add(s.name, bars)
		}
	}
	p.Legend.Top = true
	p.NominalX(names...)
	return p.Save(6*vg.Inch, 3.5*vg.Inch, file)
}

// plainTicks are gonum's default ticks, labelled without trailing zeros
// ("50000", "2.5").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}
