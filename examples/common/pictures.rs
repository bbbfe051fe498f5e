//! The examples' pictures: what a classifier learned and where it goes wrong, as SVG shapes
//! drawn with `plotters` (no embedded bitmaps: every pixel is a rectangle, and runs of
//! equal pixels along a row are one).
//!
//! * [`confusion`] — a confusion matrix as a labelled heat map: the diagonal in blue (each
//!   class's recall), the mistakes in red (by count), every count written in its cell.
//! * [`tiles`] — a grid of images, each with a caption: the most confidently wrong test
//!   images ("true → predicted (p)"), or a linear classifier's templates (the columns of its
//!   `W`), or an MLP's first-layer units — grey images in a diverging palette for weights,
//!   in ink for pixels; colour images (CIFAR-10's three planes) in colour.
//!
//! Text is 12.9 px or more, and no figure is wider than 1600 px: what `.ci/figures.py`
//! checks in every figure the examples draw.

use std::path::{Path, PathBuf};

use downhill::data::ImageShape;
use downhill::metrics::ConfusionMatrix;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::file_in;

/// Font sizes as plotters takes them (the SVG's `font-size` is the size / 1.24): labels and
/// captions 12.9 px, titles 16.1 px.
const LABEL_FONT: f64 = 16.0;
const TITLE_FONT: f64 = 20.0;
/// The widest figure (pixels).
const MAX_WIDTH: i32 = 1600;
/// Levels a drawn pixel's shade is rounded to: few enough that runs of equal pixels merge
/// into one shape and the near-white ones are left out (a file a tenth the size), many
/// enough that the eye sees no steps.
const LEVELS: f64 = 12.0;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Text of `size` anchored at its `h`, `v` position.
fn text(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, v))
}

/// What drawing into an SVG may fail with.
type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

/// `text` in the labels' font at `at`, anchored by `anchor`.
fn label(root: &Area, text_: String, at: (i32, i32), anchor: (HPos, VPos)) -> DrawResult {
    root.draw(&Text::new(text_, at, text(LABEL_FONT, anchor.0, anchor.1)))
}

/// Class `i`'s name, or its number if `names` has none for it.
fn class_name(names: &[String], i: i32) -> String {
    names
        .get(i as usize)
        .cloned()
        .unwrap_or_else(|| i.to_string())
}

