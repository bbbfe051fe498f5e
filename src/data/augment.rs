//! Data augmentation: every training image distorted a little, differently every epoch, as
//! it is gathered.
//!
//! A network that has seen a digit only where the scanner put it has to learn "a 7 two
//! pixels to the left" as a new thing. Showing it each training image moved, turned and
//! resized a little — a new draw every epoch — teaches it that these do not change the
//! class: LeCun et al.'s table gives a 784-800-10 network 1.6% test error on plain MNIST and
//! 1.1% with affine distortions, and Simard et al. (2003) lower it further with elastic ones.
//!
//! An [`Augment`] is set on the *training* [`Dataset`](crate::data::Dataset)
//! ([`with_augment`](crate::data::Dataset::with_augment)) and applied when a batch of a
//! training step is gathered (a [`Batch`](crate::data::Batch) that carries its
//! [`TrainingStep`](crate::data::TrainingStep), as the [`Trainer`](crate::Trainer)'s do):
//!
//! * each image is resampled from its stored bytes — shifted by whole pixels (up to
//!   [`shift`](Augment::shift) each way), rotated by up to [`rotate`](Augment::rotate)
//!   degrees and scaled by up to [`scale`](Augment::scale) about its centre (one affine
//!   map, bilinear), optionally displaced by a smooth random field
//!   ([`elastic`](Augment::elastic)) — and rounded back to bytes, so the rest of the gather
//!   (the feature transform, the sparse first layer's nonzero blocks) is what it always is;
//! * the distortion of image `row` in epoch `e` is drawn from its own stream of the run's
//!   seed, `(seed, e, row)`: the same seed gives the same batches on any number of threads,
//!   and a resumed run the same as a straight one;
//! * a batch without a training step — what evaluation, scoring, [`accuracy`](crate::accuracy)
//!   and [`Model::evaluate`](crate::Model::evaluate) read — is gathered as stored. Validation
//!   and test sets are never distorted (and need no augmentation set on them).
//!
//! ```
//! use downhill::data::{Augment, Dataset, ImageShape};
//!
//! // A 4×4 image with one lit pixel, and an augmentation that only shifts.
//! let mut pixels = vec![0u8; 16];
//! pixels[5] = 200; // row 1, column 1
//! let aug = Augment::new(ImageShape::new(1, 4, 4)?).shift(1)?;
//! let moved = aug.sample(&pixels, 0, 1, 0)?;
//! // Whole-pixel shifts move the pixel without blurring it.
//! assert_eq!(moved.iter().filter(|&&p| p == 200).count(), 1);
//! assert_eq!(moved.iter().filter(|&&p| p != 0).count(), 1);
//! // The same seed, epoch and row: the same image.
//! assert_eq!(moved, aug.sample(&pixels, 0, 1, 0)?);
//!
//! // The command-line form.
//! let aug: Augment = Augment::parse("shift:2,rotate:10,scale:0.1", ImageShape::new(1, 28, 28)?)?;
//! assert_eq!(aug.to_string(), "shift:2,rotate:10,scale:0.1");
//! let data = Dataset::<f32>::from_bytes(vec![0; 2 * 784], 784, vec![0, 1], 2)?.with_augment(aug)?;
//! assert!(data.augment().is_some());
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;

use rand::RngExt;

use crate::error::{Error, Result};
use crate::rng::{derive, purpose, stream_rng};
use crate::validate::{require, same_size};

/// The shape of the images a dataset's rows hold: `channels` planes of `height × width`
/// pixels, one plane after the other (MNIST: 1 × 28 × 28; CIFAR-10: 3 × 32 × 32, red, green,
/// blue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Colour planes (1 for grey).
    pub channels: usize,
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
}

impl ImageShape {
    /// `channels` planes of `height × width` pixels (each at least 1).
    pub fn new(channels: usize, height: usize, width: usize) -> Result<Self> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(Error::param(
                "image shape",
                format!("{channels}×{height}×{width}"),
                "channels, height and width must each be at least 1",
            ));
        }
        channels
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| {
                Error::param(
                    "image shape",
                    format!("{channels}×{height}×{width}"),
                    "its pixel count overflows usize",
                )
            })?;
        Ok(ImageShape {
            channels,
            height,
            width,
        })
    }

    /// The square image a row of `features` values is, if it is one: grey `n × n` when
    /// `features` is a square (784: 28 × 28), else three colour planes of `n × n` when it is
    /// three times one (3072: CIFAR-10's 3 × 32 × 32). No number is both.
    pub fn square(features: usize) -> Option<Self> {
        let side = |n: usize| {
            let s = (n as f64).sqrt().round() as usize;
            (s > 0 && s * s == n).then_some(s)
        };
        match (side(features), features % 3) {
            (Some(s), _) => Some(ImageShape {
                channels: 1,
                height: s,
                width: s,
            }),
            (None, 0) => side(features / 3).map(|s| ImageShape {
                channels: 3,
                height: s,
                width: s,
            }),
            _ => None,
        }
    }

    /// Values per image: `channels · height · width`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no pixels (never, for one made by [`ImageShape::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Random distortions of training images, drawn per `(seed, epoch, image)` and applied as a
