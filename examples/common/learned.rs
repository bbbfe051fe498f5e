//! What a trained classifier learned, and where it goes wrong, drawn from the test set:
//! `confusion.svg` (which classes it takes for which), `mistakes.svg` (the test images it is
//! most sure of and wrong about, each "true → predicted (p)") and `templates.svg` (what its
//! first layer looks for: the units with the largest weights, as images).

use std::path::{Path, PathBuf};

use downhill::data::ImageShape;
use downhill::loss::Loss;
use downhill::metrics::ConfusionMatrix;
use downhill::prelude::*;

use super::cli::Failure;
use super::pictures::{self, Palette, Tile};
use super::search::write_templates;

/// Most confidently wrong test images drawn.
const MISTAKES: usize = 24;
/// First-layer units drawn.
const UNITS: usize = 20;

/// A test image the model got wrong: its row, true and predicted class, and the model's
/// confidence in the prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mistake {
    pub row: usize,
    pub label: usize,
    pub predicted: usize,
    pub confidence: f64,
}

/// The test images `model` gets wrong, most confident first: confidence is the softmax of
/// the scores at the predicted class for a softmax or hinge model, the output itself for one
/// whose outputs are probabilities (a sigmoid output).
pub fn mistakes(model: &mut Mlp<f32>, test: &Dataset<f32>) -> Result<Vec<Mistake>, Failure> {
    let (x, labels) = test.all().to_matrix()?;
    let classes = model.num_classes();
    let mut scores = Matrix::zeros(x.rows(), classes)?;
    model.scores(x.as_ref(), scores.as_mut())?;
    let softmax = matches!(model.loss_fn(), Loss::SoftmaxCrossEntropy | Loss::Hinge);
    let mut wrong: Vec<Mistake> = scores
        .as_slice()
        .chunks_exact(classes)
        .zip(labels)
        .enumerate()
        .filter_map(|(row, (s, label))| {
            let s: Vec<f64> = s.iter().map(|&v| f64::from(v)).collect();
            let predicted = (0..classes).fold(0, |best, c| if s[c] > s[best] { c } else { best });
            let confidence = if softmax {
                let top = s[predicted];
                let sum: f64 = s.iter().map(|v| (v - top).exp()).sum();
                1.0 / sum
            } else {
                s[predicted]
            };
            (predicted != label).then_some(Mistake {
                row,
                label,
                predicted,
                confidence,
            })
        })
        .collect();
    wrong.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.row.cmp(&b.row))
    });
    Ok(wrong)
}

/// Writes `confusion.svg`, `mistakes.svg` and `templates.svg` into `dir` for `model` on the
/// `test` set (`confusion` its confusion matrix there), each title starting with `what`.
/// Returns the files written.
pub fn draw(
    dir: &Path,
    what: &str,
    model: &mut Mlp<f32>,
    test: &Dataset<f32>,
    confusion: &ConfusionMatrix,
) -> Result<Vec<PathBuf>, Failure> {
    let shape = ImageShape::square(test.num_features()).ok_or_else(|| {
        Failure::Input(format!(
            "--plot: {} features are not a square image (grey n×n or colour 3×n×n)",
            test.num_features()
        ))
    })?;
    let colour = shape.channels == 3;
    let names = pictures::class_names(confusion.classes(), colour);
    let accuracy = confusion.accuracy().unwrap_or(f64::NAN);
    let mut written = Vec::new();

    let title = format!("{what}: test-set confusion (accuracy {accuracy:.4})");
    written.push(
        pictures::confusion(dir, "confusion.svg", &title, confusion, &names)
            .map_err(Failure::Input)?,
    );

    let wrong = mistakes(model, test)?;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let tiles: Vec<Tile> = wrong
        .iter()
        .take(MISTAKES)
        .filter_map(|m| {
            let pixels = test.row_bytes(m.row)?;
            Some(Tile {
                values: pixels.iter().map(|&p| f64::from(p) / 255.0).collect(),
                caption: format!(
                    "{} → {} ({:.2})",
                    name(m.label),
                    name(m.predicted),
                    m.confidence
                ),
            })
        })
        .collect();
    let title = format!(
        "{what}: the {} test images it is surest of and wrong about ({} wrong in all), true → predicted (p)",
        tiles.len(),
        wrong.len()
    );
    written.push(
        pictures::tiles(
            dir,
            "mistakes.svg",
            &title,
            shape,
            &tiles,
            8,
            3,
            Palette::Image,
        )
        .map_err(Failure::Input)?,
    );

    if let Some(w) = model.weights(0) {
        let values: Vec<f64> = (0..w.rows())
            .flat_map(|i| (0..w.cols()).map(move |j| (i, j)))
            .map(|(i, j)| w.get(i, j).map_or(0.0, f64::from))
            .collect();
        // A network without hidden layers is a linear classifier: every column is a class.
        let hidden = model.widths().len() > 2;
        let title = match hidden {
            true => {
                format!("{what}: the {UNITS} first-layer units with the largest weights, as images")
            }
            false => format!("{what}: each class's column of W, as an image"),
        };
        let pick = hidden.then_some(UNITS);
        written.push(write_templates(
            dir,
            "templates.svg",
            &title,
            &values,
            w.cols(),
            pick,
        )?);
    }
    Ok(written)
}
