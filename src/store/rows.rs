//! Multi-row INSERTs: through sqlx a statement costs ~50 µs on SQLite (a round trip to its worker
//! thread) whatever it does, while a row of a multi-row INSERT costs ~2.5 µs, so the writer
//! collects rows per table and sends them a few hundred parameters a statement.

use super::{Backend, Result, Tx};
use sqlx::AssertSqlSafe;
use std::borrow::Cow;

/// A value to bind. Blobs (raw mails, up to the maximum mail size) are borrowed from the records
/// being written, never copied before binding: binding copies once more, SQLite once again.
#[derive(Debug, Clone)]
pub(super) enum V<'a> {
    I(Option<i64>),
    S(Option<String>),
    B(Option<Cow<'a, [u8]>>),
}

pub(super) fn s(v: impl Into<String>) -> V<'static> {
    V::S(Some(v.into()))
}
pub(super) fn os(v: Option<&str>) -> V<'static> {
    V::S(v.map(str::to_string))
}
pub(super) fn i(v: i64) -> V<'static> {
    V::I(Some(v))
}
/// A borrowed blob.
pub(super) fn b(v: Option<&[u8]>) -> V<'_> {
    V::B(v.map(Cow::Borrowed))
}

/// Raw mails above this many bytes are stored in chunks of this size (`raw_chunks`).
pub(super) const CHUNK: usize = 1024 * 1024;

/// Chunks to write: their name (`raw_blob`) and the bytes they hold.
pub(super) type Chunks<'a> = (String, Cow<'a, [u8]>);

/// `raw_blob` of a raw mail stored inline, zstd-compressed (rows written before stop 31).
const ZSTD_INLINE: &str = "zstd";
/// `raw_blob` of a raw mail stored inline, zstd-compressed with the shipped dictionary 1.
const ZSTD_DICT1_INLINE: &str = "zstd-d1";
/// Mails up to this size are compressed with the dictionary (it helps small mails: their
/// headers and MIME structure are most of their bytes).
const DICT_MAX: usize = 256 * 1024;
/// zstd dictionary 1 (RFC 8878 §5), 32 KiB, trained with `zstd --train --maxdict=32768` on 200
/// acknowledgements rendered from the shipped templates and the 107 mails of the public MIME
/// corpus (`deploy/dev/train-raw-dict`). Never changed once shipped: rows name it, and every
/// dictionary ever shipped stays readable; a new one gets a new name.
static DICT1: &[u8] = include_bytes!("raw-dict-1.zdict");
/// Prefix of `raw_blob` naming the chunks of a zstd-compressed raw mail.
const ZSTD_CHUNKS: &str = "zstd:";
/// zstd's level. Level 1 against the default 3, with the dictionary, on 300 mails of the fixtures
/// and the public MIME corpus (`zstd -b1 -D raw-dict-1.zdict`): 298 against 222 MB/s, 2.19
/// against 2.26 : 1; the mix's stored bytes per mail stay 3.9 KB (`-- mix`).
const ZSTD_LEVEL: i32 = 1;

/// A raw mail's two columns, `raw` and `raw_blob`, and the chunks to write when it is large.
///
/// The mail is stored zstd-compressed (RFC 8878) when that saves at least a tenth: inline with
/// `raw_blob = "zstd"`, or above [`CHUNK`] compressed bytes as chunks named `zstd:SHA-256` (of the
/// mail). Otherwise as before: inline, or in chunks named by the SHA-256 (hex). Rows written
/// before compression (no marker) read as they are.
pub(super) fn raw_columns(raw: &[u8]) -> (V<'_>, V<'static>, Option<Chunks<'_>>) {
    columns(raw, compress(raw).map(Cow::Owned))
}

/// A raw mail in the form it is stored: compressed once, before the writer's transaction (the
/// daemon packs a fetched batch on the analysis thread, beside the parse), so the one writer
/// does not spend its time compressing. Plain data; [`pack_raw`] makes it.
#[derive(Debug, Clone, Default)]
pub struct PackedRaw {
    /// The length of the mail it was made from (a guard: a packing of another mail is ignored).
    len: usize,
    /// The compressed bytes, when compression saves at least a tenth.
    z: Option<Vec<u8>>,
}