/// training step's batch is gathered from the stored bytes: set one on a training set with
/// [`Dataset::with_augment`](crate::data::Dataset::with_augment); batches without a
/// training step (validation, test, evaluation) read the images as stored. Made with
/// [`Augment::new`] and the setters (each checks its value), or from the command-line form
/// with [`Augment::parse`]; [guide chapter 9](crate::guide::ch9_beyond_the_lecture) shows it
/// in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    shape: ImageShape,
    shift: usize,
    rotate: f64,
    scale: f64,
    elastic: Option<(f64, f64)>,
}

impl Augment {
    /// No distortion yet, for images of `shape`: add some with the setters.
    pub fn new(shape: ImageShape) -> Self {
        Augment {
            shape,
            shift: 0,
            rotate: 0.0,
            scale: 0.0,
            elastic: None,
        }
    }

    /// Shifts each image by a whole number of pixels, drawn uniformly from `−pixels ..=
    /// pixels`, across and down (independently). At most the image's smaller side.
    pub fn shift(mut self, pixels: usize) -> Result<Self> {
        require(
            pixels <= self.shape.height.min(self.shape.width),
            "augment shift",
            pixels,
            "must be at most the image's smaller side (in pixels)",
        )?;
        self.shift = pixels;
        Ok(self)
    }

    /// Rotates each image about its centre by an angle drawn uniformly from `−degrees ..=
    /// degrees` (0 to 180).
    pub fn rotate(mut self, degrees: f64) -> Result<Self> {
        require(
            (0.0..=180.0).contains(&degrees),
            "augment rotate",
            degrees,
            "must be an angle in degrees from 0 to 180",
        )?;
        self.rotate = degrees;
        Ok(self)
    }

    /// Scales each image about its centre by a factor drawn uniformly from `1 − by ..= 1 +
    /// by` (`by` in `[0, 1)`: 0.1 is ±10%).
    pub fn scale(mut self, by: f64) -> Result<Self> {
        require(
            (0.0..1.0).contains(&by),
            "augment scale",
            by,
            "must be a fraction in [0, 1) (0.1 scales by up to ±10%)",
        )?;
        self.scale = by;
        Ok(self)
    }

    /// Elastic distortion (Simard et al., 2003): every pixel moved by a random field —
    /// uniform in `[−1, 1]` per pixel and direction, smoothed by a Gaussian of standard
    /// deviation `sigma` pixels (which shrinks it: a few hundredths for `sigma` 4), times
    /// `alpha`. `alpha` finite and not negative, `sigma` in `(0, 32]`. Simard et al. used
    /// `alpha` 34 and `sigma` 4 on MNIST's digits: moves of a pixel or two that bend
    /// strokes the way handwriting does. It costs more than the affine distortions: two
    /// smoothing passes per image.
    pub fn elastic(mut self, alpha: f64, sigma: f64) -> Result<Self> {
        require(
            alpha.is_finite() && alpha >= 0.0,
            "augment elastic alpha",
            alpha,
            "must be finite and not negative (pixels)",
        )?;
        require(
            sigma > 0.0 && sigma <= 32.0,
            "augment elastic sigma",
            sigma,
            "must be in (0, 32] (pixels)",
        )?;
        self.elastic = Some((alpha, sigma));
        Ok(self)
    }

