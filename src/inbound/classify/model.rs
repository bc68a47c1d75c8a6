//! The trained part of the classifier: logistic regression over hashed features (see
//! `features`). Three heads share the features: the category (multinomial logistic regression
//! over inquiry, status query, complaint, suggestion), major (binary, trained on complaints
//! only) and urgent (binary). Trained with AdaGrad stochastic gradient descent and L2
//! regularisation, in a fixed order, so the same examples give the same model byte for byte.
//!
//! Stored as `SDCM` version 1: magic, version, log2 of the feature space, the number of rows
//! (6), one f32 scale per row, then for every feature its 6 weights as i8 (weight = i8 ×
//! scale). About 0.8 MB; loads in a millisecond.

use super::features::{Features, DIM, DIM_BITS};

/// Weight rows: the 4 categories, then major, then urgent.
pub const ROWS: usize = 6;
const MAJOR: usize = 4;
const URGENT: usize = 5;

/// One labelled mail, as features.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Vec<u32>,
    /// Index in `Category::ALL`.
    pub category: usize,
    /// For complaints: major or not.
    pub major: Option<bool>,
    pub urgent: bool,
    /// How much it counts (an agent's correction counts more than a corpus mail).
    pub weight: f32,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    /// AdaGrad's base step.
    pub rate: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// How much a positive example of the urgent head counts against a negative one: urgent
    /// mail is rare, and a miss costs more than a false alarm.
    pub positive_weight: f32,
    /// The same for the major head (trained on complaints only): a major complaint missed
    /// misses the supervisor's 24-hour contact, a false one costs a supervisor's look.
    pub major_weight: f32,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            // Chosen by cross-validation on the shipped corpus, one fold per writer
            // (`cargo bench --bench pipeline -- classify-cv`); never on the blind sets.
            epochs: 8,
            rate: 0.4,
            l2: 1e-5,
            positive_weight: 6.0,
            major_weight: 6.0,
        }
    }
}

/// The model's answer for one mail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Probability of each category (`Category::ALL` order).
    pub category: [f32; 4],
    /// Probability that a complaint is major.
    pub major: f32,
    /// Probability that the mail is urgent.
    pub urgent: f32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("not a supportd classification model (bad magic or version)")]
    Format,
    #[error("model for a feature space of 2^{0}, this version uses 2^{DIM_BITS}")]
    Dimension(u32),
    #[error("model file truncated: {0} bytes, {1} expected")]
    Truncated(usize, usize),
}

/// Weights, feature-major: `w[f * ROWS + row]`, quantised.
#[derive(Clone)]
pub struct Model {
    scale: [f32; ROWS],
    weights: Vec<i8>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("features", &DIM)
            .field("scale", &self.scale)
            .finish()
    }
}

