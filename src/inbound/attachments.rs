//! The files a mail carries (part of `parse`): decoded names, types, bytes, and whether each is
//! a picture shown inside the text (`inline` with a Content-ID) or a forwarded mail. Pure.
//!
//! Names come the way real clients write them: RFC 2231 `filename*=` (percent-encoded, with a
//! charset) and its continuations `filename*0*=`, `filename*1*=`; RFC 2047 encoded-words in
//! `name=` (Outlook, Foxmail), also split across continuations `name*0="=?GB2312?B?…"`,
//! `name*1="…?="`, which mail-parser leaves encoded; and raw 8-bit GBK/GB18030/Big5 names with
//! no encoding at all, read with the part's or the body's charset. A name is decoded from the raw
//! header bytes whenever mail-parser's reading is still encoded or broken.
//!
//! Invariant: the bytes are exactly what the sender attached (the transfer encoding undone,
//! nothing else); nothing is dropped — a part without a name gets none, not a skip.

use crate::domain::Attachment;
use crate::inbound::charset;
use encoding_rs::Encoding;
use mail_parser::{MessagePart, MimeHeaders, PartType};

/// Every attachment and inline part of `msg` (not the text and HTML bodies).
pub fn attachments(
    msg: &mail_parser::Message<'_>,
    raw: &[u8],
    hint: Option<&'static Encoding>,
) -> Vec<Attachment> {
    msg.attachments()
        .map(|part| {
            let message = matches!(part.body, PartType::Message(_));
            let bytes = match &part.body {
                // A forwarded mail: its own raw bytes, as it was attached.
                PartType::Message(_) => raw
                    .get(part.offset_body as usize..part.offset_end as usize)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                _ => part.contents().to_vec(),
            };
            let inline = part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
            Attachment {
                name: name(part, raw, hint),
                content_type: content_type(part, message),
                size: bytes.len(),
                content_id: part
                    .content_id()
                    .map(|c| c.trim().trim_matches(['<', '>']).to_string())
                    .filter(|c| !c.is_empty()),
                inline,
                message,
                bytes,
            }
        })
        .collect()
}

fn content_type(part: &MessagePart<'_>, message: bool) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if message => "message/rfc822".into(),
        None => "application/octet-stream".into(),
    }
}

/// The part's file name, decoded.
fn name(part: &MessagePart<'_>, raw: &[u8], hint: Option<&'static Encoding>) -> Option<String> {
    let parsed = part.attachment_name().map(str::to_string);
    if parsed
        .as_deref()
        .is_some_and(|n| !n.contains("=?") && !charset::broken(n) && !n.contains('%'))
    {
        return parsed;
    }
    let hint = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .and_then(|l| Encoding::for_label(l.trim().as_bytes()))
        .or(hint);
    from_raw_headers(part, raw, hint).or(parsed)
}

/// The name read again from the part's raw `Content-Disposition` and `Content-Type` headers.
fn from_raw_headers(
    part: &MessagePart<'_>,
    raw: &[u8],
    hint: Option<&'static Encoding>,
) -> Option<String> {
    for (header, param) in [
        ("content-disposition", "filename"),
        ("content-type", "name"),
    ] {
        for h in &part.headers {
            if !h.name.as_str().eq_ignore_ascii_case(header) {
                continue;
            }
            let Some(value) = raw.get(h.offset_start as usize..h.offset_end as usize) else {
                continue;
            };
            if let Some(n) = param_value(value, param, hint) {
                return Some(n);
            }
        }
    }
    None
}

