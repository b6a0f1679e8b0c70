//! `tollgate-load plot`: result files of any mode drawn as a latency-by-
//! percentile chart and a throughput-over-time chart, several runs overlaid,
//! into one SVG or an HTML page (both charts inline, and a table of the runs).
//!
//! Drawn with `plotters`' SVG backend only: text goes into the SVG as text,
//! so nothing depends on system fonts. A `--direct` run inside a `pg` result
//! becomes a second series. Results without a curve or per-second counts
//! (written by older versions) are drawn through their percentile summary
//! (min, p50, p90, p99, p99.9, max) and left out of the throughput chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use plotters::prelude::*;
use serde_json::Value;

/// Result files are small; anything larger is not one.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The percentile axis ends at 99.9999 % (1 in 10^6); the maximum is drawn there.
const MAX_X: f64 = 1e6;
const WIDTH: u32 = 960;
const HEIGHT: u32 = 440;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Result files written by `tollgate-load ... --json`.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Output file: `.html` (charts and a table) or `.svg` (both charts).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Title of the report.
    #[arg(long, default_value = "tollgate-load report")]
    pub title: String,
}

/// One line on the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// (percentile 0–100, latency µs).
    pub curve: Vec<(f64, u64)>,
    pub per_second: Vec<u64>,
    pub req_per_s: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub errors: u64,
    pub what: String,
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The series of one result object (and of its `direct` run, if any).
pub fn series_of(label: &str, v: &Value) -> anyhow::Result<Vec<Series>> {
    if str_at(v, "tool") != "tollgate-load" {
        bail!("not a tollgate-load result (no \"tool\": \"tollgate-load\")");
    }
    let mut curve: Vec<(f64, u64)> = match v.get("latency_curve_us").and_then(Value::as_array) {
        Some(points) => points
            .iter()
            .filter_map(|p| Some((p.get("percentile")?.as_f64()?, p.get("us")?.as_u64()?)))
            .collect(),
        None => [
            (0.0, "min"),
            (50.0, "p50"),
            (90.0, "p90"),
            (99.0, "p99"),
            (99.9, "p999"),
            (100.0, "max"),
        ]
        .iter()
        .map(|&(p, key)| (p, u64_at(v, &["latency_us", key])))
        .collect(),
    };
    curve.retain(|&(p, _)| (0.0..=100.0).contains(&p));
    let per_second = v
        .get("per_second")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let path = str_at(v, "path");
    let mut what = format!("{} {}", str_at(v, "mode"), str_at(v, "workload"));
    if let Some(protocol) = v.get("protocol").and_then(Value::as_str) {
        let _ = write!(what, " ({protocol})");
    }
    let mut out = vec![Series {
        label: if path.is_empty() || path == "gateway" && v["direct"].is_null() {
            label.to_owned()
        } else {
            format!("{label} {path}")
        },
        curve,
        per_second,
        req_per_s: v.get("req_per_s").and_then(Value::as_f64).unwrap_or(0.0),
        p50: u64_at(v, &["latency_us", "p50"]),
        p99: u64_at(v, &["latency_us", "p99"]),
        p999: u64_at(v, &["latency_us", "p999"]),
        errors: u64_at(v, &["errors_total"]),
        what: what.trim().to_owned(),
    }];
    if let Some(direct) = v.get("direct").filter(|d| d.is_object()) {
        out.extend(series_of(label, direct)?);
    }
    Ok(out)
}

