//! The data path: dataset validation, standardisation, seeded splits, the minibatch order,
//! batches of datasets and of data of one's own, batch bounds checks, and loading an
//! MNIST-format directory (the shipped one, and one written here). Broken MNIST directories
//! are walked, with their allocations counted, in `hostile_input.rs`.

mod common;

use std::collections::BTreeSet;

use common::{assert_kind, pixels, write_mnist, TempDir, SHIPPED};
use downhill::data::{Examples, Minibatches};
use downhill::error::ErrorKind;
use downhill::prelude::*;
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;

#[track_caller]
fn assert_shape<T: std::fmt::Debug>(result: Result<T>, context: &str) {
    assert_kind!(result, ErrorKind::Shape { context: c, .. } if *c == context);
}

/// A one-feature dataset whose feature is the row's id, so rows can be traced.
fn ids(n: usize, classes: usize) -> Dataset<f64> {
    let x = (0..n).map(|i| i as f64).collect();
    let labels = (0..n).map(|i| i % classes).collect();
    Dataset::from_matrix(Matrix::from_vec(x, n, 1).unwrap(), labels, classes).unwrap()
}

/// The ids (feature 0) of every row of `ds`, in order; checks each label matches its id.
fn row_ids(ds: &Dataset<f64>, classes: usize) -> Vec<usize> {
    let (x, labels) = ds.all().to_matrix().unwrap();
    let out: Vec<usize> = x.as_slice().iter().map(|&v| v as usize).collect();
    for (&id, &label) in out.iter().zip(&labels) {
        assert_eq!(label, id % classes, "row {id} lost its label");
    }
    out
}

#[test]
fn from_bytes_rejects_a_shape_mismatch() {
    // 2 labels × 3 features needs 6 bytes.
    for (bytes, found) in [(5, 5), (7, 7)] {
        assert_kind!(
            Dataset::<f64>::from_bytes(vec![0; bytes], 3, vec![0, 1], 2),
            ErrorKind::Shape {
                context: "Dataset::new",
                expected: 6,
                found: f,
                ..
            } if *f == found
        );
    }
    // Zero features or zero classes are bad parameters, not shapes.
    assert_kind!(
        Dataset::<f64>::from_bytes(vec![], 0, vec![], 2),
        ErrorKind::InvalidParameter {
            name: "num_features",
            ..
        }
    );
    assert_kind!(
        Dataset::<f64>::from_bytes(vec![0; 3], 3, vec![0], 0),
        ErrorKind::InvalidParameter {
            name: "num_classes",
            ..
        }
    );
    assert!(Dataset::<f64>::from_bytes(vec![0; 6], 3, vec![0, 1], 2).is_ok());
}

#[test]
fn from_bytes_rejects_a_label_out_of_range() {
    // The first bad label is the one reported; labels given in memory have no file.
    assert_kind!(
        Dataset::<f64>::from_bytes(vec![0; 8], 2, vec![0, 2, 3, 1], 3),
        ErrorKind::Label {
            path: None,
            row: 2,
            label: 3,
            classes: 3
        }
    );
    let x = Matrix::from_vec(vec![0.0; 2], 2, 1).unwrap();
    assert_kind!(
        Dataset::from_matrix(x, vec![1, 7], 2),
        ErrorKind::Label {
            path: None,
            row: 1,
            label: 7,
            classes: 2
        }
    );
}

/// Mean and sample standard deviation of each feature of `ds` as gathered.
fn moments(ds: &Dataset<f64>) -> (Vec<f64>, Vec<f64>) {
    let (x, _) = ds.all().to_matrix().unwrap();
    let (n, f) = (x.rows(), x.cols());
    let mut mean = vec![0.0; f];
    let mut var = vec![0.0; f];
    for j in 0..f {
        mean[j] = (0..n).map(|i| x.row(i).unwrap()[j]).sum::<f64>() / n as f64;
        var[j] = (0..n)
            .map(|i| (x.row(i).unwrap()[j] - mean[j]).powi(2))
            .sum::<f64>()
            / (n - 1) as f64;
    }
    (mean, var.iter().map(|v| v.sqrt()).collect())
}