fn value(n: usize) -> f32 {
    1.0 / (n.max(1) as f32).sqrt()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn softmax(z: &[f32; 4]) -> [f32; 4] {
    let m = z.iter().cloned().fold(f32::MIN, f32::max);
    let e = z.map(|x| (x - m).exp());
    let s: f32 = e.iter().sum();
    e.map(|x| x / s)
}

/// A deterministic shuffle (xorshift64*), so training is reproducible.
fn shuffle(order: &mut [usize], seed: u64) {
    let mut s = seed | 1;
    for i in (1..order.len()).rev() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

impl Model {
    /// Trains a model on `examples`.
    pub fn train(examples: &[Example], o: TrainOptions) -> Model {
        let mut w = vec![0f32; DIM * ROWS];
        let mut g = vec![1e-6f32; DIM * ROWS];
        let mut order: Vec<usize> = (0..examples.len()).collect();
        for epoch in 0..o.epochs {
            shuffle(&mut order, 0x5eed_0000 + epoch as u64);
            for &k in &order {
                let ex = &examples[k];
                let x = value(ex.features.len());
                let mut z = [0f32; ROWS];
                for &f in &ex.features {
                    let base = f as usize * ROWS;
                    for (r, zr) in z.iter_mut().enumerate() {
                        *zr += w[base + r] * x;
                    }
                }
                let p = softmax(&[z[0], z[1], z[2], z[3]]);
                let mut grad = [0f32; ROWS];
                for c in 0..4 {
                    grad[c] = (p[c] - if c == ex.category { 1.0 } else { 0.0 }) * ex.weight;
                }
                let binary = |z: f32, y: bool, positive: f32| {
                    if y {
                        (sigmoid(z) - 1.0) * positive
                    } else {
                        sigmoid(z)
                    }
                };
                if let Some(m) = ex.major {
                    grad[MAJOR] = binary(z[MAJOR], m, o.major_weight) * ex.weight;
                }
                grad[URGENT] = binary(z[URGENT], ex.urgent, o.positive_weight) * ex.weight;
                for &f in &ex.features {
                    let base = f as usize * ROWS;
                    for (r, gr) in grad.iter().enumerate() {
                        if *gr == 0.0 {
                            continue;
                        }
                        let i = base + r;
                        let d = gr * x + o.l2 * w[i];
                        g[i] += d * d;
                        w[i] -= o.rate * d / g[i].sqrt();
                    }
                }
            }
        }
        Model::quantise(&w)
    }

    fn quantise(w: &[f32]) -> Model {
        let mut scale = [0f32; ROWS];
        for (r, s) in scale.iter_mut().enumerate() {
            let max = (0..DIM).map(|f| w[f * ROWS + r].abs()).fold(0f32, f32::max);
            *s = if max > 0.0 { max / 127.0 } else { 1.0 };
        }
        let weights = w
            .iter()
            .enumerate()
            .map(|(i, v)| (v / scale[i % ROWS]).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Model { scale, weights }
    }

    /// The model's answer for a mail's features.
    pub fn predict(&self, f: &Features) -> Prediction {
        let z = self.logits(&f.indices);
        Prediction {
            category: softmax(&[z[0], z[1], z[2], z[3]]),
            major: sigmoid(z[MAJOR]),
            urgent: sigmoid(z[URGENT]),
        }
    }

    fn logits(&self, features: &[u32]) -> [f32; ROWS] {
        let x = value(features.len());
        let mut acc = [0i32; ROWS];
        for &f in features {
            let base = f as usize * ROWS;
            if let Some(ws) = self.weights.get(base..base + ROWS) {
                for (a, q) in acc.iter_mut().zip(ws) {
                    *a += i32::from(*q);
                }
            }
        }
        let mut z = [0f32; ROWS];
        for r in 0..ROWS {
            z[r] = acc[r] as f32 * self.scale[r] * x;
        }
        z
    }

    /// Each feature's contribution to `row`'s logit (for a category: against the mean of the
    /// categories), in the features' order; only those that pushed towards it.
    fn contributions(&self, features: &[u32], row: usize) -> Vec<(u32, f32)> {
        let x = value(features.len());
        features
            .iter()
            .filter_map(|&i| {
                let base = i as usize * ROWS;
                let ws = self.weights.get(base..base + ROWS)?;
                let w = |r: usize| f32::from(ws[r]) * self.scale[r];
                let c = if row < 4 {
                    w(row) - (0..4).map(w).sum::<f32>() / 4.0
                } else {
                    w(row)
                } * x;
                (c > 0.0).then_some((i, c))
            })
            .collect()
    }

    /// The features that weighed most for `row` (a category index, 4 = major, 5 = urgent),
    /// strongest first, with their contribution to its logit (for a category: against the
    /// mean of the categories); only those that pushed towards it.
    pub fn top_features(&self, features: &[u32], row: usize, n: usize) -> Vec<(u32, f32)> {
        let out = self.contributions(features, row);
        // The n strongest, in the order a stable sort by contribution would give (ties keep the
        // features' order): selected first, so only those n are sorted.
        let by = |a: &(usize, (u32, f32)), b: &(usize, (u32, f32))| {
            b.1 .1.total_cmp(&a.1 .1).then(a.0.cmp(&b.0))
        };
        let mut ranked: Vec<(usize, (u32, f32))> = out.into_iter().enumerate().collect();
        if ranked.len() > n && n > 0 {
            ranked.select_nth_unstable_by(n - 1, by);
            ranked.truncate(n);
        }
        ranked.sort_unstable_by(by);
        ranked.truncate(n);
        ranked.into_iter().map(|(_, f)| f).collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 4 * ROWS + self.weights.len());
        out.extend_from_slice(b"SDCM");
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&DIM_BITS.to_le_bytes());
        out.extend_from_slice(&(ROWS as u32).to_le_bytes());
        for s in self.scale {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend(self.weights.iter().map(|w| *w as u8));
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Model, ModelError> {
        let u32_at = |i: usize| -> Option<u32> {
            b.get(i..i + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        if b.get(..4) != Some(b"SDCM") || u32_at(4) != Some(1) || u32_at(12) != Some(ROWS as u32) {
            return Err(ModelError::Format);
        }
        let bits = u32_at(8).ok_or(ModelError::Format)?;
        if bits != DIM_BITS {
            return Err(ModelError::Dimension(bits));
        }
        let head = 16 + 4 * ROWS;
        let want = head + DIM * ROWS;
        if b.len() != want {
            return Err(ModelError::Truncated(b.len(), want));
        }
        let mut scale = [0f32; ROWS];
        for (r, s) in scale.iter_mut().enumerate() {
            *s = f32::from_bits(u32_at(16 + 4 * r).ok_or(ModelError::Format)?);
        }
        Ok(Model {
            scale,
            weights: b[head..].iter().map(|x| *x as i8).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::classify::features::extract;

    fn ex(subject: &str, text: &str, category: usize, urgent: bool) -> Example {
        Example {
            features: extract(subject, text, &[], false).indices,
            category,
            major: (category == 2).then_some(false),
            urgent,
            weight: 1.0,
        }
    }

    /// The strongest features come out as a full stable sort by contribution gives them.
    #[test]
    fn top_features_are_a_stable_sort_s_first_n() {
        let m = Model::from_bytes(include_bytes!("model.bin")).expect("shipped model");
        let texts = [
            ("退款", "我要退款，订单 RT8812 已经三天了还没有到账！！"),
            (
                "Order",
                "My order has not arrived, please check. Site down, nobody can log in.",
            ),
            ("", "可以开发票吗？"),
        ];
        for (subject, text) in texts {
            let f = extract(subject, text, &["complaint-words"], false);
            for row in 0..ROWS {
                let mut want = m.contributions(&f.indices, row);
                want.sort_by(|a, b| b.1.total_cmp(&a.1));
                for n in [0, 1, 4, 1000] {
                    let mut w = want.clone();
                    w.truncate(n);
                    assert_eq!(
                        m.top_features(&f.indices, row, n),
                        w,
                        "{text} row {row} n {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn it_learns_separable_examples_and_round_trips_through_bytes() {
        let data = vec![
            ex("", "how do I reset my password", 0, false),
            ex("", "where is my order", 1, false),
            ex("", "this is terrible service, I am angry", 2, false),
            ex("", "it would be great if you added dark mode", 3, false),
            ex("", "site down, nobody can log in", 2, true),
        ];
        let m = Model::train(&data, TrainOptions::default());
        for (k, d) in data.iter().enumerate() {
            let p = m.predict(&Features {
                indices: d.features.clone(),
                ..Default::default()
            });
            let best = (0..4)
                .max_by(|a, b| p.category[*a].total_cmp(&p.category[*b]))
                .unwrap_or(0);
            assert_eq!(best, d.category, "example {k}: {p:?}");
            assert_eq!(p.urgent > 0.5, d.urgent, "example {k}: {p:?}");
        }
        let again = Model::train(&data, TrainOptions::default());
        assert_eq!(m.to_bytes(), again.to_bytes(), "deterministic");
        let back = Model::from_bytes(&m.to_bytes()).expect("loads");
        assert_eq!(back.to_bytes(), m.to_bytes());
        assert!(matches!(
            Model::from_bytes(b"nope"),
            Err(ModelError::Format)
        ));
    }
}
