//! The data losses on known values: softmax cross-entropy stays finite and right for huge
//! scores, the SVM hinge matches the cs231n worked example, both gradients have the textbook
//! form, and a model with all-zero weights has the loss of a uniform guess.

mod common;

use common::Mix;
use downhill::error::ErrorKind;
use downhill::loss::{l2_penalty, log_sum_exp};
use downhill::prelude::*;

const CE: Loss = Loss::SoftmaxCrossEntropy;

#[track_caller]
fn close(a: f64, b: f64, tol: f64) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{a} != {b} (tol {tol})"
    );
}

/// Loss and `scale · ∂L/∂s` of one row, into a fresh buffer (filled with NaN first, so an
/// entry the loss forgot to write shows).
fn loss_and_grad<T: Scalar>(loss: Loss, s: &[T], y: usize, scale: T) -> (T, Vec<T>) {
    let mut g = vec![T::nan(); s.len()];
    let l = loss.row_loss_and_grad(s, y, scale, &mut g).unwrap();
    (l, g)
}

#[test]
fn softmax_is_stable_for_huge_scores() {
    // (scores, label, expected loss)
    let cases: [(&[f64], usize, f64); 9] = [
        (&[1e4, -1e4, 0.0], 0, 0.0),
        (&[1e4, -1e4, 0.0], 1, 2e4),
        (&[1e4, -1e4, 0.0], 2, 1e4),
        (&[-1e4, -1e4, -1e4], 0, 3f64.ln()),
        (&[-1e4, -1e4, -1e4], 2, 3f64.ln()),
        (&[1e4, 1e4], 0, 2f64.ln()),
        (&[1e4, 1e4], 1, 2f64.ln()),
        (&[1e300, -1e300], 1, 2e300),
        (&[-1e4, 0.0, -1e4], 0, 1e4),
    ];
    for (s, y, want) in cases {
        let l = CE.row_loss(s, y).unwrap();
        let (lg, g) = loss_and_grad(CE, s, y, 1.0);
        for (name, v) in [("row_loss", l), ("row_loss_and_grad", lg)] {
            assert!(v.is_finite(), "{name}({s:?}, {y}) = {v}");
            close(v, want, 1e-12);
        }
        assert!(g.iter().all(|v| v.is_finite()), "grad of {s:?}: {g:?}");
        let sum: f64 = g.iter().sum();
        assert!(sum.abs() < 1e-12, "grad of {s:?} sums to {sum}");
        // softmax − onehot: the true class's entry is p_y − 1 ≤ 0, the others p_j ≥ 0.
        for (j, &v) in g.iter().enumerate() {
            assert!(if j == y { v <= 0.0 } else { v >= 0.0 }, "{g:?}");
        }
    }
    // The gradients themselves, where they are exact.
    assert_eq!(
        loss_and_grad(CE, &[1e4, -1e4, 0.0], 1, 1.0).1,
        [1.0, -1.0, 0.0]
    );
    assert_eq!(loss_and_grad(CE, &[1e4, 1e4], 0, 1.0).1, [-0.5, 0.5]);
    let (_, g) = loss_and_grad(CE, &[-1e4, -1e4, -1e4], 0, 1.0);
    for (v, want) in g.iter().zip([-2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]) {
        close(*v, want, 1e-15);
    }
}

#[test]
fn softmax_is_stable_in_f32() {
    // e^100 already overflows f32; the shifted computation never forms it.
    let s = [100.0f32, -100.0, 0.0];
    assert_eq!(CE.row_loss(&s, 0).unwrap(), 0.0);
    assert_eq!(CE.row_loss(&s, 1).unwrap(), 200.0);
    let (l, g) = loss_and_grad(CE, &[1e4f32, 1e4], 1, 1.0);
    assert!((l - 2f32.ln()).abs() < 1e-6, "{l}");
    assert_eq!(g, [0.5, -0.5]);
}

#[test]
fn log_sum_exp_known_values() {
    close(log_sum_exp(&[1000.0, 1000.0]), 1000.0 + 2f64.ln(), 1e-15);
    close(log_sum_exp(&[-1000.0, -1000.0]), -1000.0 + 2f64.ln(), 1e-15);
    close(log_sum_exp(&[0.0, 0.0, 0.0, 0.0]), 4f64.ln(), 1e-15);
    close(
        log_sum_exp(&[1.0, 2.0, 3.0]),
        (1f64.exp() + 2f64.exp() + 3f64.exp()).ln(),
        1e-15,
    );
    assert_eq!(log_sum_exp(&[7.5]), 7.5);
    assert!((log_sum_exp(&[1000.0f32, 1000.0]) - (1000.0 + 2f32.ln())).abs() < 1e-4);
}

