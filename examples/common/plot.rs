//! The examples' figures: line charts and histograms written as SVG files with `plotters`.
//!
//! SVG keeps text as text, so the files need no fonts to be written (the viewer draws the
//! letters) and stay small enough to commit. A figure is a grid of panels; a [`Panel`] holds
//! named line series (optionally over grey contour lines, for the landscape), a [`HistPanel`]
//! one histogram.

use std::path::{Path, PathBuf};

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use plotters::chart::SeriesLabelPosition as Legend;

/// Colours for successive series (the matplotlib "tab10" palette, easy to tell apart).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Most points a series keeps when drawn: more would only bloat the file.
const MAX_POINTS: usize = 800;

/// Pixels per panel.
const PANEL_SIZE: (u32, u32) = (640, 440);

/// One named line.
pub struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    markers: bool,
}

/// One chart: axes, labels and line series.
pub struct Panel {
    title: String,
    x_label: String,
    y_label: String,
    log_y: bool,
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    legend: Legend,
    contours: Vec<Vec<(f64, f64)>>,
    series: Vec<Series>,
}

impl Panel {
    /// An empty chart with a title and axis labels.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            x_range: None,
            y_range: None,
            legend: Legend::UpperRight,
            contours: Vec::new(),
            series: Vec::new(),
        }
    }
    /// A logarithmic y axis (non-positive values are left out).
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }
    /// Fixes the x axis instead of fitting it to the data.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// Fixes the y axis instead of fitting it to the data.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Where the legend goes (default: upper right).
    pub fn legend(mut self, at: Legend) -> Self {
        self.legend = at;
        self
    }
    /// A thin grey line under the series (a level set of the function being minimised).
    pub fn contour(mut self, points: Vec<(f64, f64)>) -> Self {
        self.contours.push(points);
        self
    }
    /// Adds a line called `name`.
    pub fn line(mut self, name: &str, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            markers: false,
        });
        self
    }
    /// Adds a line called `name` with a dot at every point (an optimizer's iterates).
    pub fn path(mut self, name: &str, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            markers: true,
        });
        self
    }
}

/// One histogram: values counted into equal bins over a range.
pub struct HistPanel {
    title: String,
    x_label: String,
    values: Vec<f64>,
    range: (f64, f64),
    bins: usize,
}

impl HistPanel {
    /// A histogram of `values` in `bins` bins over `[lo, hi]` (values outside are clamped
    /// into the end bins).
    pub fn new(
        title: &str,
        x_label: &str,
        values: Vec<f64>,
        (lo, hi): (f64, f64),
        bins: usize,
    ) -> Self {
        HistPanel {
            title: title.into(),
            x_label: x_label.into(),
            values,
            range: (lo, hi),
            bins: bins.max(1),
        }
    }
}

/// `dir/name`, creating `dir` if needed.
pub fn file_in(dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("--plot {}: {e}", dir.display()))?;
    Ok(dir.join(name))
}

/// At most `max` of `points`, evenly spaced, always keeping the first and the last.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..max).map(|i| points[i * last / (max - 1)]).collect()
}

