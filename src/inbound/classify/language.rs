//! The language of a mail: `zh-Hans`, `zh-Hant`, `en` or `other`. Simplified and Traditional
//! script are told apart with a character table derived from the national character sets
//! themselves (through encoding_rs): a Han character Big5 cannot encode is Simplified-only; one
//! Big5 encodes but that lies outside GBK's GB2312 region is Traditional-only.

use super::{truncate, MAX_TEXT_BYTES};
use crate::domain::Language;
use std::sync::LazyLock;

const HAN_START: u32 = 0x4E00;
const HAN_END: u32 = 0x9FFF;

/// For each character of the CJK Unified Ideographs block: bit 0 = Simplified-only, bit 1 =
/// Traditional-only. Derived from Big5 (Traditional) and the GB2312 region of GBK (Simplified).
static SCRIPT_TABLE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut table = vec![0u8; (HAN_END - HAN_START + 1) as usize];
    let mut buf = [0u8; 4];
    for (i, slot) in table.iter_mut().enumerate() {
        let Some(c) = char::from_u32(HAN_START + i as u32) else {
            continue;
        };
        let s = c.encode_utf8(&mut buf);
        let (big5, _, big5_err) = encoding_rs::BIG5.encode(s);
        let (gbk, _, gbk_err) = encoding_rs::GBK.encode(s);
        let in_big5 = !big5_err && big5.len() == 2;
        let in_gb2312 = !gbk_err
            && gbk.len() == 2
            && (0xB0..=0xF7).contains(&gbk[0])
            && (0xA1..=0xFE).contains(&gbk[1]);
        *slot = match (in_gb2312, in_big5) {
            (true, false) => 1,
            (false, true) => 2,
            _ => 0,
        };
    }
    table
});

pub(super) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// 1: Simplified-only, 2: Traditional-only, 0: shared or outside the table.
pub(super) fn script_of(c: char) -> u8 {
    let u = c as u32;
    if (HAN_START..=HAN_END).contains(&u) {
        SCRIPT_TABLE[(u - HAN_START) as usize]
    } else {
        0
    }
}

/// The language of a mail, from its subject and (new) text.
pub fn detect_language(subject: &str, text: &str) -> Language {
    let (mut han, mut latin, mut other, mut simp, mut trad, mut kana) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for c in subject
        .chars()
        .chain(truncate(text, MAX_TEXT_BYTES).chars())
    {
        if is_han(c) {
            han += 1;
            match script_of(c) {
                1 => simp += 1,
                2 => trad += 1,
                _ => {}
            }
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        } else if c.is_alphabetic() && !matches!(c as u32, 0x3040..=0x30FF | 0xAC00..=0xD7AF) {
            // Accented Latin, Cyrillic …: not English.
            other += 1;
        } else if c.is_alphabetic() {
            // Kana and Hangul weigh more: a few of them make a mail Japanese or Korean.
            other += 2;
            kana += 1;
        }
    }
    // Japanese writes kanji among kana (particles, endings); Korean may carry hanja among
    // Hangul. Kanji are not Chinese then: a mail whose kana/Hangul are at least a fifth of its
    // Han characters is neither zh-Hans nor zh-Hant (it gets the fallback wording).
    if kana >= 2 && kana * 5 >= han {
        return Language::Other;
    }
    // A Chinese mail often carries English product names; a few Han characters in an English
    // mail (a name) do not make it Chinese. One Han character carries about as much as a word.
    if han >= 2 && han * 4 >= latin / 2 {
        return if trad > simp {
            Language::ZhHant
        } else {
            Language::ZhHans
        };
    }
    if latin == 0 && other == 0 {
        return if han > 0 {
            Language::ZhHans
        } else {
            Language::Other
        };
    }
    if other * 5 > latin {
        return Language::Other;
    }
    Language::En
}
