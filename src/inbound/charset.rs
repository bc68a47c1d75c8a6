//! Repairs for the charset breakage real mail carries (part of `parse`). Pure.
//!
//! mail-parser decodes what is declared; old Chinese clients and careless gateways declare the
//! wrong thing or nothing at all:
//! - unencoded 8-bit headers (a GBK or Big5 Subject or sender name, no RFC 2047);
//! - encoded-words split in the middle of a character (`=?UTF-8?B?5L?= =?UTF-8?B?itlofn?=`),
//!   which RFC 2047 forbids but clients send: adjacent words of one charset are joined first;
//! - bodies in GBK declared as UTF-8 (or with no charset), UTF-8 declared as Latin-1.
//!
//! Only text that came out broken (replacement characters, or Latin-1 mojibake of valid UTF-8)
//! is decoded again. The candidate that reads best wins: valid UTF-8 outright, else GB18030 or
//! Big5, whichever puts more of the text among its standard's most common characters (GB2312
//! level 1, Big5 level 1), the declared charset breaking ties. Every repair is described, for
//! `inspect` and the stored message; the raw bytes are never touched.

use encoding_rs::{Encoding, BIG5, GB18030, GBK, UTF_8};
use regex::bytes::Regex;
use std::sync::LazyLock;

const REPLACEMENT: char = '\u{FFFD}';

/// True when decoding left replacement characters.
pub fn broken(s: &str) -> bool {
    s.contains(REPLACEMENT)
}

/// How common the Han characters of `s` are in the standard of `enc` (+1 each in the most common
/// level, -1 each outside it).
fn commonness(s: &str, enc: &'static Encoding) -> i64 {
    let mut buf = [0u8; 4];
    let mut score = 0;
    for c in s.chars().filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c)) {
        let (bytes, _, bad) = if enc == BIG5 {
            BIG5.encode(c.encode_utf8(&mut buf))
        } else {
            GBK.encode(c.encode_utf8(&mut buf))
        };
        let common = !bad
            && bytes.len() == 2
            && if enc == BIG5 {
                (0xA440..=0xC67E).contains(&u16::from_be_bytes([bytes[0], bytes[1]]))
            } else {
                (0xB0..=0xD7).contains(&bytes[0]) && bytes[1] >= 0xA1
            };
        score += if common { 1 } else { -1 };
    }
    score
}

/// Decodes `bytes` with the charset that reads best. `hint`: the declared charset, which wins
/// ties. Returns the text and the charset used, or None when nothing decodes cleanly.
pub fn best_decode(
    bytes: &[u8],
    hint: Option<&'static Encoding>,
) -> Option<(String, &'static Encoding)> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some((s.to_string(), UTF_8));
    }
    let mut best: Option<(String, &'static Encoding, i64)> = None;
    let mut candidates: Vec<&'static Encoding> = Vec::new();
    if let Some(h) = hint {
        if h != UTF_8 {
            candidates.push(if h == GBK { GB18030 } else { h });
        }
    }
    for c in [GB18030, BIG5] {
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    }
    for enc in candidates {
        let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) else {
            continue;
        };
        let score = commonness(&text, enc);
        if best.as_ref().is_none_or(|(_, _, s)| score > *s) {
            best = Some((text.into_owned(), enc, score));
        }
    }
    best.map(|(t, e, _)| (t, e))
}

static ENCODED_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=").expect("static regex"));

