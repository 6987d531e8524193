using System.Globalization;
using ScottPlot;

namespace Konduit.Benchmarks;

/// <summary>
/// The report's charts, drawn by ScottPlot (SkiaSharp underneath), each written as SVG and PNG: the ratio of every
/// store to its raw baseline, absolute throughput on a log scale, and pickup latency by percentile.
/// </summary>
public static class Charts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private const int Width = 1100;

    /// <summary>One chart as written: its title (the Markdown's alt text) and file names (in the report folder).</summary>
    public sealed record Chart(string Title, string Svg, string Png);

    /// <summary>Writes every chart the results have data for as <c>{stem}-{name}.svg</c> and <c>.png</c> in <paramref name="directory"/>.</summary>
    public static IReadOnlyList<Chart> Write(string directory, string stem, Report.RunInfo run, LoadResults r)
    {
        var charts = new List<Chart>();
        void Save(string name, string title, Plot? plot, int height)
        {
            if (plot is null) return;
            var svg = $"{stem}-{name}.svg";
            var png = $"{stem}-{name}.png";
            plot.SaveSvg(Path.Combine(directory, svg), Width, height);
            plot.SavePng(Path.Combine(directory, png), Width, height);
            charts.Add(new Chart(title, svg, png));
        }
        var (ratios, ratiosHeight) = Ratios(run, r);
        Save("ratios", "each store's throughput as a fraction of its raw baseline (1 = as fast as the raw statements)", ratios, ratiosHeight);
        var (throughput, throughputHeight) = Throughput(run, r);
        Save("throughput", "operations per second by scenario and target (log scale)", throughput, throughputHeight);
        Save("latency", "pickup latency by percentile through the worker runtime, at the steady rate", Latency(r), 520);
        return charts;
    }

    /// <summary>Horizontal bars, one group per scenario (top to bottom in report order), one colour per store with a raw baseline.</summary>
    private static (Plot? Plot, int Height) Ratios(Report.RunInfo run, LoadResults r)
    {
        var rows = r.Throughput.Concat(r.Heartbeats).ToList();
        var stores = run.TargetNames.Where(run.Baselines.ContainsKey).ToList();
        var groups = rows.Select(x => x.Scenario).Distinct()
            .Select(s => (Scenario: s, Values: stores.Select(t => Report.Ratio(rows, run, s, t)).ToArray()))
            .Where(g => g.Values.Any(v => v is not null)).ToList();
        if (groups.Count == 0) return (null, 0);
        var plot = Grouped(groups, stores, v => v, "× raw baseline (same scenario, same run)");
        plot.Add.VerticalLine(1, 1.5f, Colors.Black.WithAlpha(0.6), LinePattern.Dashed);
        plot.Axes.SetLimitsX(0, Math.Max(1.2, groups.SelectMany(g => g.Values).Max(v => v ?? 0) * 1.1));
        plot.Title("Throughput ÷ raw baseline (raw SQL for the PostgreSQL stores, raw Redis Streams for Redis)");
        return (plot, Height(groups.Count, stores.Count));
    }

    /// <summary>Every target's operations/s (tasks, heartbeats or events), log10 scale.</summary>
    private static (Plot? Plot, int Height) Throughput(Report.RunInfo run, LoadResults r)
    {
        var rows = r.Throughput.Concat(r.Heartbeats).Concat(r.Events).ToList();
        if (rows.Count == 0) return (null, 0);
        var series = run.TargetNames.Concat(run.EventLogNames).Concat(rows.Select(x => x.Target)).Distinct().ToList();
        var groups = rows.Select(x => x.Scenario).Distinct()
            .Select(s => (Scenario: s, Values: series.Select(t => rows.FirstOrDefault(x => x.Scenario == s && x.Target == t) is { TasksPerSecond: > 0 } row ? (double?)row.TasksPerSecond : null).ToArray()))
            .ToList();
        var plot = Grouped(groups, series, v => Math.Log10(Math.Max(1, v)), "operations/s (log scale)");
        var top = Math.Ceiling(Math.Log10(Math.Max(10, rows.Max(x => x.TasksPerSecond))));
        var decades = Enumerable.Range(0, (int)top + 1).Select(d => (double)d).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(decades, [.. decades.Select(d => Math.Pow(10, d).ToString("N0", Inv))]);
        plot.Axes.SetLimitsX(0, top + 0.3);
        plot.Title("Operations per second by scenario and target");
        return (plot, Height(groups.Count, series.Count));
    }

    /// <summary>Pickup latency (ms, log scale) against the percentile, "nines" spaced: p50, p90, p99, p99.9, p99.99, then the max.</summary>
    private static Plot? Latency(LoadResults r)
    {
        var loaded = r.Steady.Where(s => s.Load == "loaded" && s.Curve.Count > 0).ToList();
        if (loaded.Count == 0) return null;
        var plot = NewPlot();
        var targets = loaded.Select(s => s.Target).Distinct().ToList();
        const double maxAt = 4.5; // where the max is drawn, past p99.99 (x = 4)
        static double Nines(double p) => -Math.Log10(Math.Max(1e-4, 1 - p / 100));
        foreach (var s in loaded)
        {
            var points = s.Curve.Where(c => c.Ms > 0).ToList();
            if (points.Count == 0) continue;
            var xs = points.Select(c => c.Percentile >= 100 ? maxAt : Nines(c.Percentile)).ToArray();
            var ys = points.Select(c => Math.Log10(c.Ms)).ToArray();
            var line = plot.Add.ScatterLine(xs, ys, Palette(targets.IndexOf(s.Target)));
            line.LineWidth = 2;
            line.LinePattern = s.Push ? LinePattern.Solid : LinePattern.Dashed;
            line.LegendText = $"{s.Target}, push {(s.Push ? "on" : "off")}, {s.Rate:N0}/s";
        }
        double[] nines = [0, 0.30103, 1, 2, 3, 4, maxAt];
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(nines, ["p0", "p50", "p90", "p99", "p99.9", "p99.99", "max"]);
        var low = Math.Floor(loaded.SelectMany(s => s.Curve).Where(c => c.Ms > 0).Select(c => Math.Log10(c.Ms)).DefaultIfEmpty(-1).Min());
        var high = Math.Ceiling(loaded.SelectMany(s => s.Curve).Where(c => c.Ms > 0).Select(c => Math.Log10(c.Ms)).DefaultIfEmpty(1).Max());
        var decades = Enumerable.Range((int)low, (int)(high - low) + 1).Select(d => (double)d).ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(decades, [.. decades.Select(d => Math.Pow(10, d).ToString(d < 0 ? "0.###" : "N0", Inv))]);
        plot.Axes.SetLimits(0, maxAt + 0.2, low, high);
        plot.XLabel("percentile");
        plot.YLabel("enqueue → handler start, ms (log scale)");
        plot.Title("Pickup latency by percentile at the steady rate (dashed: push wake-up off, workers poll)");
        plot.ShowLegend(Edge.Right); // beside the plot: inside it, it hides the low percentiles
        return plot;
    }

    /// <summary>Groups of horizontal bars; a missing value leaves its slot empty so colours keep their place.</summary>
    private static Plot Grouped(IReadOnlyList<(string Scenario, double?[] Values)> groups, IReadOnlyList<string> series, Func<double, double> transform, string xLabel)
    {
        var plot = NewPlot();
        var slots = series.Count + 1; // one empty slot between groups
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (var g = 0; g < groups.Count; g++)
        {
            // The first scenario at the top: positions count down.
            var groupTop = (groups.Count - 1 - g) * slots + series.Count - 1;
            for (var i = 0; i < series.Count; i++)
            {
                if (groups[g].Values[i] is not { } v) continue;
                bars.Add(new Bar
                {
                    Position = groupTop - i,
                    Value = transform(v),
                    FillColor = Palette(i),
                    LineWidth = 0,
                    Size = 0.85,
                    Orientation = Orientation.Horizontal,
                });
            }
            ticks.Add(new Tick(groupTop - (series.Count - 1) / 2.0, groups[g].Scenario, isMajor: true));
        }
        var plot_bars = plot.Add.Bars(bars);
        plot_bars.Horizontal = true;
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Grid.YAxisStyle.IsVisible = false;
        plot.Axes.SetLimitsY(-1, groups.Count * slots - 1);
        plot.XLabel(xLabel);
        // Beside the plot, not over it: the longest bars reach the right edge.
        plot.Legend.ManualItems.AddRange(series.Select((s, i) => new LegendItem { LabelText = s, FillColor = Palette(i) }));
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    private static Plot NewPlot()
    {
        var plot = new Plot();
        // DejaVu ships with Debian (fonts-dejavu-core, which scripts/services.d/tools.sh installs when missing).
        plot.Font.Set("DejaVu Sans");
        return plot;
    }

    private static int Height(int groups, int series) => Math.Max(320, 110 + groups * (series + 1) * 11);

    private static Color Palette(int i) => new ScottPlot.Palettes.Category10().GetColor(i);
}
