//! Satisfaction survey answers: what a customer's reply to the survey says. Pure.
//!
//! The survey asks for four scores from 1 to 5 — response speed, problem solving, attitude,
//! overall — and customers answer the way people do: `5 4 5 5`, `5,4,5,5`, `响应速度5 问题解决4
//! 服务态度5 总体5`, a single `4`, or just a word: `满意`, `非常满意`, `不满意`, `very satisfied`.
//! A single score or word is the overall score.
//!
//! Invariants: only a short answer counts (a long mail that happens to contain "满意" is a normal
//! reply, not a vote), unless it replies to the survey itself; scores are always within 1–5.

use crate::domain::Scores;
use regex::Regex;
use std::sync::LazyLock;

/// Longest answer that is read as a vote when the mail does not reply to the survey itself, in
/// Han characters plus Latin words (Chinese is dense: 30 characters is a paragraph).
const SHORT: usize = 30;

fn length(text: &str) -> usize {
    let han = text
        .chars()
        .filter(|c| matches!(*c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF))
        .count();
    let words = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    han + words
}

/// Labelled scores: `响应速度：5`, `speed 4`, … The label decides which score it is.
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(响应速度|響應速度|速度|speed|response|问题解决|問題解決|解决|解決|solving|solution|resolution|服务态度|服務態度|态度|態度|attitude|总体评价|總體評價|总体|總體|整体|整體|overall)\s*[:：=]?\s*([1-5])\b")
        .expect("static regex")
});

/// Words, strongest first (so "非常满意" is not read as "满意", nor "不满意" as "满意").
const WORDS: &[(&str, u8)] = &[
    ("非常不满意", 1),
    ("非常不滿意", 1),
    ("很不满意", 1),
    ("很不滿意", 1),
    ("very dissatisfied", 1),
    ("very unsatisfied", 1),
    ("very poor", 1),
    ("terrible", 1),
    ("不满意", 2),
    ("不滿意", 2),
    ("not satisfied", 2),
    ("dissatisfied", 2),
    ("unsatisfied", 2),
    ("poor", 2),
    ("非常满意", 5),
    ("非常滿意", 5),
    ("很满意", 5),
    ("很滿意", 5),
    ("very satisfied", 5),
    ("excellent", 5),
    ("一般", 3),
    ("还行", 3),
    ("還行", 3),
    ("neutral", 3),
    ("average", 3),
    ("okay", 3),
    ("满意", 4),
    ("滿意", 4),
    ("satisfied", 4),
    ("good", 4),
];

/// Reads a survey answer from a reply's new text. `replies_to_survey`: the mail answers the survey
/// mail itself (In-Reply-To/References), so a longer text may still be a vote.
pub fn parse(text: &str, replies_to_survey: bool) -> Option<Scores> {
    let text = text.trim();
    if text.is_empty() || (!replies_to_survey && length(text) > SHORT) {
        return None;
    }
    // Only the first few lines: below that is usually a signature.
    let head: String = text.lines().take(3).collect::<Vec<_>>().join(" ");

    let mut labelled = [None; 4];
    for c in LABELLED.captures_iter(&head) {
        let label = c[1].to_lowercase();
        let score = c[2].parse::<u8>().ok()?;
        let slot = match label.as_str() {
            "响应速度" | "響應速度" | "速度" | "speed" | "response" => 0,
            "问题解决" | "問題解決" | "解决" | "解決" | "solving" | "solution" | "resolution" => {
                1
            }
            "服务态度" | "服務態度" | "态度" | "態度" | "attitude" => 2,
            _ => 3,
        };
        labelled[slot] = Some(score);
    }
    if let Some(overall) = labelled[3].or_else(|| {
        // Labels for all three parts but no overall: their rounded mean.
        let parts: Vec<u8> = labelled[..3].iter().flatten().copied().collect();
        (parts.len() == 3).then(|| {
            ((parts.iter().map(|&p| u32::from(p)).sum::<u32>() as f64) / 3.0).round() as u8
        })
    }) {
        return Some(Scores {
            speed: labelled[0],
            solving: labelled[1],
            attitude: labelled[2],
            overall,
        });
    }

    // Bare digits: four in a row, or one.
    let digits: Vec<u8> = head
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(99))
        .map(|n| if (1..=5).contains(&n) { n as u8 } else { 0 })
        .collect();
    let other_text = head
        .chars()
        .filter(|c| c.is_alphabetic() && !c.is_ascii_digit())
        .count();
    match digits.as_slice() {
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x > 0) => {
            return Some(Scores {
                speed: Some(*a),
                solving: Some(*b),
                attitude: Some(*c),
                overall: *d,
            })
        }
        [a] if *a > 0 && other_text <= 12 => {
            return Some(Scores {
                speed: None,
                solving: None,
                attitude: None,
                overall: *a,
            })
        }
        _ => {}
    }

    let lower = head.to_lowercase();
    WORDS
        .iter()
        .find(|(w, _)| contains_word(&lower, w))
        .map(|(_, score)| Scores {
            speed: None,
            solving: None,
            attitude: None,
            overall: *score,
        })
}

