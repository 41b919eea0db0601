//! One SVG bar chart per workload, drawn with plotters' SVG backend.
//!
//! Horizontal bars, one per library (names are long, and read better on the side than
//! under a bar), bobbin's in [`BOBBIN_COLOUR`], peers' in [`PEER_COLOUR`], a floor that is
//! no library (the plain iterator) in [`FLOOR_COLOUR`]. The bar is the median; a black line
//! across its end spans the smallest to the largest sample; the median is written after
//! the bar (for workloads with [`WorkloadResult::chart_ratios`], a peer's ratio to its
//! bobbin row follows in brackets). The value axis is logarithmic when the values span more than 1.5 orders of
//! magnitude. These three colours are used for bars only, so a bar is any `rect` whose fill
//! is one of them ([`BAR_FILLS`]); `tests/report.rs` counts them.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{fmt_num, Row, WorkloadResult};

/// Bar colour of bobbin's rows.
pub const BOBBIN_COLOUR: RGBColor = RGBColor(0xD9, 0x48, 0x0F);
/// Bar colour of the peers' rows.
pub const PEER_COLOUR: RGBColor = RGBColor(0x1C, 0x6E, 0xC6);
/// Bar colour of a floor that is not a library (the plain iterator).
pub const FLOOR_COLOUR: RGBColor = RGBColor(0x8A, 0x93, 0x9B);
/// The `fill` attribute plotters writes for each bar colour.
pub const BAR_FILLS: [&str; 3] = ["#D9480F", "#1C6EC6", "#8A939B"];

/// The chart's width in pixels.
const WIDTH: u32 = 960;
/// Vertical space per bar in pixels.
const ROW_HEIGHT: u32 = 46;
/// Room for the library names left of the bars; longer names get more (and the chart
/// grows by as much, so that the bars keep their room).
const LABEL_AREA: u32 = 270;
/// Width allowed per character of a library name, in pixels (14-pixel sans-serif).
const LABEL_CHAR: u32 = 7;

/// Values spanning more than this factor get a logarithmic axis (1.5 orders of magnitude).
const LOG_SPAN: f64 = 31.6;

/// True for a row that is a floor to compare with, not a library.
pub fn is_floor(row: &Row) -> bool {
    row.library == "plain iterator"
}

fn colour(row: &Row) -> RGBColor {
    if row.is_bobbin() {
        BOBBIN_COLOUR
    } else if is_floor(row) {
        FLOOR_COLOUR
    } else {
        PEER_COLOUR
    }
}

/// One bar: row index, median, smallest and largest sample.
struct Bar {
    row: usize,
    median: f64,
    min: f64,
    max: f64,
}

/// Draws the chart of `w` into the SVG file `path`. Rows without a value (a library that
/// failed) keep their place and label, with "failed" instead of a bar.
pub fn draw(w: &WorkloadResult, rounds: usize, path: &Path) -> Result<(), String> {
    let bars: Vec<Bar> = w
        .rows
        .iter()
        .enumerate()
        .filter_map(|(row, r)| {
            let (min, max) = r.range()?;
            Some(Bar { row, median: r.median()?, min, max })
        })
        .collect();
    let lo = bars.iter().map(|b| b.min).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let hi = bars.iter().map(|b| b.max).fold(0.0, f64::max);
    if bars.is_empty() || !lo.is_finite() || hi <= 0.0 {
        return Err(format!("{}: nothing to draw", w.key));
    }
    let better = if w.lower_is_better { "lower is better" } else { "higher is better" };
    let spread = if rounds > 1 { format!("; line: min-max of {rounds} samples") } else { String::new() };
    let ratios = if w.chart_ratios { "; in brackets: ratio to bobbin, > 1: bobbin better" } else { "" };
    let x_desc = format!("{} (median, {better}{spread}{ratios})", w.unit);
    let height = 110 + ROW_HEIGHT * w.rows.len() as u32 + 50;
    let log = hi / lo > LOG_SPAN;
    let x_desc = if log { format!("{x_desc}, log scale") } else { x_desc };
    let result = if log {
        // Start at the power of ten below the smallest value; leave room after the largest
        // bar for its label.
        let start = 10f64.powf(lo.log10().floor());
        let coord: LogCoord<f64> = (start..hi * 6.0).log_scale().into();
        plot(w, &bars, coord, start, true, &x_desc, height, path)
    } else {
        let coord: RangedCoordf64 = (0.0..hi * 1.3).into();
        plot(w, &bars, coord, 0.0, false, &x_desc, height, path)
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}

/// Labels of a logarithmic axis: only the 1, 2, 5 of every decade, so they do not crowd.
fn log_label(v: f64) -> String {
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
        fmt_num(v)
    } else {
        String::new()
    }
}