#[test]
fn standardize_gives_zero_mean_unit_std() {
    #[rustfmt::skip]
    let x = vec![
        1.0,   200.0, -3.0,
        2.0,   180.0,  0.5,
        4.0,   260.0,  7.0,
        8.0,   100.0, -1.0,
        16.0,  240.0,  2.0,
    ];
    let ds =
        Dataset::from_matrix(Matrix::from_vec(x, 5, 3).unwrap(), vec![0, 1, 0, 1, 0], 2).unwrap();
    let t = FeatureTransform::standardize(&ds, 0.0).unwrap();
    assert_eq!(t.len(), 3);
    let ds = ds.with_transform(t).unwrap();
    let (mean, std) = moments(&ds);
    for j in 0..3 {
        assert!(mean[j].abs() < 1e-12, "feature {j}: mean {}", mean[j]);
        assert!((std[j] - 1.0).abs() < 1e-9, "feature {j}: std {}", std[j]);
    }
    // Feature 0 by hand: mean 6.2, sample std sqrt(148.8 / 4).
    let std0 = (148.8f64 / 4.0).sqrt();
    let mut row = [0.0; 3];
    ds.gather_row(4, &mut row).unwrap();
    assert!((row[0] - (16.0 - 6.2) / std0).abs() < 1e-12, "{row:?}");
}

#[test]
fn standardize_with_eps_shrinks_the_std() {
    let x = vec![0.0, 1.0, 2.0, 3.0];
    let ds = Dataset::from_matrix(Matrix::from_vec(x, 4, 1).unwrap(), vec![0; 4], 1).unwrap();
    let eps = 0.5;
    let sd = (5.0f64 / 3.0).sqrt();
    let ds = ds
        .clone()
        .with_transform(FeatureTransform::standardize(&ds, eps).unwrap())
        .unwrap();
    let (mean, std) = moments(&ds);
    assert!(mean[0].abs() < 1e-12);
    assert!((std[0] - sd / (sd + eps)).abs() < 1e-12, "{}", std[0]);
}

#[test]
fn standardize_constant_feature() {
    // Feature 1 is constant.
    let x: Vec<f64> = vec![1.0, 5.0, 2.0, 5.0, 4.0, 5.0];
    let ds = Dataset::from_matrix(Matrix::from_vec(x, 3, 2).unwrap(), vec![0, 1, 0], 2).unwrap();
    assert_kind!(
        FeatureTransform::standardize(&ds, 0.0),
        ErrorKind::InvalidParameter { name: "eps", value, .. } if value == "0"
    );
    // With eps > 0 the constant feature maps to exactly 0.
    let t = FeatureTransform::standardize(&ds, 1e-8).unwrap();
    assert_eq!(t.apply(1, 5.0), Some(0.0));
    assert_eq!(t.apply(2, 0.0), None);
    let ds_t = ds.clone().with_transform(t).unwrap();
    let (x, _) = ds_t.all().to_matrix().unwrap();
    assert!((0..3).all(|i| x.row(i).unwrap()[1] == 0.0));
    assert!((0..3).all(|i| x.row(i).unwrap()[0].is_finite()));
    // Negative eps and fewer than two rows are errors too.
    assert_kind!(
        FeatureTransform::standardize(&ds, -1.0),
        ErrorKind::InvalidParameter { name: "eps", value, .. } if value == "-1"
    );
    assert_kind!(
        FeatureTransform::standardize(&ds.take(1), 1.0),
        ErrorKind::InvalidParameter { name: "standardize examples", value, .. } if value == "1"
    );
}

