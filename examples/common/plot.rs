//! The examples' figures: line charts and histograms written as SVG files with `plotters`.
//!
//! SVG keeps text as text, so the files need no fonts to be written (the viewer draws the
//! letters) and stay small enough to commit. A figure is a grid of panels; a [`Panel`] holds
//! named line series (optionally over grey contour lines, for the landscape), a [`HistPanel`]
//! one histogram.
//!
//! Every figure is drawn to be read at a README's width: text at least 12 px (SVG
//! `font-size`), panels 640 px wide, at most two side by side in the figures shown; and a
//! legend never covers the data. A panel's legend goes where it asks to be (its
//! [`Panel::legend`], upper right by default) if nothing is drawn there, else in the first
//! free spot: the other corners, the middles of the edges, then anywhere on a 10-pixel grid,
//! nearest the asked-for spot first. CI checks all three in every SVG the examples draw.

use std::path::{Path, PathBuf};

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::MultiLineText;
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

/// Font sizes as plotters takes them; the SVG's `font-size` is the size / 1.24, so 16 writes
/// 12.9 px. Tick labels and legends, axis titles, panel titles.
const LABEL_FONT: f64 = 16.0;
const AXIS_FONT: f64 = 18.0;
const TITLE_FONT: f64 = 22.0;

/// Pixels between a legend and anything drawn under it.
const LEGEND_CLEARANCE: i32 = 4;

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
    svg(path, panels, cols, PANEL_SIZE, |area, panel| {
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

/// Writes `panels` as one SVG of histograms, `cols` per row, each `height` pixels tall.
pub fn histograms(
    path: &Path,
    panels: &[HistPanel],
    cols: usize,
    height: u32,
) -> Result<(), String> {
    svg(path, panels, cols, (PANEL_SIZE.0, height), draw_histogram)
}

/// Writes one SVG of `panels`, `cols` per row, each `size` pixels and drawn into its own
/// area by `draw`.
fn svg<P>(
    path: &Path,
    panels: &[P],
    cols: usize,
    size: (u32, u32),
    draw: impl Fn(&DrawingArea<SVGBackend<'_>, Shift>, &P) -> DrawResult,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let (rows, cols) = grid(panels.len(), cols);
    let root =
        SVGBackend::new(path, (size.0 * cols as u32, size.1 * rows as u32)).into_drawing_area();
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
        .caption(&panel.title, ("sans-serif", TITLE_FONT))
        .margin(12)
        .x_label_area_size(58)
        .y_label_area_size(84)
        .build_cartesian_2d(x.0..x.1, y)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style(("sans-serif", LABEL_FONT))
        .axis_desc_style(("sans-serif", AXIS_FONT))
        .x_labels(8)
        .y_labels(10)
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
    // What the legend must not cover: every series' line and markers, in the plotting
    // area's pixels.
    let base = chart.plotting_area().get_base_pixel();
    let mut drawn = Drawn::default();
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = thin(&s.points, MAX_POINTS)
            .into_iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!panel.log_y || p.1 > 0.0))
            .collect();
        drawn.lines.push(
            points
                .iter()
                .map(|p| {
                    let (px, py) = chart.backend_coord(p);
                    (px - base.0, py - base.1)
                })
                .collect(),
        );
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
        let names: Vec<&str> = panel.series.iter().map(|s| s.name.as_str()).collect();
        draw_legend(&mut chart, &names, &panel.legend, &drawn)?;
    }
    Ok(())
}

/// What a panel drew, in its plotting area's pixels: polylines and boxes.
#[derive(Default)]
struct Drawn {
    lines: Vec<Vec<(i32, i32)>>,
    boxes: Vec<((i32, i32), (i32, i32))>,
}

impl Drawn {
    /// Whether anything drawn comes within the box `(x0, y0)–(x1, y1)`.
    fn crosses(&self, (x0, y0): (i32, i32), (x1, y1): (i32, i32)) -> bool {
        let (lo, hi) = ((x0 as f64, y0 as f64), (x1 as f64, y1 as f64));
        let segment = |a: (i32, i32), b: (i32, i32)| {
            segment_meets_box((a.0 as f64, a.1 as f64), (b.0 as f64, b.1 as f64), lo, hi)
        };
        self.lines.iter().any(|l| match l.as_slice() {
            [p] => segment(*p, *p),
            l => l.windows(2).any(|w| segment(w[0], w[1])),
        }) || self
            .boxes
            .iter()
            .any(|&(a, b)| a.0 <= x1 && x0 <= b.0 && a.1 <= y1 && y0 <= b.1)
    }
}