#[test]
fn softmax_of_equal_scores_is_ln_c() {
    for c in 1..=12 {
        let s = vec![0.0f64; c];
        for y in [0, c - 1] {
            close(CE.row_loss(&s, y).unwrap(), (c as f64).ln(), 1e-15);
            let scale = 0.25;
            let (l, g) = loss_and_grad(CE, &s, y, scale);
            close(l, (c as f64).ln(), 1e-15);
            for (j, &v) in g.iter().enumerate() {
                let p = scale / c as f64;
                let want = if j == y { p - scale } else { p };
                close(v, want, 1e-15);
            }
        }
    }
}

#[test]
fn hinge_matches_the_cs231n_example() {
    // max(0, 5.1 − 3.2 + 1) + max(0, −1.7 − 3.2 + 1) = 2.9 + 0
    let s = [3.2, 5.1, -1.7];
    close(Loss::Hinge.row_loss(&s, 0).unwrap(), 2.9, 1e-12);
    let (l, g) = loss_and_grad(Loss::Hinge, &s, 0, 0.5);
    close(l, 2.9, 1e-12);
    // One violator (class 1): +scale there, −1·scale on the true class, 0 elsewhere.
    assert_eq!(g, [-0.5, 0.5, 0.0]);

    // The lecture's other two columns: a car scored 4.9 with the cat at 1.3 and frog 2.0
    // has zero loss; the frog column gives 12.9.
    close(Loss::Hinge.row_loss(&[1.3, 4.9, 2.0], 1).unwrap(), 0.0, 0.0);
    close(
        Loss::Hinge.row_loss(&[2.2, 2.5, -3.1], 2).unwrap(),
        12.9,
        1e-12,
    );
    let (l, g) = loss_and_grad(Loss::Hinge, &[2.2, 2.5, -3.1], 2, 1.0);
    close(l, 12.9, 1e-12);
    assert_eq!(g, [1.0, 1.0, -2.0], "two violators");
}

#[test]
fn hinge_margin_is_strict() {
    // s_j − s_y + 1 = 0 exactly: not a violation.
    let (l, g) = loss_and_grad(Loss::Hinge, &[2.0, 1.0, -5.0], 0, 1.0);
    assert_eq!(l, 0.0);
    assert_eq!(g, [0.0, 0.0, 0.0]);
    // Every other class violating: the true class gets −(C−1)·scale.
    let (l, g) = loss_and_grad(Loss::Hinge, &[0.0, 0.0, 0.0, 0.0], 3, 2.0);
    assert_eq!(l, 3.0);
    assert_eq!(g, [2.0, 2.0, 2.0, -6.0]);
}

#[test]
fn row_loss_agrees_with_row_loss_and_grad() {
    for loss in [CE, Loss::Hinge] {
        for case in 0..200u64 {
            let c = 2 + (case % 9) as usize;
            let s = Mix(case).uniforms(c, 5.0);
            let y = (case as usize * 7) % c;
            let a = loss.row_loss(&s, y).unwrap();
            let (b, g) = loss_and_grad(loss, &s, y, 1.0);
            assert!(a.is_finite() && a >= 0.0);
            close(a, b, 1e-13);
            assert_eq!(g.len(), c);
            let sum: f64 = g.iter().sum();
            assert!(sum.abs() < 1e-12, "{loss}: gradient sums to {sum}");
        }
    }
}

/// Asserts that `loss`'s row gradient at `s` (label `y`) is, entry by entry, the central
/// difference with step 1e-6, within `tol(the analytic entry)`.
#[track_caller]
fn assert_central_differences(loss: Loss, s: &[f64], y: usize, tol: impl Fn(f64) -> f64) {
    let (_, g) = loss_and_grad(loss, s, y, 1.0);
    let h = 1e-6;
    for (j, &analytic) in g.iter().enumerate() {
        let (mut up, mut down) = (s.to_vec(), s.to_vec());
        up[j] += h;
        down[j] -= h;
        let numeric =
            (loss.row_loss(&up, y).unwrap() - loss.row_loss(&down, y).unwrap()) / (2.0 * h);
        assert!(
            (numeric - analytic).abs() < tol(analytic),
            "{loss} at {s:?} y {y}: d/d{j} analytic {analytic} numeric {numeric}"
        );
    }
}