/// Packs `raw` as the writer would (see [`raw_columns`]). Pure, CPU only.
pub fn pack_raw(raw: &[u8]) -> PackedRaw {
    PackedRaw {
        len: raw.len(),
        z: compress(raw),
    }
}

/// [`raw_columns`] from a packing made earlier with [`pack_raw`] (compressed again when it was
/// made from other bytes).
pub(super) fn raw_columns_packed<'a>(
    raw: &'a [u8],
    packed: Option<&'a PackedRaw>,
) -> (V<'a>, V<'static>, Option<Chunks<'a>>) {
    match packed {
        Some(p) if p.len == raw.len() => columns(raw, p.z.as_deref().map(Cow::Borrowed)),
        _ => raw_columns(raw),
    }
}

/// The compressed form of `raw` when it saves at least a tenth.
fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    // One compression context per thread and kind: making one costs more than compressing a
    // mail.
    thread_local! {
        static PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
        static DICT_PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let with_dict = raw.len() <= DICT_MAX;
    let packer = if with_dict { &DICT_PACKER } else { &PACKER };
    packer
        .with(|p| {
            let mut p = p.borrow_mut();
            if p.is_none() {
                *p = if with_dict {
                    zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, DICT1).ok()
                } else {
                    zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()
                };
            }
            p.as_mut().and_then(|c| c.compress(raw).ok())
        })
        .filter(|z| z.len() * 10 <= raw.len() * 9)
}

fn columns<'a>(
    raw: &'a [u8],
    packed: Option<Cow<'a, [u8]>>,
) -> (V<'a>, V<'static>, Option<Chunks<'a>>) {
    let with_dict = raw.len() <= DICT_MAX;
    let chunk_name = |prefix: &str| {
        use sha2::Digest;
        format!("{prefix}{}", hex::encode(sha2::Sha256::digest(raw)))
    };
    match packed {
        Some(z) if with_dict => (V::B(Some(z)), s(ZSTD_DICT1_INLINE), None),
        Some(z) if z.len() <= CHUNK => (V::B(Some(z)), s(ZSTD_INLINE), None),
        Some(z) => {
            let name = chunk_name(ZSTD_CHUNKS);
            (b(Some(&[])), s(name.clone()), Some((name, z)))
        }
        None if raw.len() <= CHUNK => (b(Some(raw)), V::S(None), None),
        None => {
            let name = chunk_name("");
            (
                b(Some(&[])),
                s(name.clone()),
                Some((name, Cow::Borrowed(raw))),
            )
        }
    }
}

fn unpack(z: &[u8]) -> Result<Vec<u8>> {
    zstd::stream::decode_all(z).map_err(|e| {
        super::StoreError::Corrupt(format!("a stored mail does not decompress (zstd): {e}"))
    })
}

/// A compressed `raw` value as stored (a zstd frame, RFC 8878), decompressed whether or not it
/// was made with the shipped dictionary: for tools and tests that read the table directly (the
/// store itself reads through `raw_blob`, which names how it was written).
///
/// Errors: [`super::StoreError::Corrupt`] when it is neither.
pub fn unpack_stored(z: &[u8]) -> Result<Vec<u8>> {
    unpack(z).or_else(|_| unpack_with_dict1(z))
}