#[test]
fn standardize_composes_with_an_existing_transform() {
    let (n, f) = (6, 4);
    let bytes: Vec<u8> = (0..n * f).map(|k| ((k * 37 + 11) % 256) as u8).collect();
    let labels = vec![0, 1, 2, 0, 1, 2];
    let scaled = Dataset::<f64>::from_bytes(bytes.clone(), f, labels.clone(), 3)
        .unwrap()
        .with_transform(FeatureTransform::uniform(f, 1.0 / 255.0, 0.0))
        .unwrap();
    let floats: Vec<f64> = bytes.iter().map(|&b| b as f64 / 255.0).collect();
    let plain = Dataset::from_matrix(Matrix::from_vec(floats, n, f).unwrap(), labels, 3).unwrap();

    // With eps = 0 standardising is blind to a prior positive scaling; with eps > 0 it is
    // not (the eps is added to the std of the features *as transformed*), so both are checked.
    for eps in [0.0, 0.1] {
        let t = FeatureTransform::standardize(&scaled, eps).unwrap();
        let a = scaled.clone().with_transform(t).unwrap();
        let t = FeatureTransform::standardize(&plain, eps).unwrap();
        let b = plain.clone().with_transform(t).unwrap();

        let (xa, la) = a.all().to_matrix().unwrap();
        let (xb, lb) = b.all().to_matrix().unwrap();
        assert_eq!(la, lb);
        for (i, (u, v)) in xa.as_slice().iter().zip(xb.as_slice()).enumerate() {
            assert!((u - v).abs() < 1e-12, "eps {eps}, element {i}: {u} vs {v}");
        }
        if eps == 0.0 {
            let (mean, std) = moments(&a);
            assert!(mean.iter().all(|m| m.abs() < 1e-12), "{mean:?}");
            assert!(std.iter().all(|s| (s - 1.0).abs() < 1e-9), "{std:?}");
        }
    }
}

#[test]
fn split_is_disjoint_complete_and_seeded() {
    let (n, classes) = (50, 3);
    let data = ids(n, classes);
    let (train, valid) = data.split(15, 7).unwrap();
    assert_eq!((train.len(), valid.len()), (35, 15));
    assert_eq!(train.num_classes(), classes);
    let (t, v) = (row_ids(&train, classes), row_ids(&valid, classes));
    let ts: BTreeSet<usize> = t.iter().copied().collect();
    let vs: BTreeSet<usize> = v.iter().copied().collect();
    assert_eq!((ts.len(), vs.len()), (35, 15), "duplicated rows");
    assert!(ts.is_disjoint(&vs));
    let union: BTreeSet<usize> = ts.union(&vs).copied().collect();
    assert_eq!(union, (0..n).collect());
    // Shuffled, not the first or last 15.
    assert_ne!(vs, (0..15).collect());
    assert_ne!(vs, (35..50).collect());

    let (train2, valid2) = data.split(15, 7).unwrap();
    assert_eq!(
        (row_ids(&train2, classes), row_ids(&valid2, classes)),
        (t, v.clone())
    );
    let (_, valid3) = data.split(15, 8).unwrap();
    assert_ne!(row_ids(&valid3, classes), v, "another seed, the same split");

    // Edges: nothing or everything held out; more than everything is an error.
    let (tr, va) = data.split(0, 1).unwrap();
    assert_eq!((tr.len(), va.len()), (50, 0));
    let (tr, va) = data.split(50, 1).unwrap();
    assert_eq!((tr.len(), va.len()), (0, 50));
    assert_kind!(
        data.split(51, 1),
        ErrorKind::InvalidParameter { name: "validation", value, .. } if value == "51"
    );
}

/// The concatenated order of one epoch.
fn epoch(mb: &Minibatches) -> Vec<Vec<usize>> {
    mb.iter().map(|b| b.to_vec()).collect()
}

#[test]
fn minibatches_drop_the_last_partial_batch() {
    let (n, size) = (23, 5);
    let mut mb = Minibatches::new(n, size).unwrap();
    assert_eq!((mb.batch_size(), mb.num_batches()), (5, 4));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut orders = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        mb.shuffle(&mut rng);
        let batches = epoch(&mb);
        assert_eq!(batches.len(), 4);
        assert!(batches.iter().all(|b| b.len() == size));
        let flat: Vec<usize> = batches.concat();
        let distinct: BTreeSet<usize> = flat.iter().copied().collect();
        assert_eq!(distinct.len(), 20, "an index repeated within an epoch");
        assert!(flat.iter().all(|&i| i < n));
        seen.extend(distinct);
        orders.push(flat);
    }
    // Reshuffling changes the order, and over epochs every example gets its turn.
    assert!(orders.windows(2).all(|w| w[0] != w[1]));
    assert_eq!(seen, (0..n).collect());
}