/// One parameter of a raw MIME header value, decoded: RFC 2231 (`p*=charset'lang'%xx`, and
/// continuations `p*0`, `p*1*`, …), then RFC 2047 words and raw 8-bit text in what remains.
pub fn param_value(value: &[u8], param: &str, hint: Option<&'static Encoding>) -> Option<String> {
    let unfolded: Vec<u8> = value
        .iter()
        .map(|b| {
            if *b == b'\r' || *b == b'\n' || *b == b'\t' {
                b' '
            } else {
                *b
            }
        })
        .collect();
    // (section, extended, value) for every `param…=` found.
    let mut pieces: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for item in split_params(&unfolded) {
        let Some(eq) = item.iter().position(|b| *b == b'=') else {
            continue;
        };
        let key = String::from_utf8_lossy(&item[..eq])
            .trim()
            .to_ascii_lowercase();
        let mut val = trim(&item[eq + 1..]).to_vec();
        if val.len() >= 2 && val[0] == b'"' && val[val.len() - 1] == b'"' {
            val = val[1..val.len() - 1].to_vec();
        }
        let Some(rest) = key.strip_prefix(param) else {
            continue;
        };
        let (section, extended) = match rest {
            "" => (0, false),
            "*" => (0, true),
            r => {
                let r = r.strip_prefix('*').unwrap_or(r);
                let (num, ext) = match r.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (r, false),
                };
                match num.parse() {
                    Ok(n) => (n, ext),
                    Err(_) => continue,
                }
            }
        };
        pieces.push((section, extended, val));
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|p| p.0);
    // The charset of an extended value is given in its first section: `utf-8'zh'%E9…`.
    let mut charset: Option<&'static Encoding> = None;
    let mut bytes = Vec::new();
    for (i, (_, extended, val)) in pieces.iter().enumerate() {
        if *extended {
            let mut v = val.as_slice();
            if i == 0 {
                let mut parts = v.splitn(3, |b| *b == b'\'');
                if let (Some(cs), Some(_lang), Some(rest)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    charset = Encoding::for_label(trim(cs));
                    v = rest;
                }
            }
            bytes.extend(percent_decode(v));
        } else {
            bytes.extend_from_slice(val);
        }
    }
    let text = match charset {
        Some(enc) => enc.decode_without_bom_handling(&bytes).0.into_owned(),
        None => charset::decode_header(&bytes, hint)?,
    };
    // Encoded-words split across continuations are whole again now: decode them.
    let text = if text.contains("=?") {
        charset::decode_header(text.as_bytes(), hint).unwrap_or(text)
    } else {
        text
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Splits a header value at `;` outside quotes.
fn split_params(v: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in v.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn percent_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && i + 2 < v.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&v[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::inbound::parse::parse;

    fn mail(headers: &[u8]) -> Vec<u8> {
        let mut raw = b"From: a@qq.example\r\nMessage-ID: <a@qq.example>\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe7\x85\xa7\xe7\x89\x87\r\n--b\r\n".to_vec();
        raw.extend_from_slice(headers);
        raw.extend_from_slice(
            b"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n",
        );
        raw
    }

    fn first_name(headers: &[u8]) -> Option<String> {
        parse(&mail(headers))
            .attachments
            .first()
            .and_then(|a| a.name.clone())
    }

    #[test]
    fn names_in_every_form_real_clients_write_are_decoded() {
        // RFC 2047 in name= (Outlook, Foxmail).
        assert_eq!(
            first_name(b"Content-Type: image/png; name=\"=?UTF-8?B?5Y+R56Wo54Wn54mHLnBuZw==?=\"\r\nContent-Disposition: attachment").as_deref(),
            Some("发票照片.png")
        );
        // RFC 2231 with a charset.
        assert_eq!(
            first_name(b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''%E6%A3%80%E6%B5%8B%E6%8A%A5%E5%91%8A.pdf").as_deref(),
            Some("检测报告.pdf")
        );
        // RFC 2231 continuations.
        assert_eq!(
            first_name(b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''%E6%A3%80%E6%B5%8B;\r\n filename*1*=%E6%8A%A5%E5%91%8A.pdf").as_deref(),
            Some("检测报告.pdf")
        );
        // An encoded-word split across continuations (which RFC 2231 does not allow, but
        // clients send).
        let gb = b"=?GB2312?B?vOyy4rGouOYucGRm?=";
        let mut h = b"Content-Type: application/pdf;\r\n name*0=\"".to_vec();
        h.extend_from_slice(&gb[..14]);
        h.extend_from_slice(b"\";\r\n name*1=\"");
        h.extend_from_slice(&gb[14..]);
        h.extend_from_slice(b"\"\r\nContent-Disposition: attachment");
        assert_eq!(first_name(&h).as_deref(), Some("检测报告.pdf"));
        // Raw 8-bit GBK, no encoding at all.
        let mut h =
            b"Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename=\"".to_vec();
        h.extend_from_slice(&encoding_rs::GBK.encode("破损照片.jpg").0);
        h.extend_from_slice(b"\"");
        assert_eq!(first_name(&h).as_deref(), Some("破损照片.jpg"));
    }

    #[test]
    fn the_bytes_are_the_attached_bytes_and_inline_pictures_keep_their_content_id() {
        let m = parse(&mail(b"Content-Type: image/png; name=logo.png\r\nContent-Disposition: inline; filename=logo.png\r\nContent-ID: <image001.png@01DB>"));
        let a = &m.attachments[0];
        assert_eq!(a.bytes, b"hello");
        assert_eq!(a.size, 5);
        assert!(a.inline);
        assert_eq!(a.content_id.as_deref(), Some("image001.png@01DB"));
    }
}