#[test]
fn row_gradient_matches_central_differences() {
    // Random scores are almost surely away from the hinge's kinks (margin exactly 0).
    for loss in [CE, Loss::Hinge] {
        for case in 0..50u64 {
            let c = 2 + (case % 5) as usize;
            let s = Mix(1000 + case).uniforms(c, 3.0);
            let y = case as usize % c;
            assert_central_differences(loss, &s, y, |_| 1e-6);
        }
    }
}

#[test]
fn l2_penalty_values() {
    // ½ · 0.1 · (1 + 4 + 9) = 0.7
    close(l2_penalty(0.1, &[1.0, -2.0, 3.0]), 0.7, 1e-15);
    assert_eq!(l2_penalty(2.0, &[0.5]), 0.25);
    assert_eq!(l2_penalty(0.0, &[1.0, 2.0]), 0.0);
    assert_eq!(l2_penalty(1.0, &[] as &[f64]), 0.0);
}

#[test]
fn loss_names_parse_and_print() {
    assert_eq!(
        "softmax".parse::<Loss>().unwrap(),
        Loss::SoftmaxCrossEntropy
    );
    assert_eq!("svm".parse::<Loss>().unwrap(), Loss::Hinge);
    assert_eq!(
        "cross-entropy".parse::<Loss>().unwrap(),
        Loss::SoftmaxCrossEntropy
    );
    assert_eq!("hinge".parse::<Loss>().unwrap(), Loss::Hinge);
    let all = [
        Loss::SoftmaxCrossEntropy,
        Loss::Hinge,
        Loss::MeanSquared,
        Loss::BinaryCrossEntropy,
    ];
    for loss in all {
        assert_eq!(loss.to_string().parse::<Loss>().unwrap(), loss);
    }
    assert_eq!("mse".parse::<Loss>().unwrap(), Loss::MeanSquared);
    assert_eq!("bce".parse::<Loss>().unwrap(), Loss::BinaryCrossEntropy);
    assert_eq!(Loss::default(), Loss::SoftmaxCrossEntropy);
    for bad in ["l1", "", "Softmax", "svm "] {
        let err = bad.parse::<Loss>().unwrap_err();
        match err.kind() {
            ErrorKind::InvalidParameter {
                name: "loss",
                value,
                ..
            } => assert_eq!(value, bad),
            other => panic!("{bad:?}: expected InvalidParameter for loss, got {other:?}"),
        }
    }
}

fn small_batch_data(classes: usize) -> Dataset<f64> {
    let x = Mix(42).uniforms(7 * 5, 3.0);
    let labels = (0..7).map(|i| i % classes).collect();
    Dataset::from_matrix(Matrix::from_vec(x, 7, 5).unwrap(), labels, classes).unwrap()
}

#[test]
fn zero_weights_give_the_uniform_guess_loss() {
    for classes in [2, 3, 10] {
        let data = small_batch_data(classes);
        let ln_c = (classes as f64).ln();
        let mut mlp = Mlp::<f64>::builder(5)
            .hidden(4, Activation::Sigmoid)
            .hidden(3, Activation::Relu)
            .classes(classes)
            .init(Init::Zeros)
            .l2(0.5)
            .build()
            .unwrap();
        assert!(mlp.params().iter().all(|&w| w == 0.0));
        close(mlp.loss(&data.all()).unwrap(), ln_c, 1e-15);
        close(mlp.loss(&data.range(2..5).unwrap()).unwrap(), ln_c, 1e-15);

        let mut linear = LinearClassifier::<f64>::builder(5, classes)
            .init(Init::Zeros)
            .build()
            .unwrap();
        close(linear.loss(&data.all()).unwrap(), ln_c, 1e-15);

        // The hinge's uniform guess: every wrong class violates by exactly the margin 1.
        let mut hinge = LinearClassifier::<f64>::builder(5, classes)
            .init(Init::Zeros)
            .loss(Loss::Hinge)
            .build()
            .unwrap();
        close(
            hinge.loss(&data.all()).unwrap(),
            (classes - 1) as f64,
            1e-15,
        );
    }
}

