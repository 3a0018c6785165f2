//! Session resume tokens: `welcome.session`, an HMAC-SHA256-signed `(client, user, issued)`
//! with a key derived from the cluster cookie, so any node of the cluster can verify it.
//!
//! The signed body is a JSON array `["client","user",issued]`, so no user id (a JWT `sub` is
//! the client's to choose) can shape it. Tokens of the earlier form, the three fields joined by
//! newlines, are still accepted for their 24 h lifetime (a rolling upgrade keeps its sessions),
//! but only with exactly three fields.

use crate::ids::{ClientId, UserId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies session tokens.
pub struct SessionKeys {
    key: [u8; 32],
}

impl SessionKeys {
    /// Derives the signing key from the cluster cookie.
    pub fn from_cookie(cookie: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"gatehouse session key v1\0");
        h.update(cookie.as_bytes());
        Self {
            key: h.finalize().into(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key).expect("hmac takes any key length")
    }

    /// Issues a token for `client` / `user` at `now` (seconds since the Unix epoch).
    pub fn issue(&self, client: &ClientId, user: &UserId, now: u64) -> String {
        let body =
            serde_json::to_string(&(client.as_str(), user.as_str(), now)).unwrap_or_default();
        self.sign(&body)
    }

    /// `base64(body).base64(HMAC(body))`.
    fn sign(&self, body: &str) -> String {
        let mut m = self.mac();
        m.update(body.as_bytes());
        let sig = m.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// Verifies `token`: returns its client, user and age in seconds if the signature holds and
    /// it is younger than `max_age_s` at `now`.
    pub fn verify(&self, token: &str, max_age_s: u64, now: u64) -> Option<(ClientId, UserId, u64)> {
        let (body_b64, sig_b64) = token.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body_b64).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig_b64).ok()?;
        let mut m = self.mac();
        m.update(&body);
        m.verify_slice(&sig).ok()?;
        let (client, user, issued) = if body.first() == Some(&b'[') {
            serde_json::from_slice::<(String, String, u64)>(&body).ok()?
        } else {
            let body = std::str::from_utf8(&body).ok()?;
            let [client, user, issued] = body.split('\n').collect::<Vec<_>>()[..] else {
                return None;
            };
            (client.to_owned(), user.to_owned(), issued.parse().ok()?)
        };
        if now < issued || now - issued > max_age_s {
            return None;
        }
        Some((ClientId::new(&client), UserId::new(&user), now - issued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_its_own_tokens_within_ttl_only() {
        let k = SessionKeys::from_cookie("cookie");
        let t = k.issue(&ClientId::new("c_1"), &UserId::new("u"), 1000);
        let (c, u, age) = k.verify(&t, 60, 1030).unwrap();
        assert_eq!(age, 30);
        assert_eq!((c.as_str(), u.as_str()), ("c_1", "u"));
        assert!(k.verify(&t, 60, 1061).is_none());
        assert!(SessionKeys::from_cookie("other")
            .verify(&t, 60, 1030)
            .is_none());
        let forged = format!("{}x", t);
        assert!(k.verify(&forged, 60, 1030).is_none());
    }

    #[test]
    fn no_user_id_can_shape_the_token() {
        let k = SessionKeys::from_cookie("cookie");
        // A `sub` with a newline and a timestamp in it stays one user id.
        let t = k.issue(&ClientId::new("c_1"), &UserId::new("alice\n1000"), 1000);
        let (c, u, age) = k.verify(&t, 60, 1010).unwrap();
        assert_eq!((c.as_str(), u.as_str(), age), ("c_1", "alice\n1000", 10));
        // The earlier newline form is read only with exactly three fields.
        assert!(k.verify(&k.sign("c_1\nu\n1000"), 60, 1010).is_some());
        assert!(k
            .verify(&k.sign("c_1\nalice\n1000\n1000"), 60, 1010)
            .is_none());
    }
}