/// Whether the segment `a`–`b` meets the box `lo`–`hi` (Liang–Barsky clipping).
fn segment_meets_box(a: (f64, f64), b: (f64, f64), lo: (f64, f64), hi: (f64, f64)) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - lo.0),
        (dx, hi.0 - a.0),
        (-dy, a.1 - lo.1),
        (dy, hi.1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t0 <= t1
}

/// Where plotters puts a legend of `size` pixels at `at` in an area of `area` pixels.
fn legend_corner(at: &Legend, size: (i32, i32), area: (i32, i32)) -> (i32, i32) {
    use Legend::*;
    let x = match at {
        UpperLeft | MiddleLeft | LowerLeft => 5,
        UpperMiddle | MiddleMiddle | LowerMiddle => (area.0 - size.0) / 2,
        UpperRight | MiddleRight | LowerRight => area.0 - size.0 - 5,
        Coordinate(x, _) => *x,
    };
    let y = match at {
        UpperLeft | UpperMiddle | UpperRight => 5,
        MiddleLeft | MiddleMiddle | MiddleRight => (area.1 - size.1) / 2,
        LowerLeft | LowerMiddle | LowerRight => area.1 - size.1 - 5,
        Coordinate(_, y) => *y,
    };
    (x, y)
}

/// The upper-left corner of a legend of `size` pixels in an area of `area` pixels: `wanted`
/// if nothing `drawn` is under it, else the first free one of the corners, the middles of
/// the edges, then every spot on a 10-pixel grid, nearest `wanted` first; if none is free,
/// `wanted`.
fn legend_spot(wanted: &Legend, size: (i32, i32), area: (i32, i32), drawn: &Drawn) -> (i32, i32) {
    use Legend::*;
    let free = |(x, y): (i32, i32)| {
        let c = LEGEND_CLEARANCE;
        x >= 0
            && y >= 0
            && x + size.0 <= area.0
            && y + size.1 <= area.1
            && !drawn.crosses((x - c, y - c), (x + size.0 + c, y + size.1 + c))
    };
    let first = legend_corner(wanted, size, area);
    let usual = [
        UpperRight,
        UpperLeft,
        LowerRight,
        LowerLeft,
        MiddleRight,
        MiddleLeft,
        UpperMiddle,
        LowerMiddle,
    ]
    .map(|at| legend_corner(&at, size, area));
    let mut grid: Vec<(i32, i32)> = (0..=(area.1 - size.1).max(0) / 10)
        .flat_map(|j| (0..=(area.0 - size.0).max(0) / 10).map(move |i| (5 + 10 * i, 5 + 10 * j)))
        .collect();
    grid.sort_by_key(|&(x, y)| (x - first.0).pow(2) + (y - first.1).pow(2));
    std::iter::once(first)
        .chain(usual)
        .chain(grid)
        .find(|&spot| free(spot))
        .unwrap_or(first)
}