    /// An augmentation from its command-line form: comma-separated parts, each a name and
    /// its values after colons — `shift:PIXELS`, `rotate:DEGREES`, `scale:FRACTION`,
    /// `elastic:ALPHA:SIGMA` — in any order, each at most once; `none` (or an empty spec) is
    /// no distortion. A bad part is an error naming it.
    ///
    /// ```
    /// use downhill::data::{Augment, ImageShape};
    /// use downhill::error::ErrorKind;
    ///
    /// let digits = ImageShape::new(1, 28, 28)?;
    /// let aug = Augment::parse("rotate:10,shift:2,elastic:34:4", digits)?;
    /// assert_eq!(aug.to_string(), "shift:2,rotate:10,elastic:34:4");
    /// let err = Augment::parse("shift:2,rotate:ten", digits).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidParameter { name: "augment rotate", .. }));
    /// assert_eq!(err.to_string(), "invalid augment rotate = ten: must be a number of degrees");
    /// assert!(Augment::parse("shear:3", digits).is_err());
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn parse(spec: &str, shape: ImageShape) -> Result<Self> {
        let mut aug = Augment::new(shape);
        let spec = spec.trim();
        if spec.is_empty() || spec == "none" {
            return Ok(aug);
        }
        let mut seen: Vec<&str> = Vec::new();
        for part in spec.split(',') {
            let mut fields = part.trim().split(':');
            let name = fields.next().unwrap_or_default();
            let values: Vec<&str> = fields.collect();
            let (label, count): (&'static str, usize) = match name {
                "shift" => ("augment shift", 1),
                "rotate" => ("augment rotate", 1),
                "scale" => ("augment scale", 1),
                "elastic" => ("augment elastic", 2),
                _ => {
                    return Err(Error::param(
                        "augment",
                        part,
                        "each part must be shift:PIXELS, rotate:DEGREES, scale:FRACTION or \
                         elastic:ALPHA:SIGMA",
                    ))
                }
            };
            if seen.contains(&name) {
                return Err(Error::param(label, part, "must be given at most once"));
            }
            seen.push(name);
            if values.len() != count {
                let want = match count {
                    1 => "takes one value after a colon",
                    _ => "takes two values, ALPHA:SIGMA",
                };
                return Err(Error::param(label, part, want));
            }
            let number = |v: &str, what: &'static str| -> Result<f64> {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| Error::param(label, v, what))
            };
            aug = match name {
                "shift" => {
                    let v = values[0].trim();
                    let k = v
                        .parse::<usize>()
                        .map_err(|_| Error::param(label, v, "must be a whole number of pixels"))?;
                    aug.shift(k)?
                }
                "rotate" => aug.rotate(number(values[0], "must be a number of degrees")?)?,
                "scale" => aug.scale(number(values[0], "must be a fraction, such as 0.1")?)?,
                _ => {
                    let alpha = number(values[0], "must be a number of pixels (ALPHA:SIGMA)")?;
                    let sigma = number(values[1], "must be a number of pixels (ALPHA:SIGMA)")?;
                    aug.elastic(alpha, sigma)?
                }
            };
        }
        Ok(aug)
    }

    /// The image shape it distorts.
    pub fn image_shape(&self) -> ImageShape {
        self.shape
    }

    /// Whether it leaves every image as it is (nothing set, or every amount 0).
    pub fn is_identity(&self) -> bool {
        self.shift == 0
            && self.rotate == 0.0
            && self.scale == 0.0
            && self.elastic.is_none_or(|(alpha, _)| alpha == 0.0)
    }

    /// Image `row` as training sees it in epoch `epoch` of a run seeded with `seed`: what
    /// the gather of a training batch computes for it, as bytes (`image` is the stored
    /// row, [`ImageShape::len`] bytes).
    pub fn sample(&self, image: &[u8], seed: u64, epoch: usize, row: usize) -> Result<Vec<u8>> {
        same_size(
            "Augment::sample",
            "image bytes",
            self.shape.len(),
            image.len(),
        )?;
        let mut out = vec![0; image.len()];
        self.distort(
            image,
            &mut out,
            epoch_key(seed, epoch),
            row,
            &mut Scratch::default(),
        );
        Ok(out)
    }

    /// Writes image `row`'s distortion under `key` (an epoch's, [`epoch_key`]) into `out`.
    /// `image` and `out` are [`ImageShape::len`] bytes (the caller's promise).
    pub(crate) fn distort(
        &self,
        image: &[u8],
        out: &mut [u8],
        key: u64,
        row: usize,
        scratch: &mut Scratch,
    ) {
        let ImageShape {
            channels,
            height: h,
            width: w,
        } = self.shape;
        let mut rng = stream_rng(key, row as u64);
        let k = self.shift as i64;
        let (dx, dy) = match k {
            0 => (0, 0),
            _ => (rng.random_range(-k..=k), rng.random_range(-k..=k)),
        };
        let angle = match self.rotate {
            0.0 => 0.0,
            r => rng.random_range(-r..=r).to_radians(),
        };
        let factor = match self.scale {
            0.0 => 1.0,
            s => rng.random_range(1.0 - s..=1.0 + s),
        };
        let field = match self.elastic {
            Some((alpha, sigma)) if alpha > 0.0 => {
                scratch.field(&mut rng, h, w, alpha, sigma);
                true
            }
            _ => false,
        };
        if angle == 0.0 && factor == 1.0 && !field {
            shift_planes(image, out, self.shape, dx, dy);
            return;
        }
        // Output pixel (x, y) reads the source at the inverse map of the distortion: undo
        // the shift, then the rotation and scaling about the centre, then add the field.
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let (sin, cos) = angle.sin_cos();
        let plane = h * w;
        for y in 0..h {
            for x in 0..w {
                let u = x as f64 - cx - dx as f64;
                let v = y as f64 - cy - dy as f64;
                let mut sx = (cos * u + sin * v) / factor + cx;
                let mut sy = (-sin * u + cos * v) / factor + cy;
                if field {
                    sx += f64::from(scratch.ux[y * w + x]);
                    sy += f64::from(scratch.uy[y * w + x]);
                }
                for c in 0..channels {
                    let src = &image[c * plane..(c + 1) * plane];
                    out[c * plane + y * w + x] = bilinear(src, h, w, sx, sy);
                }
            }
        }
    }
}

