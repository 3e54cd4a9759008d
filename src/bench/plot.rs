//! `--plot FILE.svg`: the latency percentile curve (per burst and per packet, log
//! latency against "nines", like HdrHistogram's plotter) next to the throughput of
//! each repetition with its median. Drawn with `plotters`' SVG backend (no fonts or
//! system libraries needed).

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Highest percentile drawn: 99.9999% (six nines).
const MAX_NINES: f64 = 6.0;

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
) -> Result<String, String> {
    let mut out = String::new();
    draw(&mut out, title, per_burst, per_packet, mpps).map_err(|e| format!("drawing the plot: {e}"))?;
    Ok(out)
}

fn draw(
    out: &mut String,
    title: &str,
    per_burst: &Histogram<u64>,
    per_packet: &Histogram<u64>,
    mpps: &[f64],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(620);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        for v in 1..=5000u64 {
            h.record(500 + v).unwrap();
        }
        let s = svg("t", &h, &h, &[10.0, 11.0, 10.5]).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("per burst") && s.contains("median 10.500"));
        // Empty inputs still draw.
        let e = Histogram::<u64>::new(3).unwrap();
        assert!(svg("e", &e, &e, &[]).is_ok());
        assert_eq!(nines_label(&2.0), "99%");
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&0.0), "0%");
    }
}
