//! `--plot FILE.svg`: the latency percentile curve (per burst and per packet, log
//! latency against "nines", like HdrHistogram's plotter) next to the throughput of
//! each repetition with its median. Drawn with `plotters`' SVG backend (no fonts or
//! system libraries needed).
//!
//! With `--history`, a second row draws the trend over the recorded runs in the manner
//! of FD.io CSIT's trending pages: one point per run labelled by its commit (Mpps
//! median with min-max bars; instructions per packet), a trend line (the median of
//! the previous `TREND_WINDOW` runs), and anomalies against it marked red (regression
//! beyond the gate's allowance) or green (progression).

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Highest percentile drawn: 99.9999% (six nines).
const MAX_NINES: f64 = 6.0;
/// Runs whose median forms the trend a point is judged against.
pub const TREND_WINDOW: usize = 5;

/// The trend row: history points and the allowances that make an anomaly.
pub struct Trend<'a> {
    pub points: &'a [super::history::Point],
    /// Mpps drop (percent) that marks a regression.
    pub wall_pct: f64,
    /// Instructions-per-packet growth (percent) that marks a regression.
    pub instr_pct: f64,
}

/// The trend value before each point: the median of up to `TREND_WINDOW` previous values.
pub fn trend_of(values: &[f64]) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| {
            let from = i.saturating_sub(TREND_WINDOW);
            (i > 0).then(|| super::verdict::Spread::of(&values[from..i]).median)
        })
        .collect()
}

/// -1 regression, 0 normal, +1 progression, for a value against its trend (`higher_better`
/// says which way is good; `pct` is the allowance).
pub fn anomaly(value: f64, trend: Option<f64>, pct: f64, higher_better: bool) -> i8 {
    let Some(t) = trend.filter(|t| *t > 0.0) else { return 0 };
    let change = (value - t) / t * 100.0;
    let change = if higher_better { change } else { -change };
    if change < -pct {
        -1
    } else if change > pct {
        1
    } else {
        0
    }
}

/// (nines, microseconds) points of a histogram's percentile curve.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| (-(1.0 - v.quantile_iterated_to()).log10(), v.value_iterated_to().max(1) as f64 / 1e3))
        .filter(|(x, _)| *x <= MAX_NINES)
        .collect()
}

fn nines_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

