//! The classifier's features: a mail's subject and new text as a set of hashed indices (the
//! "hashing trick", Weinberger et al. 2009) in `[0, DIM)`. Pure, allocation-light, no
//! vocabulary to ship: a feature is the FNV-1a hash of its namespace and text.
//!
//! - Chinese: character unigrams and bigrams of each run of Han characters (no word segmenter:
//!   character n-grams are the standard strong baseline for Chinese text classification, and
//!   cover Simplified, Traditional and Cantonese writing alike);
//! - Latin script: lowercased words and word bigrams; digits normalised (`RT8812` → `rt0000`);
//! - the subject's tokens again, in a namespace of their own (a subject says more per word);
//! - shape cues: `!!`, `??`, a question mark, a word in capitals, the mail's length class;
//! - every rule that fired (`r:<rule name>`), so the hand-written rules are evidence the model
//!   weighs, not the decision.

use super::language::is_han;

/// log2 of the feature space.
pub const DIM_BITS: u32 = 17;
/// The feature space: 131,072 hashed features.
pub const DIM: usize = 1 << DIM_BITS;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(ns: u8, parts: &[&[u8]]) -> u32 {
    let mut h = FNV_OFFSET ^ u64::from(ns);
    h = h.wrapping_mul(FNV_PRIME);
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(FNV_PRIME);
    }
    // Fold the high bits in: FNV's low bits alone are weaker.
    ((h ^ (h >> 32)) as u32) & (DIM as u32 - 1)
}

/// Namespaces.
const NS_HAN1: u8 = 1;
const NS_HAN2: u8 = 2;
const NS_WORD: u8 = 3;
const NS_WORD2: u8 = 4;
const NS_SUBJECT: u8 = 5;
const NS_SHAPE: u8 = 6;
const NS_RULE: u8 = 7;
const NS_BIAS: u8 = 8;

/// A mail's features: sorted, without repeats; with `names`, what each one is (for
/// explanations).
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub indices: Vec<u32>,
    pub names: Option<Vec<(u32, String)>>,
    /// With names: only these features' (empty: all).
    pub(super) wanted: Vec<u32>,
}

impl Features {
    fn add(&mut self, i: u32, name: impl FnOnce() -> String) {
        self.indices.push(i);
        if let Some(n) = &mut self.names {
            if self.wanted.is_empty() || self.wanted.contains(&i) {
                n.push((i, name()));
            }
        }
    }

    /// The name of feature `i`, when names were kept.
    pub fn name_of(&self, i: u32) -> Option<&str> {
        self.names
            .as_ref()?
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, n)| n.as_str())
    }
}

/// Text tokens: Han runs and Latin words, in order.
fn tokens(text: &str, mut on: impl FnMut(Token<'_>)) {
    let mut word = String::new();
    let mut prev_han: Option<char> = None;

    let flush = |word: &mut String, on: &mut dyn FnMut(Token<'_>)| {
        if !word.is_empty() {
            on(Token::Word(word));
            word.clear();
        }
    };
    for c in text.chars() {
        if is_han(c) {
            flush(&mut word, &mut on);
            on(Token::Han(c, prev_han));
            prev_han = Some(c);
            continue;
        }
        prev_han = None;
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                word.push(if l.is_ascii_digit() { '0' } else { l });
            }
        } else if c == '\'' && !word.is_empty() {
            // don't, can't: one word.
            word.push(c);
        } else {
            flush(&mut word, &mut on);
            if !c.is_whitespace() {
                on(Token::Punct(c));
            }
        }
    }
    flush(&mut word, &mut on);
}

enum Token<'a> {
    /// A Han character and the one before it in the same run.
    Han(char, Option<char>),
    Word(&'a str),
    Punct(char),
}

/// The features of a mail. `rules`: the names of the rules that fired. `explain`: keep each
/// feature's name.
pub fn extract(subject: &str, text: &str, rules: &[&str], explain: bool) -> Features {
    extract_with(subject, text, rules, explain, Vec::new())
}

/// The names of the features `wanted` of a mail (for explaining a few of them cheaply).
pub fn names(subject: &str, text: &str, rules: &[&str], wanted: &[u32]) -> Vec<(u32, String)> {
    if wanted.is_empty() {
        return Vec::new();
    }
    extract_with(subject, text, rules, true, wanted.to_vec())
        .names
        .unwrap_or_default()
}