/// `w` in `s`, as a whole word when `w` is Latin.
fn contains_word(s: &str, w: &str) -> bool {
    if !w.is_ascii() {
        return s.contains(w);
    }
    s.match_indices(w).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + w.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overall(s: &str) -> Option<u8> {
        parse(s, false).map(|x| x.overall)
    }

    #[test]
    fn four_scores_in_order() {
        let s = parse("5 4 5 5", false).expect("scores");
        assert_eq!(
            (s.speed, s.solving, s.attitude, s.overall),
            (Some(5), Some(4), Some(5), 5)
        );
        assert_eq!(
            parse("5，4，5，3\n\n发自我的iPhone", false).map(|s| s.overall),
            Some(3)
        );
        assert_eq!(parse("5/4/5/5", false).map(|s| s.solving), Some(Some(4)));
    }

    #[test]
    fn labelled_scores_in_any_order() {
        let s = parse("总体：4 服务态度：5 响应速度：3 问题解决：4", false).expect("scores");
        assert_eq!(
            (s.speed, s.solving, s.attitude, s.overall),
            (Some(3), Some(4), Some(5), 4)
        );
        let s = parse("Speed 5, solving 2, attitude 4", false).expect("scores");
        assert_eq!(s.overall, 4, "mean of three when overall is missing");
    }

    #[test]
    fn words_and_single_scores_are_the_overall_score() {
        assert_eq!(overall("满意"), Some(4));
        assert_eq!(overall("非常满意！"), Some(5));
        assert_eq!(overall("不满意"), Some(2));
        assert_eq!(overall("非常不滿意"), Some(1));
        assert_eq!(overall("Very satisfied, thanks"), Some(5));
        assert_eq!(overall("not satisfied"), Some(2));
        assert_eq!(overall("4"), Some(4));
        assert_eq!(overall("给 5 分"), Some(5));
    }

    #[test]
    fn ordinary_replies_are_not_votes() {
        assert_eq!(overall("我的订单号是 2026111500123，请帮我查一下"), None);
        assert_eq!(
            overall("Thanks, but the app still crashes on Android 15 when I open it."),
            None
        );
        assert_eq!(overall(""), None);
        assert_eq!(overall("9 9 9 9"), None, "out of range");
        let long = "总的来说还算满意，不过有几点想说一下：第一，电话一直占线；第二，上门时间改了两次；第三，师傅的工具不全。";
        assert_eq!(parse(long, false), None, "too long to be a vote");
        assert_eq!(
            parse(long, true).map(|s| s.overall),
            Some(4),
            "unless it answers the survey"
        );
    }

    #[test]
    fn unsatisfied_is_a_low_overall_or_any_one() {
        let s = |a, b, c, d| Scores {
            speed: Some(a),
            solving: Some(b),
            attitude: Some(c),
            overall: d,
        };
        assert!(s(5, 5, 5, 2).unsatisfied(2));
        assert!(s(5, 1, 5, 4).unsatisfied(2));
        assert!(!s(4, 3, 4, 3).unsatisfied(2));
    }
}