fn q_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < s.len() => {
                match u8::from_str_radix(std::str::from_utf8(&s[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'='),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn b_decode(s: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let clean: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
        .unwrap_or_default()
}

/// Decodes a raw header value: RFC 2047 words (adjacent words of one charset joined before
/// decoding, so a character split across two words survives) and unencoded 8-bit text.
pub fn decode_header(raw: &[u8], hint: Option<&'static Encoding>) -> Option<String> {
    // Unfold.
    let raw: Vec<u8> = raw
        .iter()
        .copied()
        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    let mut out = String::new();
    let mut run: Option<(&'static Encoding, Vec<u8>)> = None;
    let mut last = 0;
    let flush = |run: &mut Option<(&'static Encoding, Vec<u8>)>, out: &mut String| {
        if let Some((enc, bytes)) = run.take() {
            let (text, _, _) = enc.decode(&bytes);
            out.push_str(&text);
        }
    };
    for m in ENCODED_WORD.captures_iter(&raw) {
        let whole = m.get(0)?;
        let between = &raw[last..whole.start()];
        let only_space = between.iter().all(|b| b.is_ascii_whitespace());
        if !(only_space && run.is_some()) {
            flush(&mut run, &mut out);
            out.push_str(
                &best_decode(between, hint)
                    .map(|(t, _)| t)
                    .unwrap_or_default(),
            );
        }
        let label = std::str::from_utf8(&m[1]).unwrap_or("utf-8");
        let label = label.split('*').next().unwrap_or(label);
        let enc = Encoding::for_label(label.as_bytes()).unwrap_or(UTF_8);
        let bytes = match &m[2] {
            b"B" | b"b" => b_decode(&m[3]),
            _ => q_decode(&m[3]),
        };
        match &mut run {
            Some((e, buf)) if *e == enc => buf.extend_from_slice(&bytes),
            _ => {
                flush(&mut run, &mut out);
                run = Some((enc, bytes));
            }
        }
        last = whole.end();
    }
    flush(&mut run, &mut out);
    out.push_str(
        &best_decode(&raw[last..], hint)
            .map(|(t, _)| t)
            .unwrap_or_default(),
    );
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (!out.is_empty()).then_some(out)
}

/// The 7-bit escape encodings (RFC 1468 ISO-2022-JP, RFC 1557 ISO-2022-KR, RFC 1922
/// ISO-2022-CN in its GB 2312 half, RFC 1843 HZ-GB-2312): bytes that are valid ASCII, and so
/// pass for "plain text", but carry Japanese, Korean or Chinese between escape or shift
/// sequences. Tried on 7-bit bytes only, whatever was declared (WHATWG maps ISO-2022-KR/CN and
/// HZ to the replacement encoding, and a missing charset reads them as ASCII).
///
/// Returns the text and the encoding's name, or None when `bytes` carry none of these forms or
/// do not decode cleanly as the form they announce (then nothing is changed: the caller keeps
/// the bytes it had, and no escape byte is dropped by this function).
pub fn escape_decode(bytes: &[u8]) -> Option<(String, &'static str)> {
    if bytes.iter().any(|b| *b >= 0x80) {
        return None;
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if has(b"\x1b$B") || has(b"\x1b$@") || has(b"\x1b(J") || has(b"\x1b(I") {
        let text =
            encoding_rs::ISO_2022_JP.decode_without_bom_handling_and_without_replacement(bytes)?;
        return Some((text.into_owned(), "ISO-2022-JP"));
    }
    if has(b"\x1b$)C") {
        return shifted(bytes, b"\x1b$)C", encoding_rs::EUC_KR).map(|t| (t, "ISO-2022-KR"));
    }
    if has(b"\x1b$)A") && !has(b"\x1b$)G") && !has(b"\x1b$*H") {
        return shifted(bytes, b"\x1b$)A", GBK).map(|t| (t, "ISO-2022-CN"));
    }
    if has(b"~{") && has(b"~}") {
        return hz(bytes).map(|t| (t, "HZ-GB-2312"));
    }
    None
}

/// SO/SI shifting (ISO-2022-KR/CN): between SO (0x0E) and SI (0x0F) every byte pair is a
/// double-byte character of `enc` with the high bits cleared. `designator` is dropped.
fn shifted(bytes: &[u8], designator: &[u8], enc: &'static Encoding) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    let mut run: Vec<u8> = Vec::new();
    let mut shifted = false;
    while i < bytes.len() {
        if bytes[i..].starts_with(designator) {
            i += designator.len();
            continue;
        }
        match bytes[i] {
            0x0E => shifted = true,
            0x0F | b'\n' | b'\r' if shifted => {
                out.push_str(&enc.decode_without_bom_handling_and_without_replacement(&run)?);
                run.clear();
                shifted = bytes[i] == 0x0E;
                if bytes[i] != 0x0F {
                    out.push(bytes[i] as char);
                }
            }
            0x0F => {}
            0x1b => return None,
            b if shifted => run.push(b | 0x80),
            b => out.push(b as char),
        }
        i += 1;
    }
    if !run.is_empty() {
        out.push_str(&enc.decode_without_bom_handling_and_without_replacement(&run)?);
    }
    Some(out)
}

/// HZ (RFC 1843): `~{` enters GB 2312 (byte pairs with the high bits cleared), `~}` leaves it,
/// `~~` is a tilde and `~` before a line end joins the lines. A line end also leaves GB mode.
/// None unless every GB run decodes and the text reads as Chinese (so ASCII text that merely
/// contains `~{`, such as code, is left alone).
fn hz(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut run: Vec<u8> = Vec::new();
    let mut gb = false;
    let mut i = 0;
    let flush = |run: &mut Vec<u8>, out: &mut String| -> Option<()> {
        if !run.is_empty() {
            if !run.len().is_multiple_of(2) {
                return None;
            }
            out.push_str(&GBK.decode_without_bom_handling_and_without_replacement(run)?);
            run.clear();
        }
        Some(())
    };
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match (gb, b, next) {
            (_, b'~', Some(b'{')) if !gb => {
                gb = true;
                i += 2;
                continue;
            }
            (true, b'~', Some(b'}')) => {
                flush(&mut run, &mut out)?;
                gb = false;
                i += 2;
                continue;
            }
            (false, b'~', Some(b'~')) => {
                out.push('~');
                i += 2;
                continue;
            }
            (false, b'~', Some(b'\n')) => {
                i += 2;
                continue;
            }
            (true, b'\n' | b'\r', _) => {
                flush(&mut run, &mut out)?;
                gb = false;
                out.push(b as char);
            }
            (true, _, _) => run.push(b | 0x80),
            (false, _, _) => out.push(b as char),
        }
        i += 1;
    }
    flush(&mut run, &mut out)?;
    (commonness(&out, GBK) > 0).then_some(out)
}

/// Whether `text` (decoded as Latin-1 or Windows-1252) is really UTF-8 read wrongly.
pub fn utf8_read_as_latin1(text: &str) -> bool {
    // Multi-byte UTF-8 read as Latin-1 leaves a lead byte (Ã, Â, å, æ, è, é, ï, ð) followed by a
    // continuation byte shown as a Latin-1 or C1 character.
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(2)
        .filter(|w| {
            matches!(w[0] as u32, 0xC2..=0xF4)
                && matches!(w[1] as u32, 0x80..=0xBF | 0x152..=0x2122)
        })
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bit_escape_encodings_are_read_not_stripped() {
        let (jp, _, _) = encoding_rs::ISO_2022_JP.encode("お問い合わせありがとうございます");
        assert_eq!(
            escape_decode(&jp),
            Some((
                "お問い合わせありがとうございます".to_string(),
                "ISO-2022-JP"
            ))
        );
        // HZ: "退款" is CDCB BFEE in GB 2312.
        let hz = b"Hello ~{MK?n~} please, ~~ kept";
        assert_eq!(
            escape_decode(hz).map(|x| x.0).as_deref(),
            Some("Hello 退款 please, ~ kept")
        );
        // ISO-2022-KR: "감사" is B0A8 BBE7 in EUC-KR.
        let kr = b"\x1b$)C\x0e0(;g\x0f hello";
        assert_eq!(
            escape_decode(kr).map(|x| x.0).as_deref(),
            Some("감사 hello")
        );
        // ISO-2022-CN (GB 2312 half): "退款".
        let cn = b"\x1b$)A\x0eMK?n\x0f ok";
        assert_eq!(escape_decode(cn).map(|x| x.0).as_deref(), Some("退款 ok"));
        // Code with braces, plain ASCII and 8-bit text are left alone.
        assert_eq!(escape_decode(b"if (a) ~{ x ~} else"), None);
        assert_eq!(escape_decode(b"plain text"), None);
        assert_eq!(escape_decode("退款".as_bytes()), None);
    }

    #[test]
    fn valid_utf8_wins_and_gbk_and_big5_are_told_apart() {
        assert_eq!(
            best_decode("退款".as_bytes(), None).map(|x| x.1),
            Some(UTF_8)
        );
        let gbk = GBK.encode("退款进度查询，谢谢").0;
        assert_eq!(
            best_decode(&gbk, None).map(|x| x.0),
            Some("退款进度查询，谢谢".into())
        );
        let big5 = BIG5.encode("退款進度查詢，謝謝").0;
        assert_eq!(
            best_decode(&big5, None).map(|x| x.0),
            Some("退款進度查詢，謝謝".into())
        );
    }

    #[test]
    fn an_encoded_word_split_mid_character_is_joined() {
        use base64::Engine;
        let b = "退款进度".as_bytes();
        let e = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
        let raw = format!("=?UTF-8?B?{}?= =?UTF-8?B?{}?=", e(&b[..4]), e(&b[4..]));
        assert_eq!(
            decode_header(raw.as_bytes(), None).as_deref(),
            Some("退款进度")
        );
        let q = "=?gb2312?Q?=CD=CB=BF=EE?= done";
        assert_eq!(
            decode_header(q.as_bytes(), None).as_deref(),
            Some("退款 done")
        );
    }

    #[test]
    fn unencoded_8bit_headers_are_decoded() {
        let raw = GBK.encode("退款进度查询").0;
        assert_eq!(decode_header(&raw, None).as_deref(), Some("退款进度查询"));
    }

    #[test]
    fn latin1_mojibake_of_utf8_is_recognised() {
        let (latin, _, _) = encoding_rs::WINDOWS_1252.decode("您好，退款".as_bytes());
        assert!(utf8_read_as_latin1(&latin), "{latin}");
        assert!(!utf8_read_as_latin1("Grüße aus Köln, café"));
    }
}