#[test]
fn mlp_l2_adds_half_lambda_w_squared() {
    let data = small_batch_data(3);
    let all = data.all();
    let build = |l2: f64| {
        Mlp::<f64>::builder(5)
            .hidden(4, Activation::Tanh)
            .classes(3)
            .l2(l2)
            .seed(3)
            .build()
            .unwrap()
    };
    let (mut plain, mut reg) = (build(0.0), build(0.3));
    assert_eq!(plain.params(), reg.params());
    // Weights only: W1 is 5×4 at 0..20, b1 at 20..24, W2 is 4×3 at 24..36, b2 at 36..39.
    let p = plain.params();
    let weights: Vec<f64> = p[0..20].iter().chain(&p[24..36]).copied().collect();
    let penalty = 0.5 * 0.3 * weights.iter().map(|w| w * w).sum::<f64>();
    let diff = reg.loss(&all).unwrap() - plain.loss(&all).unwrap();
    close(diff, penalty, 1e-12);
}

#[test]
fn mean_squared_error_and_binary_cross_entropy_on_known_values() {
    let p = [0.2, 0.7, 0.1];
    // MSE against onehot(1) = [0, 1, 0]: (0.04 + 0.09 + 0.01)/3.
    close(
        Loss::MeanSquared.row_loss(&p, 1).unwrap(),
        0.14 / 3.0,
        1e-15,
    );
    let (_, g) = loss_and_grad(Loss::MeanSquared, &p, 1, 1.0);
    for (g, want) in g.iter().zip([0.4 / 3.0, -0.6 / 3.0, 0.2 / 3.0]) {
        close(*g, want, 1e-15);
    }
    // BCE: −(ln 0.8 + ln 0.7 + ln 0.9)/3; gradient (p − t)/(3·p(1 − p)).
    let want = -(0.8f64.ln() + 0.7f64.ln() + 0.9f64.ln()) / 3.0;
    close(
        Loss::BinaryCrossEntropy.row_loss(&p, 1).unwrap(),
        want,
        1e-15,
    );
    let (_, g) = loss_and_grad(Loss::BinaryCrossEntropy, &p, 1, 1.0);
    for (j, g) in g.iter().enumerate() {
        let t = if j == 1 { 1.0 } else { 0.0 };
        close(*g, (p[j] - t) / (3.0 * p[j] * (1.0 - p[j])), 1e-14);
    }
    // A saturated output costs 100 per wrong class (PyTorch's clamp), not infinity, and its
    // gradient stays finite.
    let l = Loss::BinaryCrossEntropy.row_loss(&[1.0, 0.0], 1).unwrap();
    close(l, 100.0, 1e-15);
    let (_, g) = loss_and_grad(Loss::BinaryCrossEntropy, &[1.0f64, 0.0], 1, 1.0);
    assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
}

#[test]
fn the_probability_losses_match_central_differences() {
    for loss in [Loss::MeanSquared, Loss::BinaryCrossEntropy] {
        for case in 0..50u64 {
            let c = 2 + (case % 5) as usize;
            // Outputs of a sigmoid, away from 0 and 1.
            let p: Vec<f64> = Mix(2000 + case)
                .uniforms(c, 0.45)
                .into_iter()
                .map(|u| 0.5 + u)
                .collect();
            let y = case as usize % c;
            assert_central_differences(loss, &p, y, |g| 1e-6 * g.abs().max(1.0));
        }
    }
}

#[test]
fn a_label_outside_the_scores_or_a_short_buffer_is_an_error_not_a_panic() {
    for loss in [CE, Loss::Hinge, Loss::MeanSquared, Loss::BinaryCrossEntropy] {
        let s = [0.1, 0.2, 0.3];
        let err = loss.row_loss(&s, 3).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Label {
                    label: 3,
                    classes: 3,
                    ..
                }
            ),
            "{err}"
        );
        let mut short = [0.0; 2];
        let err = loss.row_loss_and_grad(&s, 0, 1.0, &mut short).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Shape {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(loss.row_loss_and_grad(&s, 3, 1.0, &mut [0.0; 3]).is_err());
    }
}
