//! Client authentication at connect: JWT (HS256 or RS256, the algorithm pinned by config, never
//! read from the token), `leeway` ≤ 5 s, `nbf` checked, `aud`/`iss` checked when configured, and
//! the optional `rooms` claim of glob patterns that limits which rooms a user may join/publish.
//!
//! Owns token verification only; where the token comes from (query, header, subprotocol) is the
//! WebSocket edge's business, and closing at `exp` is the connection's.

use crate::ids::UserId;
use cluster_config::{AuthSection, JwtAlgorithm};
use globset::{Glob, GlobSet, GlobSetBuilder};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// An authenticated (or anonymous) identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// User id (`sub`, or a generated anonymous id).
    pub user: UserId,
    /// Rooms the user may join and publish to; `None` means all (boxed: most tokens carry
    /// none, and every connection keeps its identity).
    pub rooms: Option<Box<GlobSet>>,
    /// Token expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// No token was presented (auth not required): the user id was generated.
    pub anonymous: bool,
}

impl Identity {
    /// Whether the identity may join / publish to `room`.
    pub fn may_access(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|g| g.is_match(room))
    }
}

/// Why a client was not authenticated (answered 401 before the upgrade).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, and auth is required.
    #[error("a token is required")]
    Missing,
    /// The token failed verification.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Why the authenticator could not be built from config.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The key in config is unusable.
    #[error("`{field}`: {reason}")]
    Key {
        /// Config field.
        field: &'static str,
        /// Problem.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Verifies client tokens.
pub struct Authenticator {
    required: bool,
    key: Option<DecodingKey>,
    validation: Validation,
}

impl Authenticator {
    /// Builds the verifier from `[auth]`.
    pub fn new(cfg: &AuthSection) -> Result<Self, AuthSetupError> {
        let (alg, key) = match cfg.algorithm {
            JwtAlgorithm::Hs256 => (
                Algorithm::HS256,
                cfg.jwt_secret
                    .as_ref()
                    .map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            ),
            JwtAlgorithm::Rs256 => {
                let pem = cfg.jwt_public_key.as_deref().unwrap_or_default();
                let key =
                    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| AuthSetupError::Key {
                        field: "auth.jwt_public_key_file",
                        reason: e.to_string(),
                    })?;
                (Algorithm::RS256, Some(key))
            }
        };
        let mut v = Validation::new(alg);
        v.leeway = cfg.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if cfg.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&cfg.audience);
            required.push("aud");
        }
        if !cfg.issuer.is_empty() {
            v.set_issuer(&cfg.issuer);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        Ok(Self {
            required: cfg.required,
            key,
            validation: v,
        })
    }

    /// Authenticates a connecting client from its token, if any.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            if self.required {
                return Err(AuthError::Missing);
            }
            return Ok(Identity {
                user: UserId::anonymous(),
                rooms: None,
                expires_at: None,
                anonymous: true,
            });
        };
        let Some(key) = &self.key else {
            return Err(AuthError::Invalid(
                "this node has no key to verify tokens".into(),
            ));
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let c = data.claims;
        if c.sub.is_empty() || c.sub.len() > 256 {
            return Err(AuthError::Invalid("`sub` must be 1-256 characters".into()));
        }
        let rooms = match c.rooms {
            None => None,
            Some(patterns) => {
                let mut b = GlobSetBuilder::new();
                for p in &patterns {
                    let g = Glob::new(p)
                        .map_err(|e| AuthError::Invalid(format!("`rooms` pattern `{p}`: {e}")))?;
                    b.add(g);
                }
                Some(Box::new(
                    b.build()
                        .map_err(|e| AuthError::Invalid(format!("`rooms`: {e}")))?,
                ))
            }
        };
        Ok(Identity {
            user: UserId::new(&c.sub),
            rooms,
            expires_at: Some(c.exp),
            anonymous: false,
        })
    }
}