/// The seed of an epoch's distortions in a run seeded with `seed`.
pub(crate) fn epoch_key(seed: u64, epoch: usize) -> u64 {
    derive(seed, &[purpose::AUGMENT, epoch as u64])
}

/// Whole-pixel shifts: a copy, zeros where the image moved away.
fn shift_planes(image: &[u8], out: &mut [u8], shape: ImageShape, dx: i64, dy: i64) {
    let (h, w) = (shape.height as i64, shape.width as i64);
    let plane = (h * w) as usize;
    out.fill(0);
    let cols = (dx.max(0), (w + dx).min(w));
    for c in 0..shape.channels {
        for y in (dy.max(0))..(h + dy).min(h) {
            let to = c * plane + (y * w) as usize;
            let from = c * plane + ((y - dy) * w) as usize;
            let (a, b) = (cols.0 as usize, cols.1 as usize);
            let shift = |i: usize| (i as i64 - dx) as usize;
            out[to + a..to + b].copy_from_slice(&image[from + shift(a)..from + shift(b)]);
        }
    }
}

/// The plane `src` (`h × w`) at `(x, y)` by bilinear interpolation, zero outside, rounded to
/// a byte.
fn bilinear(src: &[u8], h: usize, w: usize, x: f64, y: f64) -> u8 {
    if !(x > -1.0 && y > -1.0 && x < w as f64 && y < h as f64) {
        return 0;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let at = |xi: i64, yi: i64| -> f64 {
        if xi < 0 || yi < 0 || xi >= w as i64 || yi >= h as i64 {
            0.0
        } else {
            f64::from(src[yi as usize * w + xi as usize])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
    let v = top * (1.0 - fy) + bottom * fy;
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Buffers an image's elastic field is drawn and smoothed in, reused from image to image.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    ux: Vec<f32>,
    uy: Vec<f32>,
    tmp: Vec<f32>,
    kernel: Vec<f32>,
}

impl Scratch {
    /// Draws the displacement field into `ux`, `uy`: uniform in `[−1, 1]`, smoothed by a
    /// Gaussian of `sigma` (weights summing to 1, zero beyond the edges), times `alpha`.
    fn field(
        &mut self,
        rng: &mut crate::rng::DefaultRng,
        h: usize,
        w: usize,
        alpha: f64,
        sigma: f64,
    ) {
        let radius = (3.0 * sigma).ceil() as usize;
        self.kernel.clear();
        self.kernel.extend((0..=2 * radius).map(|i| {
            let d = i as f64 - radius as f64;
            (-d * d / (2.0 * sigma * sigma)).exp() as f32
        }));
        let sum: f32 = self.kernel.iter().sum();
        self.kernel.iter_mut().for_each(|k| *k /= sum);
        for field in [&mut self.ux, &mut self.uy] {
            field.clear();
            field.extend((0..h * w).map(|_| rng.random_range(-1.0f32..=1.0)));
            smooth(field, &mut self.tmp, &self.kernel, h, w, radius);
            field.iter_mut().for_each(|v| *v *= alpha as f32);
        }
    }
}

/// `field` (`h × w`) convolved with `kernel` (`2·radius + 1` taps) along rows, then along
/// columns, zero beyond the edges.
fn smooth(
    field: &mut [f32],
    tmp: &mut Vec<f32>,
    kernel: &[f32],
    h: usize,
    w: usize,
    radius: usize,
) {
    tmp.clear();
    tmp.resize(h * w, 0.0);
    let taps = |n: usize, i: usize| {
        let lo = i.saturating_sub(radius);
        let hi = (i + radius).min(n - 1);
        (lo..=hi).map(move |j| (j, kernel[j + radius - i]))
    };
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = taps(w, x).map(|(j, k)| field[y * w + j] * k).sum();
        }
    }
    for y in 0..h {
        for x in 0..w {
            field[y * w + x] = taps(h, y).map(|(j, k)| tmp[j * w + x] * k).sum();
        }
    }
}

/// The command-line form [`Augment::parse`] reads: `shift:2,rotate:10,scale:0.1`
/// (`none` for no distortion).
impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.shift > 0 {
            parts.push(format!("shift:{}", self.shift));
        }
        if self.rotate > 0.0 {
            parts.push(format!("rotate:{}", self.rotate));
        }
        if self.scale > 0.0 {
            parts.push(format!("scale:{}", self.scale));
        }
        if let Some((alpha, sigma)) = self.elastic {
            parts.push(format!("elastic:{alpha}:{sigma}"));
        }
        match parts.is_empty() {
            true => f.write_str("none"),
            false => f.write_str(&parts.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> Vec<u8> {
        // A bar three pixels wide down the middle of a 9×9 image.
        (0..81)
            .map(|i| {
                if (3..6).contains(&(i % 9)) && (1..8).contains(&(i / 9)) {
                    250
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn whole_pixel_shifts_move_pixels_exactly() {
        let shape = ImageShape::new(1, 9, 9).unwrap();
        let img = digit();
        let mut out = vec![0; 81];
        shift_planes(&img, &mut out, shape, 2, -1);
        for y in 0..9i64 {
            for x in 0..9i64 {
                let (sx, sy) = (x - 2, y + 1);
                let want = if (0..9).contains(&sx) && (0..9).contains(&sy) {
                    img[(sy * 9 + sx) as usize]
                } else {
                    0
                };
                assert_eq!(out[(y * 9 + x) as usize], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_zero_rotation_and_unit_scale_reproduce_the_shift_path() {
        // The bilinear path at integer offsets is the copy.
        let img = digit();
        for (x, y) in [(0.0, 0.0), (3.0, 4.0), (8.0, 8.0)] {
            assert_eq!(bilinear(&img, 9, 9, x, y), img[y as usize * 9 + x as usize]);
        }
        assert_eq!(bilinear(&img, 9, 9, -1.0, 0.0), 0);
        assert_eq!(bilinear(&img, 9, 9, 3.5, 4.0), 250);
        assert_eq!(bilinear(&img, 9, 9, 2.5, 4.0), 125);
    }

    #[test]
    fn rotations_keep_most_of_the_ink_and_colour_planes_move_together() {
        let grey = digit();
        let shape = ImageShape::new(3, 9, 9).unwrap();
        let colour: Vec<u8> = [grey.clone(), grey.clone(), grey.clone()].concat();
        let aug = Augment::new(shape)
            .rotate(30.0)
            .unwrap()
            .scale(0.1)
            .unwrap();
        for row in 0..20 {
            let out = aug.sample(&colour, 7, 1, row).unwrap();
            let (r, g, b) = (&out[..81], &out[81..162], &out[162..]);
            assert!(r == g && g == b, "row {row}");
            let ink = |p: &[u8]| p.iter().map(|&v| u32::from(v)).sum::<u32>() as f64;
            let ratio = ink(r) / ink(&grey);
            assert!((0.6..1.5).contains(&ratio), "row {row}: {ratio}");
        }
    }

    #[test]
    fn elastic_fields_are_smooth_and_bounded_by_alpha() {
        let mut scratch = Scratch::default();
        let mut rng = crate::rng::seeded(3);
        scratch.field(&mut rng, 28, 28, 34.0, 4.0);
        let top = scratch
            .ux
            .iter()
            .chain(&scratch.uy)
            .fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(top > 0.3 && top <= 34.0, "{top}");
        // Neighbours move alike: the field is smooth.
        let jump = scratch
            .ux
            .windows(2)
            .fold(0.0f32, |m, p| m.max((p[1] - p[0]).abs()));
        assert!(jump < top, "{jump} vs {top}");
    }

    #[test]
    fn square_shapes_are_found_and_others_are_not() {
        assert_eq!(ImageShape::square(784), ImageShape::new(1, 28, 28).ok());
        assert_eq!(ImageShape::square(3072), ImageShape::new(3, 32, 32).ok());
        assert_eq!(ImageShape::square(10), None);
        assert_eq!(ImageShape::square(0), None);
    }
}
