//! Test and benchmark support for the local mail rig (`deploy/dev/mailrig`). Not used by the
//! daemon itself.

use std::io::{Error, ErrorKind, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;

/// The rig's LMTP port.
pub const LMTP_PORT: u16 = 10024;
/// The rig's mail domain.
pub const DOMAIN: &str = "example.test";

async fn reply(r: &mut BufReader<OwnedReadHalf>, expect: &str) -> Result<()> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "LMTP server closed the connection",
            ));
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
    }
    if all.starts_with(expect) {
        Ok(())
    } else {
        Err(Error::other(format!(
            "LMTP: expected {expect}, got {}",
            all.trim_end()
        )))
    }
}

/// Delivers raw bytes straight into Dovecot over LMTP, bypassing Postfix (which would repair a
/// broken mail's headers, and is slower). Many mails in one session.
pub async fn lmtp_deliver(to: &str, mails: &[Vec<u8>]) -> Result<()> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", LMTP_PORT)).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut r, "220").await?;
    w.write_all(b"LHLO rig\r\n").await?;
    reply(&mut r, "250").await?;
    let mut data = Vec::new();
    for raw in mails {
        w.write_all(format!("MAIL FROM:<lmtp@{DOMAIN}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes())
            .await?;
        for expect in ["250", "250", "354"] {
            reply(&mut r, expect).await?;
        }
        data.clear();
        for line in raw.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        w.write_all(&data).await?;
        reply(&mut r, "250").await?;
    }
    w.write_all(b"QUIT\r\n").await?;
    Ok(())
}