/// Draws the chart's legend, one row per name, where [`legend_spot`] finds room.
fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    names: &[&str],
    wanted: &Legend,
    drawn: &Drawn,
) -> DrawResult {
    // The box plotters will draw: the text's estimated size, the sample line's 30 pixels
    // and a margin of 10 all round.
    let font: TextStyle = ("sans-serif", LABEL_FONT).into_font().into();
    let mut text = MultiLineText::<_, &str>::new((0, 0), &font);
    for name in names {
        text.push_line(*name);
    }
    let (w, h) = text
        .estimate_dimension()
        .unwrap_or((200, 20 * names.len() as i32));
    let size = (w + 30 + 20, h + 20);
    let area = chart.plotting_area().dim_in_pixel();
    let (x, y) = legend_spot(wanted, size, (area.0 as i32, area.1 as i32), drawn);
    chart
        .configure_series_labels()
        .position(Legend::Coordinate(x, y))
        .label_font(("sans-serif", LABEL_FONT))
        .legend_area_size(30)
        .margin(10)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
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
        .caption(&panel.title, ("sans-serif", TITLE_FONT))
        .margin(12)
        .x_label_area_size(58)
        .y_label_area_size(70)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc("batches")
        .label_style(("sans-serif", LABEL_FONT))
        .axis_desc_style(("sans-serif", AXIS_FONT))
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v: &f64| tick(*v, hi - lo))
        .y_label_formatter(&|v: &f64| tick(*v, top))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let fill = COLORS[0].mix(0.7).filled();
    let bars: Vec<((f64, f64), (f64, f64))> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            let x0 = lo + i as f64 * width;
            ((x0, 0.0), (x0 + width, c as f64))
        })
        .collect();
    chart.draw_series(bars.iter().map(|&(a, b)| Rectangle::new([a, b], fill)))?;
    let base = chart.plotting_area().get_base_pixel();
    let pixel = |p: &(f64, f64)| {
        let (x, y) = chart.backend_coord(p);
        (x - base.0, y - base.1)
    };
    let mut drawn = Drawn::default();
    for (a, b) in &bars {
        let (p, q) = (pixel(a), pixel(b));
        drawn
            .boxes
            .push(((p.0.min(q.0), p.1.min(q.1)), (p.0.max(q.0), p.1.max(q.1))));
    }
    let finite: Vec<f64> = panel
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if !finite.is_empty() {
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let red = COLORS[3];
        let line = [(mean, 0.0), (mean, top)];
        drawn.lines.push(line.iter().map(&pixel).collect());
        chart
            .draw_series(LineSeries::new(line, red.stroke_width(2)))?
            .label(format!("mean {mean:.3}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        let name = format!("mean {mean:.3}");
        draw_legend(&mut chart, &[name.as_str()], &Legend::UpperLeft, &drawn)?;
    }
    Ok(())
}

/// Writes `dir/name`: per epoch of a run, the training loss and the validation split's loss
/// and accuracy (when the run held one out), and the test set's when given (`test`: epoch,
/// loss, accuracy; `--test-curve`), each labelled by the set it is on. Returns the file written.
pub fn training_history(
    dir: &Path,
    name: &str,
    title: &str,
    history: &[downhill::EpochRecord],
    test: &[(usize, f64, f64)],
) -> Result<PathBuf, String> {
    let per_epoch = |f: &dyn Fn(&downhill::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let test_loss: Vec<(f64, f64)> = test.iter().map(|p| (p.0 as f64, p.1)).collect();
    let test_accuracy: Vec<(f64, f64)> = test.iter().map(|p| (p.0 as f64, p.2)).collect();
    let mut loss = Panel::new(&format!("{title}: loss"), "epoch", "loss (log)")
        .log_y()
        .line(
            "training loss (mean over the epoch)",
            per_epoch(&|e| Some(e.train_loss)),
        );
    let valid_loss = per_epoch(&|e| e.valid_loss);
    if !valid_loss.is_empty() {
        loss = loss.line("validation loss (after the epoch)", valid_loss);
    }
    if !test_loss.is_empty() {
        loss = loss.line("test loss (after the epoch)", test_loss);
    }
    let valid_accuracy = per_epoch(&|e| e.valid_accuracy);
    let mut panels = vec![loss];
    if !valid_accuracy.is_empty() || !test_accuracy.is_empty() {
        let sets = match (valid_accuracy.is_empty(), test_accuracy.is_empty()) {
            (false, true) => "validation",
            (true, false) => "test",
            _ => "validation and test",
        };
        let mut accuracy = Panel::new(&format!("{title}: {sets} accuracy"), "epoch", "accuracy")
            .legend(Legend::LowerRight);
        if !valid_accuracy.is_empty() {
            accuracy = accuracy.path("validation accuracy", valid_accuracy);
        }
        if !test_accuracy.is_empty() {
            accuracy = accuracy.path("test accuracy", test_accuracy);
        }
        panels.push(accuracy);
    }
    let path = file_in(dir, name)?;
    lines(&path, &panels, 2)?;
    Ok(path)
}