#[test]
fn minibatches_before_shuffle_and_exact_fit() {
    let mb = Minibatches::new(6, 3).unwrap();
    assert_eq!(epoch(&mb), [vec![0, 1, 2], vec![3, 4, 5]]);
    let mb = Minibatches::new(6, 1).unwrap();
    assert_eq!(mb.num_batches(), 6);
    // The same seed gives the same shuffle.
    let shuffled = |seed| {
        let mut mb = Minibatches::new(40, 8).unwrap();
        mb.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        epoch(&mb)
    };
    assert_eq!(shuffled(5), shuffled(5));
    assert_ne!(shuffled(5), shuffled(6));
}

#[test]
fn minibatches_small_dataset_and_bad_size() {
    let mut mb = Minibatches::new(5, 8).unwrap();
    assert_eq!(mb.num_batches(), 1);
    mb.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(3));
    let batches = epoch(&mb);
    assert_eq!(batches.len(), 1);
    let mut all = batches[0].clone();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3, 4]);

    let empty = Minibatches::new(0, 4).unwrap();
    assert_eq!(empty.num_batches(), 0);
    assert_eq!(empty.iter().count(), 0);

    assert_kind!(
        Minibatches::new(10, 0),
        ErrorKind::InvalidParameter {
            name: "batch_size",
            ..
        }
    );
}

#[test]
fn batch_bounds_are_errors_not_panics() {
    let data = ids(10, 2);
    let idx = [9, 0, 4, 4];
    let batch = data.batch(&idx).unwrap();
    assert_eq!(batch.len(), 4);
    let (mut x, mut y) = (vec![0.0; 8], vec![0; 8]);
    assert_shape(batch.gather(2..6, &mut x, &mut y), "Batch::gather");
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 3..2;
    assert_kind!(
        batch.gather(backwards, &mut x, &mut y),
        ErrorKind::InvalidParameter {
            name: "batch rows",
            ..
        }
    );
    assert_shape(batch.gather(0..4, &mut x[..3], &mut y), "Batch::gather");
    assert_shape(batch.gather(0..4, &mut x, &mut y[..3]), "Batch::gather");
    // In range: rows in the batch's order, with their labels.
    batch.gather(1..4, &mut x, &mut y).unwrap();
    assert_eq!((&x[..3], &y[..3]), (&[0.0, 4.0, 4.0][..], &[0, 0, 0][..]));
    assert_eq!((batch.label(0), batch.label(4)), (Some(1), None));

    // The first index out of range is reported, with the number of examples.
    assert_kind!(
        data.batch(&[0, 10, 3]),
        ErrorKind::Shape {
            context: "Batch::indices",
            expected: 10,
            found: 10,
            ..
        }
    );
    assert_shape(data.batch(&[usize::MAX]), "Batch::indices");
    assert_kind!(
        data.range(3..11),
        ErrorKind::Shape {
            context: "Batch::range",
            expected: 10,
            found: 11,
            ..
        }
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 5..3;
    assert_kind!(
        data.range(backwards),
        ErrorKind::InvalidParameter {
            name: "batch rows",
            ..
        }
    );
    assert_shape(data.select(&[10]), "Dataset::select");
    let mut row = [0.0; 1];
    assert_shape(data.gather_row(10, &mut row), "Dataset::gather_row");
    assert_shape(data.gather_row(0, &mut []), "Dataset::gather_row");
    assert!(data.batch(&[]).unwrap().is_empty());
}

#[test]
fn load_shipped_mnist() {
    let mnist = load_mnist::<f32>(SHIPPED).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 2000));
    for ds in [&mnist.train, &mnist.test] {
        assert_eq!((ds.num_features(), ds.num_classes()), (784, 10));
        assert!(ds.is_bytes());
        let (x, labels) = ds.range(0..500).unwrap().to_matrix().unwrap();
        assert!(x.as_slice().iter().all(|&p| (0.0..=1.0).contains(&p)));
        // Real digits: ink at full intensity somewhere, and a black background.
        assert!(x.as_slice().contains(&1.0));
        let zeros = x.as_slice().iter().filter(|&&p| p == 0.0).count();
        assert!(zeros > x.as_slice().len() / 2);
        // All ten digits appear among the first 500.
        let digits: BTreeSet<usize> = labels.into_iter().collect();
        assert_eq!(digits, (0..10).collect());
    }
}