/// Reads every result file; the label is the file name without `.json`.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<Series>> {
    let mut all = Vec::new();
    for path in paths {
        let len = std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        if len > MAX_FILE_BYTES {
            bail!(
                "{}: {len} bytes is too large for a result file",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let value: Value = serde_json::from_str(text.trim())
            .with_context(|| format!("{}: not JSON", path.display()))?;
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        all.extend(series_of(&label, &value).with_context(|| format!("{}", path.display()))?);
    }
    Ok(all)
}

fn x_of(percentile: f64) -> f64 {
    let tail = 1.0 - percentile / 100.0;
    if tail <= 1.0 / MAX_X {
        MAX_X
    } else {
        1.0 / tail
    }
}

fn x_label(x: &f64) -> String {
    if *x >= MAX_X * 0.999 {
        return "max".to_owned();
    }
    let p = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn draw_err<E: std::error::Error + Send + Sync>(err: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing: {err}")
}

fn latency_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let lo = series
        .iter()
        .flat_map(|s| s.curve.iter().map(|p| p.1))
        .min()
        .unwrap_or(1)
        .max(1);
    let hi = series
        .iter()
        .flat_map(|s| s.curve.iter().map(|p| p.1))
        .max()
        .unwrap_or(10)
        .max(lo * 10);
    let mut chart = ChartBuilder::on(area)
        .caption("Latency by percentile", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1f64..MAX_X).log_scale(),
            (lo as f64 / 1.5..hi as f64 * 1.5).log_scale(),
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(draw_err)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(s.curve.len());
        for &(p, us) in &s.curve {
            let point = (x_of(p), us.max(1) as f64);
            // 99.9999 % and 100 % share the last x: keep the larger (the max).
            match points.last_mut() {
                Some(last) if last.0 >= point.0 => last.1 = last.1.max(point.1),
                _ => points.push(point),
            }
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

fn throughput_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let seconds = series
        .iter()
        .map(|s| s.per_second.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let top = series
        .iter()
        .flat_map(|s| s.per_second.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(area)
        .caption("Throughput over time", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds as f64, 0f64..top as f64 * 1.1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("second of the measured window")
        .y_desc("operations/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(draw_err)?;
    for (i, s) in series.iter().enumerate() {
        if s.per_second.is_empty() {
            continue;
        }
        let color = Palette99::pick(i).to_rgba();
        // Each count is drawn at the middle of its second.
        let points = s
            .per_second
            .iter()
            .enumerate()
            .map(|(sec, &n)| (sec as f64 + 0.5, n as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Both charts, one above the other, as one SVG document.
pub fn svg(series: &[Series]) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT * 2)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (top, bottom) = root.split_vertically(HEIGHT);
        latency_chart(&top, series)?;
        throughput_chart(&bottom, series)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A self-contained page: the title, a table of the runs, the charts.
pub fn html(title: &str, series: &[Series]) -> anyhow::Result<String> {
    let chart = svg(series)?;
    let mut out = String::new();
    let title = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:4px 10px;text-align:right}}\
         td:first-child,th:first-child,td:nth-child(2){{text-align:left}}</style></head>\n\
         <body><h1>{title}</h1>\n<table><tr><th>run</th><th>what</th><th>ops/s</th>\
         <th>p50 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>errors</th></tr>\n"
    );
    for s in series {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.label),
            escape(&s.what),
            s.req_per_s,
            s.p50,
            s.p99,
            s.p999,
            s.errors
        );
    }
    let _ = write!(out, "</table>\n<div>{chart}</div>\n</body></html>\n");
    Ok(out)
}

/// The command: read, draw, write the file its extension names.
pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let series = load(&args.results)?;
    let ext = args
        .output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let document = match ext.as_deref() {
        Some("svg") => svg(&series)?,
        Some("html" | "htm") => html(&args.title, &series)?,
        _ => bail!(
            "{}: the output must end in .html or .svg",
            args.output.display()
        ),
    };
    write_file(&args.output, &document)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentile_axis_labels_read_as_percentiles() {
        assert_eq!(x_label(&1.0), "0%");
        assert_eq!(x_label(&10.0), "90%");
        assert_eq!(x_label(&1000.0), "99.9%");
        assert_eq!(x_label(&MAX_X), "max");
        assert!((x_of(99.0) - 100.0).abs() < 1e-6);
        assert_eq!(x_of(100.0), MAX_X);
    }

    #[test]
    fn tcp_results_become_a_coarse_curve_and_direct_runs_a_second_series() {
        let tcp = json!({"tool": "tollgate-load", "mode": "tcp ping",
            "latency_us": {"min": 5, "p50": 10, "p90": 20, "p99": 40, "p999": 80, "max": 100},
            "req_per_s": 10.0, "errors_total": 0});
        let s = series_of("a", &tcp).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].curve.first(), Some(&(0.0, 5)));
        assert_eq!(s[0].curve.last(), Some(&(100.0, 100)));
        assert!(s[0].per_second.is_empty());
        let pg = json!({"tool": "tollgate-load", "mode": "pg", "workload": "select1",
            "path": "gateway", "latency_curve_us": [{"percentile": 50.0, "us": 7}],
            "per_second": [3, 4], "latency_us": {"p50": 7},
            "direct": {"tool": "tollgate-load", "mode": "pg", "path": "direct",
                       "latency_curve_us": [], "per_second": [9], "direct": null}});
        let s = series_of("run", &pg).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label, "run gateway");
        assert_eq!(s[1].label, "run direct");
        assert_eq!(s[0].per_second, vec![3, 4]);
        assert!(series_of("x", &json!({"tool": "other"})).is_err());
    }

    #[test]
    fn html_escapes_labels() {
        let s = Series {
            label: "<script>".to_owned(),
            curve: vec![(50.0, 10), (100.0, 20)],
            per_second: vec![1, 2],
            req_per_s: 1.0,
            p50: 10,
            p99: 20,
            p999: 20,
            errors: 0,
            what: "pg select1".to_owned(),
        };
        let page = html("a & b", &[s]).unwrap();
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<title>a &amp; b</title>"));
    }
}