/// The whole picture as an SVG document.
pub fn svg(
    title: &str,
    per_burst: &Histogram<u64>,
    per_packet: &Histogram<u64>,
    mpps: &[f64],
    trend: Option<&Trend<'_>>,
) -> Result<String, String> {
    let mut out = String::new();
    draw(&mut out, title, per_burst, per_packet, mpps, trend).map_err(|e| format!("drawing the plot: {e}"))?;
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(
    out: &mut String,
    title: &str,
    per_burst: &Histogram<u64>,
    per_packet: &Histogram<u64>,
    mpps: &[f64],
    trend: Option<&Trend<'_>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let height = if trend.is_some() { 900 } else { 460 };
    let root = SVGBackend::with_string(out, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (top, bottom) = root.split_vertically(if trend.is_some() { 430 } else { height });
    if let Some(t) = trend {
        let (l, r) = bottom.split_horizontally(550);
        let mpps_pts: Vec<f64> = t.points.iter().map(|p| p.mpps_median).collect();
        let bars: Vec<(f64, f64)> = t.points.iter().map(|p| (p.mpps_min, p.mpps_max)).collect();
        draw_trend(&l, "Mpps (median, min-max) per run", t, &mpps_pts, Some(&bars), t.wall_pct, true)?;
        let instr: Vec<(usize, f64)> =
            t.points.iter().enumerate().filter_map(|(i, p)| p.instructions_per_packet.map(|x| (i, x))).collect();
        if instr.is_empty() {
            r.draw(&Text::new(
                "no instructions per packet recorded (--metric instructions)",
                (30, 200),
                ("sans-serif", 14),
            ))?;
        } else {
            let vals: Vec<f64> = instr.iter().map(|p| p.1).collect();
            let sub: Vec<super::history::Point> = instr.iter().map(|(i, _)| t.points[*i].clone()).collect();
            let st = Trend { points: &sub, wall_pct: t.wall_pct, instr_pct: t.instr_pct };
            draw_trend(&r, "instructions per packet per run", &st, &vals, None, t.instr_pct, false)?;
        }
    }
    let (left, right) = top.split_horizontally(620);

    let burst = curve(per_burst);
    let packet = curve(per_packet);
    let all = burst.iter().chain(&packet);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max).ceil().min(MAX_NINES);
    let y_max = all.clone().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let y_min = all.map(|p| p.1).fold(f64::INFINITY, f64::min).min(y_max / 10.0).max(1e-3) / 1.5;
    let mut lat = ChartBuilder::on(&left)
        .caption("latency by percentile", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?;
    lat.configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&nines_label)
        .draw()?;
    lat.draw_series(LineSeries::new(burst, BLUE.stroke_width(2)))?
        .label("per burst")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    lat.draw_series(LineSeries::new(packet, RED.stroke_width(2)))?
        .label("per packet (burst / mean burst size)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
    lat.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let k = mpps.len().max(1);
    let top = mpps.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.2;
    let median = super::verdict::Spread::of(mpps).median;
    let mut thr = ChartBuilder::on(&right)
        .caption("throughput per repetition", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..k as f64 + 0.5, 0f64..top)?;
    thr.configure_mesh()
        .x_desc("repetition")
        .y_desc("Mpps")
        .x_labels(k.min(20))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .draw()?;
    let pts: Vec<(f64, f64)> = mpps.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, *v)).collect();
    thr.draw_series(LineSeries::new(pts.clone(), BLUE.mix(0.5)))?;
    thr.draw_series(pts.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?
        .label("Mpps")
        .legend(|(x, y)| Circle::new((x + 9, y), 4, BLUE.filled()));
    thr.draw_series(LineSeries::new(vec![(0.5, median), (k as f64 + 0.5, median)], BLACK.stroke_width(1)))?
        .label(format!("median {median:.3}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    thr.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One trend panel: values per run (x labelled by commit), optional min-max bars, the
/// trend line, and anomalies (red: regression, green: progression).
fn draw_trend(
    area: &Area<'_>,
    caption: &str,
    t: &Trend<'_>,
    values: &[f64],
    bars: Option<&[(f64, f64)]>,
    pct: f64,
    higher_better: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = values.len().max(1);
    let hi =
        bars.map_or(0.0, |b| b.iter().map(|x| x.1).fold(0.0, f64::max)).max(values.iter().copied().fold(0.0, f64::max));
    let lo = bars
        .map_or(f64::INFINITY, |b| b.iter().map(|x| x.0).fold(f64::INFINITY, f64::min))
        .min(values.iter().copied().fold(f64::INFINITY, f64::min));
    let (lo, hi) = if lo.is_finite() && hi > 0.0 { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.15).max(hi * 0.01).max(1e-6);
    // Seven hex digits, and "+" for a build from a dirty tree.
    let labels: Vec<String> = t
        .points
        .iter()
        .map(|p| {
            let short: String = p.commit.chars().take(7).collect();
            if p.commit.ends_with("-dirty") {
                short + "+"
            } else {
                short
            }
        })
        .collect();
    let mut c = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (lo - pad).max(0.0)..hi + pad)?;
    c.configure_mesh()
        .x_desc("run (commit)")
        .x_labels(n.min(12))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    if let Some(b) = bars {
        c.draw_series(
            b.iter()
                .enumerate()
                .map(|(i, (l, h))| PathElement::new(vec![(i as f64, *l), (i as f64, *h)], BLUE.mix(0.4))),
        )?;
    }
    let tr = trend_of(values);
    let line: Vec<(f64, f64)> = tr.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as f64, v))).collect();
    c.draw_series(LineSeries::new(line, BLACK.stroke_width(1)))?
        .label(format!("trend (median of previous {TREND_WINDOW})"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    let pts: Vec<(f64, f64, i8)> =
        values.iter().enumerate().map(|(i, v)| (i as f64, *v, anomaly(*v, tr[i], pct, higher_better))).collect();
    c.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), BLUE.mix(0.5)))?;
    c.draw_series(pts.iter().filter(|p| p.2 == 0).map(|p| Circle::new((p.0, p.1), 4, BLUE.filled())))?
        .label("run")
        .legend(|(x, y)| Circle::new((x + 9, y), 4, BLUE.filled()));
    c.draw_series(pts.iter().filter(|p| p.2 < 0).map(|p| Circle::new((p.0, p.1), 6, RED.filled())))?
        .label(format!("regression (> {pct}% vs trend)"))
        .legend(|(x, y)| Circle::new((x + 9, y), 5, RED.filled()));
    c.draw_series(pts.iter().filter(|p| p.2 > 0).map(|p| Circle::new((p.0, p.1), 6, GREEN.filled())))?
        .label("progression")
        .legend(|(x, y)| Circle::new((x + 9, y), 5, GREEN.filled()));
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        for v in 1..=5000u64 {
            h.record(500 + v).unwrap();
        }
        let s = svg("t", &h, &h, &[10.0, 11.0, 10.5], None).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("per burst") && s.contains("median 10.500"));
        // Empty inputs still draw.
        let e = Histogram::<u64>::new(3).unwrap();
        assert!(svg("e", &e, &e, &[], None).is_ok());
        assert_eq!(nines_label(&2.0), "99%");
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&0.0), "0%");
    }

    #[test]
    fn trend_and_anomalies() {
        let v = [10.0, 10.2, 9.8, 10.1, 7.0, 10.0, 13.0];
        let t = trend_of(&v);
        assert_eq!(t[0], None);
        assert_eq!(t[1], Some(10.0));
        assert_eq!(t[4], Some(10.05));
        assert_eq!(anomaly(v[4], t[4], 10.0, true), -1);
        assert_eq!(anomaly(v[6], t[6], 10.0, true), 1);
        assert_eq!(anomaly(v[3], t[3], 10.0, true), 0);
        // Instructions: lower is better.
        assert_eq!(anomaly(310.0, Some(300.0), 1.0, false), -1);
        assert_eq!(anomaly(290.0, Some(300.0), 1.0, false), 1);
        assert_eq!(anomaly(300.5, None, 1.0, false), 0);
        use crate::bench::history::Point;
        let pts: Vec<Point> = v
            .iter()
            .enumerate()
            .map(|(i, m)| Point {
                commit: format!("abcdef{i}123456"),
                mpps_median: *m,
                mpps_min: m - 0.5,
                mpps_max: m + 0.5,
                instructions_per_packet: (i > 1).then_some(300.0 + i as f64),
            })
            .collect();
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        h.record(1000).unwrap();
        let tr = Trend { points: &pts, wall_pct: 10.0, instr_pct: 1.0 };
        let s = svg("t", &h, &h, &[10.0], Some(&tr)).unwrap();
        assert!(s.contains("abcdef4") && s.contains("instructions per packet per run"), "commit labels drawn");
        assert!(s.contains("regression (&gt; 10% vs trend)") || s.contains("regression (> 10% vs trend)"));
    }
}