#[test]
fn load_mnist_from_written_files() {
    let dir = TempDir::new("data-mnist-ok");
    write_mnist(&dir, 2, 2, &[7, 0, 9], &[1, 2]);
    let mnist = load_mnist::<f64>(dir.path()).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (3, 2));
    assert_eq!(mnist.train.num_features(), 4);
    assert_eq!(mnist.train.labels(), [7, 0, 9]);
    let mut row = [0.0; 4];
    mnist.train.gather_row(1, &mut row).unwrap();
    let want: Vec<f64> = pixels(8)[4..].iter().map(|&p| p as f64 / 255.0).collect();
    for (a, b) in row.iter().zip(&want) {
        assert!((a - b).abs() < 1e-15, "{row:?} vs {want:?}");
    }
}

/// Data of one's own: points of a regression, batched like a dataset.
#[derive(Debug)]
struct Points {
    x: Vec<f64>,
}

impl Examples for Points {
    fn len(&self) -> usize {
        self.x.len()
    }
}

#[test]
fn batches_of_data_of_ones_own() {
    let pts = Points {
        x: vec![0.0, 10.0, 20.0, 30.0, 40.0],
    };
    let xs = |b: &Batch<'_, f64, Points>| -> Vec<f64> { b.rows().map(|i| b.data().x[i]).collect() };

    let all = Batch::<f64, Points>::all(&pts);
    assert_eq!((all.len(), xs(&all)), (5, pts.x.clone()));
    let range = Batch::<f64, Points>::range(&pts, 1..3).unwrap();
    assert_eq!(xs(&range), [10.0, 20.0]);
    assert_eq!(
        (range.row(0), range.row(1), range.row(2)),
        (Some(1), Some(2), None)
    );
    let picked = Batch::<f64, Points>::indices(&pts, &[4, 0, 4]).unwrap();
    assert_eq!(xs(&picked), [40.0, 0.0, 40.0]);
    assert_eq!(picked.row(3), None);
    let empty = Batch::<f64, Points>::range(&pts, 5..5).unwrap();
    assert!(empty.is_empty() && empty.rows().next().is_none());

    // The same bounds as for a dataset.
    assert_kind!(
        Batch::<f64, Points>::range(&pts, 2..6),
        ErrorKind::Shape {
            context: "Batch::range",
            expected: 5,
            found: 6,
            ..
        }
    );
    assert_kind!(
        Batch::<f64, Points>::indices(&pts, &[0, 5]),
        ErrorKind::Shape {
            context: "Batch::indices",
            expected: 5,
            found: 5,
            ..
        }
    );
    let none = Points { x: vec![] };
    assert!(Batch::<f64, Points>::all(&none).is_empty());
    assert_shape(Batch::<f64, Points>::indices(&none, &[0]), "Batch::indices");
}

#[test]
fn shuffle_fresh_depends_only_on_the_generator() {
    // Whatever order earlier epochs left behind, the same generator state gives the same
    // epoch: what makes a resumed run exact.
    let fresh = |earlier: u64| {
        let mut mb = Minibatches::new(30, 4).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(earlier);
        for _ in 0..3 {
            mb.shuffle(&mut rng);
        }
        mb.shuffle_fresh(&mut Xoshiro256PlusPlus::seed_from_u64(9));
        epoch(&mb)
    };
    let first = fresh(1);
    assert_eq!(first, fresh(2));
    assert_eq!(first.len(), 7);
    let mut mb = Minibatches::new(30, 4).unwrap();
    mb.shuffle_fresh(&mut Xoshiro256PlusPlus::seed_from_u64(10));
    assert_ne!(epoch(&mb), first, "another generator, the same epoch");
    // Plain shuffle, by contrast, continues from the previous order.
    let mut a = Minibatches::new(30, 4).unwrap();
    a.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(1));
    a.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(9));
    assert_ne!(epoch(&a), first);
}