fn unpack_with_dict1(z: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let corrupt = |e: std::io::Error| {
        super::StoreError::Corrupt(format!(
            "a stored mail does not decompress (zstd, dictionary 1): {e}"
        ))
    };
    let mut out = Vec::with_capacity(z.len() * 4);
    zstd::stream::read::Decoder::with_dictionary(z, DICT1)
        .map_err(corrupt)?
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

/// Writes `raw` as the chunks named `blob`, one statement a chunk (so no statement binds more
/// than [`CHUNK`] bytes). Chunks that exist already (the same bytes stored before) are kept.
pub(super) async fn write_chunks(tx: &mut Tx, blob: &str, raw: &[u8]) -> Result<()> {
    for (seq, c) in raw.chunks(CHUNK).enumerate() {
        sqlx::query(
            "INSERT INTO raw_chunks (blob, seq, bytes) VALUES ($1, $2, $3) ON CONFLICT (blob, seq) DO NOTHING",
        )
        .bind(blob)
        .bind(seq as i64)
        .bind(c)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A stored raw mail: `inline` itself, or its chunks joined when `blob` names them.
pub(super) async fn read_raw(
    conn: &mut sqlx::AnyConnection,
    inline: Vec<u8>,
    blob: Option<String>,
) -> Result<Vec<u8>> {
    use sqlx::Row;
    let Some(blob) = blob else {
        return Ok(inline);
    };
    if blob == ZSTD_INLINE {
        return unpack(&inline);
    }
    if blob == ZSTD_DICT1_INLINE {
        return unpack_with_dict1(&inline);
    }
    let rows = sqlx::query("SELECT bytes FROM raw_chunks WHERE blob = $1 ORDER BY seq")
        .bind(&blob)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len() * CHUNK);
    for r in rows {
        let c: Vec<u8> = r.get(0);
        out.extend_from_slice(&c);
    }
    if blob.starts_with(ZSTD_CHUNKS) {
        return unpack(&out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &V<'_>) -> Vec<u8> {
        match v {
            V::B(Some(b)) => b.to_vec(),
            _ => Vec::new(),
        }
    }

    /// The columns of a mail packed beforehand (on the analysis thread) are the writer's own,
    /// for every kind of stored form; a packing of other bytes is not used.
    #[test]
    fn a_mail_packed_beforehand_gets_the_same_columns_as_one_packed_by_the_writer() {
        let blob = |v: &V<'_>| match v {
            V::S(x) => x.clone(),
            _ => None,
        };
        let small = "From: a@example.com\r\n\r\n您好，订单什么时候发货？\r\n".repeat(20);
        let noise: Vec<u8> = (0..4000u32)
            .map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let big = "x".repeat(300 * 1024);
        for mail in [small.as_bytes(), &noise, big.as_bytes()] {
            let (r1, b1, c1) = raw_columns(mail);
            let packed = pack_raw(mail);
            let (r2, b2, c2) = raw_columns_packed(mail, Some(&packed));
            assert_eq!(bytes(&r1), bytes(&r2));
            assert_eq!(blob(&b1), blob(&b2));
            assert_eq!(c1.map(|c| c.0), c2.map(|c| c.0));
        }
        let other = pack_raw(noise.as_slice());
        let (r, _, _) = raw_columns_packed(small.as_bytes(), Some(&other));
        assert_eq!(bytes(&r), bytes(&raw_columns(small.as_bytes()).0));
    }

    #[test]
    fn the_dictionary_shrinks_a_short_mail_to_well_under_plain_zstd() {
        let mail = "Return-Path: <support@example.test>\r\nFrom: =?UTF-8?B?5a6i5pyN5Lit5b+D?= <support@example.test>\r\nTo: customer@example.org\r\nSubject: =?UTF-8?B?5oiR5Lus5bey5pS25Yiw5oKo55qE5p2l5L+h?=\r\nMessage-ID: <3acd393e9fef8ae0396481e86d957150@example.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n尊敬的客户：您好！我们已收到您的来信，工单编号 T000123。我们将在 24 小时内回复您。\r\n";
        let (raw, _, _) = raw_columns(mail.as_bytes());
        let plain = zstd::bulk::compress(mail.as_bytes(), ZSTD_LEVEL).unwrap();
        assert!(
            bytes(&raw).len() * 3 < plain.len() * 2,
            "with the dictionary {} bytes, without {}",
            bytes(&raw).len(),
            plain.len()
        );
    }

    #[test]
    fn mail_is_stored_compressed_when_it_pays_and_reads_back_byte_for_byte() {
        let mail = "From: a@example.com\r\nSubject: =?UTF-8?B?6K6i5Y2V?=\r\n\r\n您好，订单什么时候发货？\r\n".repeat(20);
        let (raw, blob, chunks) = raw_columns(mail.as_bytes());
        assert!(matches!(&blob, V::S(Some(b)) if b == ZSTD_DICT1_INLINE));
        assert!(chunks.is_none());
        let stored = bytes(&raw);
        assert!(
            stored.len() * 3 < mail.len(),
            "{} of {}",
            stored.len(),
            mail.len()
        );
        assert_eq!(unpack_with_dict1(&stored).unwrap(), mail.as_bytes());
        // Rows written before the dictionary (marker "zstd") read as they did.
        let old = zstd::bulk::compress(mail.as_bytes(), ZSTD_LEVEL).unwrap();
        assert_eq!(unpack(&old).unwrap(), mail.as_bytes());
        // A tool reading the column without its marker decodes either kind.
        assert_eq!(unpack_stored(&stored).unwrap(), mail.as_bytes());
        assert_eq!(unpack_stored(&old).unwrap(), mail.as_bytes());
        // Bytes that are not a frame made with the dictionary are a clear error, not a panic.
        assert!(matches!(
            unpack_with_dict1(&old[..old.len() / 2]),
            Err(crate::store::StoreError::Corrupt(_))
        ));
        // Random bytes (an encrypted attachment) do not shrink: stored as they are.
        let mut y: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                y ^= y << 13;
                y ^= y >> 7;
                y ^= y << 17;
                (y >> 32) as u8
            })
            .collect();
        let (raw, blob, _) = raw_columns(&noise);
        assert!(matches!(blob, V::S(None)));
        assert_eq!(bytes(&raw), noise);
        // A large mail: compressed chunks named apart from uncompressed ones of the same bytes.
        // A large attachment in base64 (64 symbols: compresses to ~3/4) of 3 MB: still over a
        // chunk once compressed, so stored as compressed chunks, named apart from uncompressed
        // ones of the same bytes.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u32 = 1;
        let big: Vec<u8> = (0..3_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                alphabet[(x % 64) as usize]
            })
            .collect();
        let (raw, blob, chunks) = raw_columns(&big);
        let (name, z) = chunks.expect("over a chunk once compressed");
        assert!(bytes(&raw).is_empty());
        assert!(matches!(&blob, V::S(Some(b)) if *b == name));
        assert!(name.starts_with(ZSTD_CHUNKS));
        assert!(z.len() < big.len() * 9 / 10);
        assert_eq!(unpack(&z).unwrap(), big);
    }
}