/// A ratio with `digits` decimals, `-` where it is undefined.
fn ratio(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// A `width × height` SVG at `dir/name`, white, `title` centred along its top, with `draw`
/// drawn on it. Returns the file.
fn svg(
    (dir, name): (&Path, &str),
    (width, height): (i32, i32),
    title: &str,
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<PathBuf, String> {
    let path = file_in(dir, name)?;
    let shown = path.display().to_string();
    let err = |e: &dyn std::fmt::Display| format!("writing {shown}: {e}");
    let root = SVGBackend::new(&path, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let heading = text(TITLE_FONT, HPos::Center, VPos::Top);
    let titled = root.draw(&Text::new(title.to_string(), (width / 2, 8), heading));
    titled.and_then(|()| draw(&root)).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(root);
    Ok(path)
}

/// Writes `dir/name`: the confusion matrix `m` (rows true, columns predicted) as a heat map
/// with each class's `names`, each row's recall on the right and each column's precision
/// below, under `title`. Returns the file written.
pub fn confusion(
    dir: &Path,
    name: &str,
    title: &str,
    m: &ConfusionMatrix,
    names: &[String],
) -> Result<PathBuf, String> {
    let k = m.classes() as i32;
    let cell = (560 / k.max(1)).clamp(24, 56);
    let label_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as i32 * 9 + 16;
    let (left, top) = ((label_w + 40).max(100), 74);
    let (width, height) = (left + k * cell + 90, top + k * cell + 80);
    svg((dir, name), (width, height), title, |root| {
        let axis = text(LABEL_FONT, HPos::Center, VPos::Center);
        root.draw(&Text::new(
            "predicted",
            (left + k * cell / 2, 42),
            axis.clone(),
        ))?;
        let side = axis.transform(FontTransform::Rotate270);
        root.draw(&Text::new("true", (14, top + k * cell / 2), side))?;
        let worst = (0..k as usize)
            .flat_map(|y| {
                (0..k as usize)
                    .filter(move |&p| p != y)
                    .map(move |p| (y, p))
            })
            .map(|(y, p)| m.count(y, p))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        for y in 0..k {
            for p in 0..k {
                let count = m.count(y as usize, p as usize);
                let (x0, y0) = (left + p * cell, top + y * cell);
                // The diagonal by the row's recall, a mistake by its count against the
                // largest mistake: either way, darker is more.
                let (shade, base) = match y == p {
                    true => (m.recall(y as usize).unwrap_or(0.0), (31, 119, 180)),
                    false => ((count as f64 / worst).sqrt(), (214, 39, 40)),
                };
                let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * shade).round() as u8;
                let fill = RGBColor(mix(base.0), mix(base.1), mix(base.2));
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    fill.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    RGBColor(220, 220, 220),
                ))?;
                if count > 0 {
                    let ink = if shade > 0.6 { WHITE } else { BLACK };
                    let style = text(LABEL_FONT, HPos::Center, VPos::Center).color(&ink);
                    root.draw(&Text::new(
                        count.to_string(),
                        (x0 + cell / 2, y0 + cell / 2),
                        style,
                    ))?;
                }
            }
            let mid = top + y * cell + cell / 2;
            let class = class_name(names, y);
            label(root, class, (left - 6, mid), (HPos::Right, VPos::Center))?;
            let recall = ratio(m.recall(y as usize), 3);
            label(
                root,
                recall,
                (left + k * cell + 8, mid),
                (HPos::Left, VPos::Center),
            )?;
        }
        let head = (left + k * cell + 8, top - 4);
        label(root, "recall".into(), head, (HPos::Left, VPos::Bottom))?;
        for p in 0..k {
            let centre = left + p * cell + cell / 2;
            let class = class_name(names, p);
            label(root, class, (centre, top - 4), (HPos::Center, VPos::Bottom))?;
            // Precision below each column, every other one a line lower when cells are narrow.
            let below = top + k * cell + 8 + if cell < 48 { (p % 2) * 18 } else { 0 };
            let precision = ratio(m.precision(p as usize), 2);
            label(root, precision, (centre, below), (HPos::Center, VPos::Top))?;
        }
        let foot = (left - 6, top + k * cell + 8);
        label(root, "precision".into(), foot, (HPos::Right, VPos::Top))?;
        Ok(())
    })
}

/// How a tile's values become colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// Pixels in `[0, 1]`: dark ink on white (grey), or their own colour (colour images).
    Image,
    /// Weights of either sign: grey images red for positive and blue for negative, each
    /// tile scaled by its own largest magnitude; colour images stretched to `[0, 1]` per
    /// tile, as the CS231n notes draw a linear classifier's templates.
    Weights,
}

/// One image of a grid and its caption: `values` in plane-major order (`shape`).
pub struct Tile {
    pub values: Vec<f64>,
    pub caption: String,
}

/// Writes `dir/name`: `tiles` (images of `shape`) in rows of `cols`, each `scale` pixels per
/// image pixel, under `title`, coloured by `palette`. Returns the file written.
#[allow(clippy::too_many_arguments)]
pub fn tiles(
    dir: &Path,
    name: &str,
    title: &str,
    shape: ImageShape,
    tiles: &[Tile],
    cols: usize,
    scale: u32,
    palette: Palette,
) -> Result<PathBuf, String> {
    let scale = scale.max(1) as i32;
    let (w, h) = (shape.width as i32 * scale, shape.height as i32 * scale);
    let caption_w = tiles
        .iter()
        .map(|t| t.caption.chars().count())
        .max()
        .unwrap_or(0) as i32
        * 8;
    let cell_w = w.max(caption_w) + 16;
    let cols = (cols.max(1) as i32).min((MAX_WIDTH - 20) / cell_w).max(1);
    let rows = (tiles.len() as i32 + cols - 1) / cols;
    let title_h = 40;
    let cell_h = h + 34;
    let width = (cols * cell_w + 20)
        .max(title.chars().count() as i32 * 9 + 20)
        .min(MAX_WIDTH);
    let height = title_h + rows.max(1) * cell_h + 6;
    svg((dir, name), (width, height), title, |root| {
        let left = (width - cols * cell_w) / 2;
        for (i, tile) in tiles.iter().enumerate() {
            let (r, c) = (i as i32 / cols, i as i32 % cols);
            let x0 = left + c * cell_w + (cell_w - w) / 2;
            let y0 = title_h + r * cell_h;
            for (x, y, x1, fill) in runs(shape, &tile.values, palette) {
                let rect = [
                    (x0 + x * scale, y0 + y * scale),
                    (x0 + x1 * scale, y0 + (y + 1) * scale),
                ];
                root.draw(&Rectangle::new(rect, fill.filled()))?;
            }
            let frame = [(x0 - 1, y0 - 1), (x0 + w, y0 + h)];
            root.draw(&Rectangle::new(frame, RGBColor(160, 160, 160)))?;
            let style = text(LABEL_FONT, HPos::Center, VPos::Top);
            root.draw(&Text::new(
                tile.caption.clone(),
                (x0 + w / 2, y0 + h + 6),
                style,
            ))?;
        }
        Ok(())
    })
}