fn extract_with(
    subject: &str,
    text: &str,
    rules: &[&str],
    explain: bool,
    wanted: Vec<u32>,
) -> Features {
    let mut f = Features {
        indices: Vec::with_capacity(2 * (subject.len() + text.len()) / 3 + 16),
        names: explain.then(Vec::new),
        wanted,
    };
    f.add(fnv(NS_BIAS, &[]), || "bias".into());
    let mut buf = [0u8; 8];
    for (part, ns_extra) in [(subject, Some(NS_SUBJECT)), (text, None)] {
        // The word before, kept in one buffer (`has_prev`: it is the token just before).
        let (mut prev_word, mut has_prev) = (String::new(), false);
        let (mut bangs, mut questions, mut caps) = (0usize, 0usize, false);
        tokens(part, |t| match t {
            Token::Han(c, prev) => {
                has_prev = false;
                let a = c.encode_utf8(&mut buf[..4]).len();
                let cs = &buf[..a];
                f.add(fnv(NS_HAN1, &[cs]), || c.to_string());
                if let Some(ns) = ns_extra {
                    f.add(fnv(ns, &[cs]), || format!("subject:{c}"));
                }
                if let Some(p) = prev {
                    let mut pb = [0u8; 4];
                    let ps = p.encode_utf8(&mut pb).as_bytes();
                    f.add(fnv(NS_HAN2, &[ps, cs]), || format!("{p}{c}"));
                    if let Some(ns) = ns_extra {
                        f.add(fnv(ns, &[ps, cs]), || format!("subject:{p}{c}"));
                    }
                }
            }
            Token::Word(w) => {
                f.add(fnv(NS_WORD, &[w.as_bytes()]), || w.to_string());
                if let Some(ns) = ns_extra {
                    f.add(fnv(ns, &[w.as_bytes()]), || format!("subject:{w}"));
                }
                if has_prev {
                    let p = prev_word.as_str();
                    f.add(fnv(NS_WORD2, &[p.as_bytes(), w.as_bytes()]), || {
                        format!("{p} {w}")
                    });
                }
                prev_word.clear();
                prev_word.push_str(w);
                has_prev = true;
            }
            Token::Punct(c) => {
                if !matches!(c, '-' | '/' | '.' | '@' | '_') {
                    has_prev = false;
                }
                match c {
                    '!' | '！' => bangs += 1,
                    '?' | '？' => questions += 1,
                    _ => {}
                }
            }
        });
        for w in part.split(|c: char| !c.is_ascii_alphabetic()) {
            if w.len() >= 4 && w.chars().all(|c| c.is_ascii_uppercase()) {
                caps = true;
            }
        }
        let shape = |name: &str| (fnv(NS_SHAPE, &[name.as_bytes()]), name.to_string());
        let mut cues = Vec::new();
        let p = if ns_extra.is_some() {
            "subject"
        } else {
            "text"
        };
        if bangs >= 2 {
            cues.push(format!("{p}:!!"));
        }
        if questions >= 1 {
            cues.push(format!("{p}:?"));
        }
        if questions >= 2 {
            cues.push(format!("{p}:??"));
        }
        if caps {
            cues.push(format!("{p}:CAPS"));
        }
        if ns_extra.is_none() {
            let n = part.chars().count();
            cues.push(
                match n {
                    0..=20 => "length:terse",
                    21..=120 => "length:short",
                    121..=600 => "length:medium",
                    _ => "length:long",
                }
                .to_string(),
            );
        }
        for c in cues {
            let (i, name) = shape(&c);
            f.add(i, || name);
        }
    }
    for (k, r) in rules.iter().enumerate() {
        f.add(fnv(NS_RULE, &[r.as_bytes()]), || format!("rule:{r}"));
        // Pairs of rules that fired together: a deadline *and* a failure, a threat *and* a loss —
        // what a linear model over single features cannot weigh on its own.
        for q in &rules[k + 1..] {
            let (a, b) = if r <= q { (r, q) } else { (q, r) };
            f.add(fnv(NS_RULE, &[a.as_bytes(), b"&", b.as_bytes()]), || {
                format!("rule:{a}&{b}")
            });
        }
    }
    f.indices.sort_unstable();
    f.indices.dedup();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_gives_characters_and_bigrams_english_words_and_pairs() {
        let f = extract(
            "退款",
            "我要退款 refund RT8812 now!!",
            &["complaint-words"],
            true,
        );
        let names: Vec<&str> = f
            .names
            .as_ref()
            .expect("names")
            .iter()
            .map(|(_, n)| n.as_str())
            .collect();
        for want in [
            "退",
            "退款",
            "subject:退款",
            "要退",
            "refund",
            "rt0000",
            "refund rt0000",
            "text:!!",
            "rule:complaint-words",
            "bias",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert!(f.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(f.indices.iter().all(|i| (*i as usize) < DIM));
        // The same text gives the same features.
        let g = extract(
            "退款",
            "我要退款 refund RT8812 now!!",
            &["complaint-words"],
            false,
        );
        assert_eq!(f.indices, g.indices);
    }
}
