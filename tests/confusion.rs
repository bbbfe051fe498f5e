//! The confusion matrix: its rows add up to each class's examples, its total to the
//! dataset's size, and its diagonal to the accuracy — computed by an `Mlp`'s own evaluation
//! (in the pass that gives its accuracy, on its threads, the first layer sparse) and by the
//! generic path from the scores, which agree cell for cell.

mod common;

use common::{momentum_sgd, SHIPPED};
use downhill::model::{evaluate_classifier, SparseInput};
use downhill::prelude::*;

/// A 784-32-10 network trained four epochs on 1000 shipped digits, and the 2000 test digits.
fn trained(threads: usize, sparse: SparseInput) -> (Mlp<f32>, Dataset<f32>) {
    let mnist = load_mnist::<f32>(SHIPPED).unwrap();
    let mut mlp = Mlp::<f32>::builder(784)
        .hidden(32, Activation::Relu)
        .classes(10)
        .sparse_input(sparse)
        .block_rows(256)
        .seed(3)
        .build()
        .unwrap();
    Trainer::new(4)
        .unwrap()
        .threads(threads)
        .unwrap()
        .run(
            &mut mlp,
            &mut momentum_sgd(0.1, 0.9, 64),
            &mnist.train.take(1000),
            None,
        )
        .unwrap();
    (mlp, mnist.test)
}

#[test]
fn rows_sum_to_the_class_counts_and_the_diagonal_to_the_accuracy() {
    for (threads, sparse) in [
        (1, SparseInput::Auto),
        (2, SparseInput::Auto),
        (2, SparseInput::Never),
    ] {
        let (mut mlp, test) = trained(threads, sparse);
        let e = mlp.evaluate(&test).unwrap();
        let m = e.confusion.clone().unwrap();
        assert_eq!(m.classes(), 10);
        assert_eq!(m.total(), test.len() as u64);
        for class in 0..10 {
            let count = test.labels().iter().filter(|&&y| y == class).count() as u64;
            assert_eq!(m.support(class), count, "class {class}");
            assert_eq!(m.row(class).iter().sum::<u64>(), count, "class {class}");
        }
        // The columns add up to what the model predicted: the same total.
        assert_eq!(
            (0..10).map(|c| m.predicted(c)).sum::<u64>(),
            test.len() as u64
        );
        let acc = accuracy(&mut mlp, &test).unwrap();
        assert_eq!(e.accuracy, Some(acc));
        assert_eq!(m.correct() as f64 / test.len() as f64, acc);
        assert_eq!(m.accuracy(), Some(acc));
        // A trained network is right on most of each class and wrong somewhere.
        assert!(acc > 0.8 && acc < 1.0, "{acc}");
        assert!(!m.top_confusions(3).is_empty());

        // The generic path, from the scores, counts the same cells.
        let generic = evaluate_classifier(&mut mlp, &test, None).unwrap();
        assert_eq!(generic.confusion.as_ref(), Some(&m));
        assert_eq!(confusion_matrix(&mut mlp, &test).unwrap(), m);
    }
}

#[test]
fn per_class_figures_follow_from_the_counts() {
    let (mut mlp, test) = trained(1, SparseInput::Auto);
    let m = confusion_matrix(&mut mlp, &test).unwrap();
    for c in m.per_class() {
        let k = c.class;
        assert_eq!(c.support, m.support(k));
        let hits = m.count(k, k) as f64;
        assert_eq!(c.recall, Some(hits / m.support(k) as f64));
        assert_eq!(m.class_accuracy(k), c.recall);
        assert_eq!(c.precision, Some(hits / m.predicted(k) as f64));
        let (p, r) = (c.precision.unwrap(), c.recall.unwrap());
        assert!((c.f1.unwrap() - 2.0 * p * r / (p + r)).abs() < 1e-12);
    }
    let top = m.top_confusions(5);
    assert!(top.windows(2).all(|w| w[0].count >= w[1].count));
    assert!(top
        .iter()
        .all(|c| c.label != c.predicted && c.count == m.count(c.label, c.predicted)));
    let largest_off_diagonal = (0..10)
        .flat_map(|y| (0..10).filter(move |&p| p != y).map(move |p| (y, p)))
        .map(|(y, p)| m.count(y, p))
        .max()
        .unwrap();
    assert_eq!(top[0].count, largest_off_diagonal);
}

#[test]
fn a_classifier_with_more_classes_than_the_data_counts_them_all() {
    // A linear classifier of 3 classes on data labelled 0 and 1: its matrix is 3 × 3, and a
    // prediction of class 2 is counted in column 2.
    let x = Matrix::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2).unwrap();
    let data = Dataset::from_matrix(x, vec![0, 1, 1], 2).unwrap();
    let mut model = LinearClassifier::<f64>::builder(2, 3).build().unwrap();
    model
        .params_mut()
        .copy_from_slice(&[5.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0]);
    let m = confusion_matrix(&mut model, &data).unwrap();
    assert_eq!(m.classes(), 3);
    assert_eq!(m.row(0), [1, 0, 0]);
    assert_eq!(m.row(1), [0, 0, 2]);
    assert_eq!(m.accuracy(), Some(1.0 / 3.0));
}