/// A tile's pixels as runs along its rows: `(x, y, x_end, colour)`, white ones left out.
fn runs(shape: ImageShape, values: &[f64], palette: Palette) -> Vec<(i32, i32, i32, RGBColor)> {
    let (w, h) = (shape.width, shape.height);
    let plane = w * h;
    let colour = shape.channels >= 3;
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let top = lo.abs().max(hi.abs()).max(1e-12);
    let quantise = |v: f64| ((v.clamp(0.0, 1.0) * LEVELS).round() / LEVELS * 255.0).round() as u8;
    let pixel = |i: usize| -> RGBColor {
        match (palette, colour) {
            (Palette::Image, false) => {
                let g = 255 - quantise(values[i]);
                RGBColor(g, g, g)
            }
            (Palette::Image, true) => RGBColor(
                quantise(values[i]),
                quantise(values[plane + i]),
                quantise(values[2 * plane + i]),
            ),
            (Palette::Weights, false) => {
                let s = f64::from(quantise(values[i].abs() / top)) / 255.0;
                let fade = |c: u8| (255.0 - (255.0 - f64::from(c)) * s).round() as u8;
                match values[i] >= 0.0 {
                    true => RGBColor(fade(178), fade(24), fade(43)),
                    false => RGBColor(fade(33), fade(102), fade(172)),
                }
            }
            (Palette::Weights, true) => {
                let stretch = |v: f64| quantise((v - lo) / (hi - lo).max(1e-12));
                RGBColor(
                    stretch(values[i]),
                    stretch(values[plane + i]),
                    stretch(values[2 * plane + i]),
                )
            }
        }
    };
    let mut out = Vec::new();
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let c = pixel(y * w + x);
            let mut end = x + 1;
            while end < w && pixel(y * w + end) == c {
                end += 1;
            }
            if c != RGBColor(255, 255, 255) {
                out.push((x as i32, y as i32, end as i32, c));
            }
            x = end;
        }
    }
    out
}

/// The class names of a dataset of `classes` classes: CIFAR-10's ten words for colour
/// images of ten classes, else the class numbers.
pub fn class_names(classes: usize, colour: bool) -> Vec<String> {
    const CIFAR: [&str; 10] = [
        "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ];
    match (classes, colour) {
        (10, true) => CIFAR.iter().map(|s| s.to_string()).collect(),
        _ => (0..classes).map(|c| c.to_string()).collect(),
    }
}

/// The columns of a weight matrix `w` (`inputs × outputs`, row-major) as tiles: every
/// column when `pick` is `None` (a linear classifier's templates, captioned by `names`), else
/// the `pick` columns of largest norm (an MLP's first-layer units, captioned "unit j"),
/// largest first.
pub fn weight_tiles(w: &[f64], outputs: usize, pick: Option<usize>, names: &[String]) -> Vec<Tile> {
    let inputs = w.len() / outputs.max(1);
    let column = |j: usize| -> Vec<f64> { (0..inputs).map(|i| w[i * outputs + j]).collect() };
    let mut order: Vec<usize> = (0..outputs).collect();
    if pick.is_some() {
        let norm = |j: usize| column(j).iter().map(|v| v * v).sum::<f64>();
        let norms: Vec<f64> = (0..outputs).map(norm).collect();
        order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
        order.truncate(pick.unwrap_or(outputs));
    }
    order
        .into_iter()
        .map(|j| Tile {
            values: column(j),
            caption: match pick {
                Some(_) => format!("unit {j}"),
                None => names.get(j).cloned().unwrap_or_else(|| j.to_string()),
            },
        })
        .collect()
}