#[allow(clippy::too_many_arguments)]
fn plot<X>(
    w: &WorkloadResult,
    bars: &[Bar],
    x: X,
    x0: f64,
    log: bool,
    x_desc: &str,
    height: u32,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let n = w.rows.len();
    let longest = w.rows.iter().map(|r| r.library.chars().count() as u32).max().unwrap_or(0);
    let label_area = LABEL_AREA.max(longest * LABEL_CHAR + 24);
    // Category k of the y axis shows row n-1-k, so that the first row is at the top.
    // (plotters' integer ranges include their end: 0..n-1 has n categories.)
    let cat = |row: usize| n - 1 - row;
    let root = SVGBackend::new(path, (WIDTH + label_area - LABEL_AREA, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&w.title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(label_area)
        .build_cartesian_2d(x, (0..n - 1).into_segmented())?;

    let name_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(k) | SegmentValue::Exact(k) if *k < n => w.rows[n - 1 - *k].library.clone(),
        _ => String::new(),
    };
    let x_label = |v: &f64| if log { log_label(*v) } else { fmt_num(*v) };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&name_of)
        .x_labels(if log { 12 } else { 8 })
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .x_label_formatter(&x_label)
        .x_desc(x_desc)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;

    let value_font = ("sans-serif", 13).into_font();
    for b in bars {
        let row = &w.rows[b.row];
        let k = cat(b.row);
        let mut rect = Rectangle::new(
            [(x0, SegmentValue::Exact(k)), (b.median, SegmentValue::Exact(k + 1))],
            colour(row).filled(),
        );
        rect.set_margin(9, 9, 0, 0);
        chart.draw_series(std::iter::once(rect))?;
        if b.max > b.min {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(b.min, SegmentValue::CenterOf(k)), (b.max, SegmentValue::CenterOf(k))],
                BLACK.stroke_width(2),
            )))?;
        }
        let mut label = format!("{} {}", fmt_num(b.median), w.unit);
        if w.chart_ratios && row.baseline != b.row {
            if let Some(r) = w.ratio(b.row) {
                label.push_str(&format!(" ({r:.2})"));
            }
        }
        chart.draw_series(std::iter::once(
            EmptyElement::at((b.max.max(b.median), SegmentValue::CenterOf(k)))
                + Text::new(label, (8, -7), value_font.clone()),
        ))?;
    }
    for (i, row) in w.rows.iter().enumerate() {
        if row.median().is_none() {
            chart.draw_series(std::iter::once(
                EmptyElement::at((x0, SegmentValue::CenterOf(cat(i))))
                    + Text::new("failed (see the report)", (8, -7), value_font.clone()),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_match_the_colours() {
        for (c, fill) in [BOBBIN_COLOUR, PEER_COLOUR, FLOOR_COLOUR].iter().zip(BAR_FILLS) {
            assert_eq!(format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2), fill);
        }
    }

    #[test]
    fn log_labels_are_one_two_five() {
        assert_eq!(log_label(100.0), "100");
        assert_eq!(log_label(2000.0), "2,000");
        assert_eq!(log_label(0.5), "0.500");
        assert_eq!(log_label(300.0), "");
    }
}