/// Rows for one table.
#[derive(Debug)]
pub(super) struct Rows<'a> {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    values: Vec<V<'a>>,
}

impl<'a> Rows<'a> {
    pub(super) fn new(head: &'static str, cols: usize, tail: &'static str) -> Rows<'a> {
        Rows {
            head,
            cols,
            tail,
            values: Vec::new(),
        }
    }
    pub(super) fn push(&mut self, row: Vec<V<'a>>) {
        debug_assert_eq!(row.len(), self.cols, "{}", self.head);
        self.values.extend(row);
    }

    /// Inserts the rows, a few hundred parameters a statement. SQLite gets anonymous `?`
    /// parameters (bound in order), PostgreSQL numbered `$n`.
    pub(super) async fn write(&self, tx: &mut Tx, backend: Backend) -> Result<()> {
        // Measured on SQLite: with numbered `$n` parameters binding grows faster than their
        // number (460 mails/s at 12,000 a statement); with `?` it does not, and statements of a
        // few thousand parameters are best (6,600 mails/s at 8,000). Both backends' limits
        // (32,766 and 65,535) are far above.
        let per = (8_000 / self.cols).max(1);
        for chunk in self.values.chunks(per * self.cols) {
            let rows = chunk.len() / self.cols;
            let mut sql = String::with_capacity(self.head.len() + rows * self.cols * 5);
            sql.push_str(self.head);
            sql.push_str(" VALUES ");
            let mut n = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..self.cols {
                    if c > 0 {
                        sql.push(',');
                    }
                    n += 1;
                    match backend {
                        Backend::Sqlite => sql.push('?'),
                        Backend::Postgres => {
                            sql.push('$');
                            sql.push_str(&n.to_string());
                        }
                    }
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(self.tail);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in chunk {
                q = match v {
                    V::I(x) => q.bind(*x),
                    V::S(x) => q.bind(x.as_deref()),
                    V::B(x) => q.bind(x.as_deref()),
                };
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

impl Rows<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Writes the collected rows and forgets them.
    pub(super) async fn flush(&mut self, tx: &mut Tx, backend: Backend) -> Result<()> {
        if !self.values.is_empty() {
            self.write(tx, backend).await?;
            self.values.clear();
        }
        Ok(())
    }
}
