//! Identifiers minted by the node: client ids, anonymous user ids, connection ids, room epochs.
//!
//! Ids are newtypes over `Arc<str>` (cheap to clone into every message and map) so a user id can
//! never be passed where a client id is expected.

use rand::distributions::Alphanumeric;
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

macro_rules! str_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an existing id.
            pub fn new(s: &str) -> Self {
                Self(Arc::from(s))
            }

            /// Returns the id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

str_id!(
    /// A client id (`c_…`): stable across a session resume.
    ClientId
);
str_id!(
    /// A user id: the JWT `sub`, or a generated `anon-…` id when auth is not required.
    UserId
);

fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

impl ClientId {
    /// Mints a fresh client id.
    pub fn generate() -> Self {
        Self::new(&format!("c_{}", random_alnum(16)))
    }
}

impl UserId {
    /// Mints an anonymous user id.
    pub fn anonymous() -> Self {
        Self::new(&format!("anon-{}", random_alnum(12)))
    }

    /// The id's shared string (a clone is a reference count, not a copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

/// A connection id, unique within this node's process; a resumed client gets a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Mints the next connection id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Mints a room epoch: 8 hex characters, changed whenever a room's history is lost.
pub fn new_epoch() -> Arc<str> {
    let v: u32 = rand::thread_rng().gen();
    Arc::from(format!("{v:08x}"))
}

/// Microseconds since the Unix epoch, used to stamp publishes (comparable across nodes).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