/// The runs of `points` that lie inside the box (a line drawn outside it would spill over
/// the axes).
fn clip(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: &&(f64, f64)| x.0 <= p.0 && p.0 <= x.1 && y.0 <= p.1 && p.1 <= y.1;
    let mut runs = vec![Vec::new()];
    for p in points {
        match runs.last_mut() {
            Some(run) if inside(&p) => run.push(*p),
            Some(run) if !run.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    runs.retain(|r| r.len() > 1);
    runs
}

/// Writes `panels` as one SVG, `cols` panels per row.
pub fn lines(path: &Path, panels: &[Panel], cols: usize) -> Result<(), String> {
    svg(path, panels, cols, |area, panel| {
        let x = panel.x_range.unwrap_or_else(|| fit(panel, |p| p.0, false));
        let y = panel
            .y_range
            .unwrap_or_else(|| fit(panel, |p| p.1, panel.log_y));
        if panel.log_y {
            draw_panel(
                area,
                panel,
                x,
                y,
                (y.0..y.1).log_scale().with_key_points(log_ticks(y)),
            )
        } else {
            draw_panel(area, panel, x, y, y.0..y.1)
        }
    })
}

/// Writes `panels` as one SVG of histograms, `cols` per row.
pub fn histograms(path: &Path, panels: &[HistPanel], cols: usize) -> Result<(), String> {
    svg(path, panels, cols, draw_histogram)
}

/// Writes one SVG of `panels`, `cols` per row, each drawn into its own area by `draw`.
fn svg<P>(
    path: &Path,
    panels: &[P],
    cols: usize,
    draw: impl Fn(&DrawingArea<SVGBackend<'_>, Shift>, &P) -> DrawResult,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let (rows, cols) = grid(panels.len(), cols);
    let root = SVGBackend::new(
        path,
        (PANEL_SIZE.0 * cols as u32, PANEL_SIZE.1 * rows as u32),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        draw(area, panel).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

fn grid(n: usize, cols: usize) -> (usize, usize) {
    let cols = cols.clamp(1, n.max(1));
    (n.max(1).div_ceil(cols), cols)
}

/// The data's extent along one axis, padded by 5% (positive values only on a log axis).
fn fit(panel: &Panel, coord: impl Fn(&(f64, f64)) -> f64, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let all = panel.series.iter().flat_map(|s| &s.points);
    for v in all
        .map(coord)
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return if log { (0.1, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        let pad = (hi / lo).powf(0.05).max(1.05);
        (lo / pad, hi * pad)
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-9 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_panel<Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    x: (f64, f64),
    y_range: (f64, f64),
    y: Y,
) -> DrawResult
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0..x.1, y)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(10)
        .y_labels(12)
        .x_label_formatter(&|v: &f64| tick(*v, x.1 - x.0))
        .y_label_formatter(&|v: &f64| {
            tick(
                *v,
                if panel.log_y {
                    0.0
                } else {
                    y_range.1 - y_range.0
                },
            )
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let grey = RGBColor(190, 190, 190);
    for piece in panel.contours.iter().flat_map(|c| clip(c, x, y_range)) {
        chart.draw_series(LineSeries::new(piece, grey.stroke_width(1)))?;
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = thin(&s.points, MAX_POINTS)
            .into_iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!panel.log_y || p.1 > 0.0))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if s.markers {
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 2, color.filled())),
            )?;
        }
    }
    if !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .position(panel.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Tick values for a log axis over `[lo, hi]`: every digit within about a decade, 1-2-5
/// over a few decades, powers of ten beyond that.
fn log_ticks((lo, hi): (f64, f64)) -> Vec<f64> {
    let decades = (hi / lo).log10();
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let stride = (decades / 10.0).ceil().max(1.0) as usize;
    let mantissas: &[f64] = if decades <= 1.3 {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    } else if decades <= 3.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    (first..=last)
        .step_by(stride)
        .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
        .filter(|v| (lo..=hi).contains(v))
        .collect()
}

/// A tick label on a linear axis `span` long (`span = 0` for a log axis): the digits the
/// tick spacing needs, trailing zeros dropped.
fn tick(v: f64, span: f64) -> String {
    if v == 0.0 || v.abs() <= 1e-9 * span {
        return "0".into(); // also the -0.0 and 1e-17 of a linear axis's float steps
    }
    if v.abs() >= 1e5 || (span == 0.0 && v.abs() < 1e-4) {
        return format!("{v:.0e}");
    }
    // Ticks are about a tenth of the span apart (a log axis: a digit of the value).
    let spacing = if span > 0.0 { span / 10.0 } else { v.abs() };
    let decimals = (-spacing.log10()).ceil().clamp(0.0, 12.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn draw_histogram(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &HistPanel) -> DrawResult {
    let (lo, hi) = panel.range;
    let width = (hi - lo) / panel.bins as f64;
    let mut counts = vec![0usize; panel.bins];
    for &v in panel.values.iter().filter(|v| v.is_finite()) {
        let bin = ((v - lo) / width)
            .floor()
            .clamp(0.0, (panel.bins - 1) as f64) as usize;
        counts[bin] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc("batches")
        .x_label_formatter(&|v: &f64| tick(*v, hi - lo))
        .y_label_formatter(&|v: &f64| tick(*v, top))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let fill = COLORS[0].mix(0.7).filled();
    chart.draw_series(
        counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], fill)
            }),
    )?;
    let finite: Vec<f64> = panel
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if !finite.is_empty() {
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let red = COLORS[3];
        chart
            .draw_series(LineSeries::new(
                [(mean, 0.0), (mean, top)],
                red.stroke_width(2),
            ))?
            .label(format!("mean {mean:.3}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(Legend::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Writes `dir/name`: training loss, and the loss and accuracy on the evaluation set (`set`:
/// "test" or "validation"), per epoch of a run. Returns the file written.
pub fn training_history(
    dir: &Path,
    name: &str,
    title: &str,
    set: &str,
    history: &[downhill::EpochRecord],
) -> Result<PathBuf, String> {
    let per_epoch = |f: &dyn Fn(&downhill::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let mut loss = Panel::new(&format!("{title}: loss"), "epoch", "loss (log)")
        .log_y()
        .line(
            "training loss (mean over the epoch)",
            per_epoch(&|e| Some(e.train_loss)),
        );
    let test_loss = per_epoch(&|e| e.valid_loss);
    if !test_loss.is_empty() {
        loss = loss.line(&format!("{set} loss (after the epoch)"), test_loss);
    }
    let accuracy = Panel::new(
        &format!("{title}: {set} accuracy"),
        "epoch",
        &format!("{set} accuracy"),
    )
    .legend(Legend::LowerRight)
    .path(&format!("{set} accuracy"), per_epoch(&|e| e.valid_accuracy));
    let path = file_in(dir, name)?;
    lines(&path, &[loss, accuracy], 2)?;
    Ok(path)
}
