//! SASL client responses for bearer tokens.
//!
//! - XOAUTH2 (Google, "The SASL XOAUTH2 Mechanism"; Microsoft the same):
//!   `user=USER ^A auth=Bearer TOKEN ^A ^A`.
//! - OAUTHBEARER (RFC 7628 §3.1): a GS2 header `n,a=USER,` then `^A auth=Bearer TOKEN ^A ^A`.
//!
//! On failure both servers answer with a continuation carrying a JSON error (RFC 7628 §3.2.2);
//! the client must answer it with an empty response (XOAUTH2) or `^A` (OAUTHBEARER, §3.2.3),
//! after which the server sends the final failure.

use super::AuthMethod;

/// The initial client response for `method` (raw bytes, before base64).
pub fn initial_response(method: AuthMethod, user: &str, token: &str) -> Vec<u8> {
    match method {
        AuthMethod::Xoauth2 | AuthMethod::Password => {
            format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
        }
        AuthMethod::Oauthbearer => {
            // RFC 5801 §4: ',' and '=' in the authzid are escaped as =2C and =3D.
            let authzid = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={authzid},\x01auth=Bearer {token}\x01\x01").into_bytes()
        }
    }
}

/// The IMAP `AUTHENTICATE` exchange (RFC 3501 §6.2.2) for a bearer token: the first
/// continuation gets the initial response, a later one (the server's JSON error) the empty or
/// `^A` answer that ends the exchange.
pub struct BearerAuthenticator {
    method: AuthMethod,
    initial: Option<Vec<u8>>,
    /// The server's error (JSON) when it sent one.
    pub error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl BearerAuthenticator {
    pub fn new(method: AuthMethod, user: &str, token: &str) -> Self {
        BearerAuthenticator {
            method,
            initial: Some(initial_response(method, user, token)),
            error: Default::default(),
        }
    }
}

impl async_imap::Authenticator for BearerAuthenticator {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        if let Some(first) = self.initial.take() {
            return first;
        }
        if let Ok(mut e) = self.error.lock() {
            *e = Some(String::from_utf8_lossy(challenge).into_owned());
        }
        match self.method {
            AuthMethod::Oauthbearer => vec![0x01],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;

    #[test]
    fn xoauth2_matches_googles_example() {
        // https://developers.google.com/gmail/imap/xoauth2-protocol: the example's unencoded form.
        let r = initial_response(
            AuthMethod::Xoauth2,
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(
            r,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_has_a_gs2_header_and_escapes_the_authzid() {
        // RFC 7628 §4.1's example without host and port.
        let r = initial_response(
            AuthMethod::Oauthbearer,
            "user@example.com",
            "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==",
        );
        assert_eq!(
            r,
            b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
        );
        let r = initial_response(AuthMethod::Oauthbearer, "a,b=c", "t");
        assert!(r.starts_with(b"n,a=a=2Cb=3Dc,\x01"));
    }

    #[test]
    fn a_failure_challenge_is_answered_so_the_server_can_finish() {
        let mut a = BearerAuthenticator::new(AuthMethod::Oauthbearer, "u", "t");
        assert!(a.process(b"").starts_with(b"n,a=u,"));
        assert_eq!(a.process(br#"{"status":"invalid_token"}"#), vec![1]);
        assert!(a
            .error
            .lock()
            .unwrap()
            .as_deref()
            .unwrap()
            .contains("invalid_token"));
        let mut a = BearerAuthenticator::new(AuthMethod::Xoauth2, "u", "t");
        a.process(b"");
        assert!(a.process(b"{}").is_empty());
    }
}
