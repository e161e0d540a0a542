//! Small helpers every module may use and that use nothing of the crate: locking, time formatting and
//! random secret-looking strings.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning: a panicking handler must not take the emulator down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unix seconds as RFC 3339 UTC (`2024-06-01T00:00:00Z`).
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A random secret-looking string: `prefix` + 40 hex digits.
pub(crate) fn random_secret(prefix: &str) -> String {
    let hex = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    format!("{prefix}{}", &hex[..40])
}

/// A new linked-service style etag, e.g. `1500474f-0000-0200-0000-5cbe090d0000`.
pub(crate) fn new_etag() -> String {
    format!(
        "{:08x}-0000-0200-0000-{:012x}",
        fastrand::u32(..),
        fastrand::u64(..(1 << 48))
    )
}

/// A deterministic 32-hex-digit version id.
pub(crate) fn version_id(parts: &[&str]) -> String {
    fn fnv(seed: u64, parts: &[&str]) -> u64 {
        let mut hash = seed;
        for part in parts {
            for byte in part.bytes().chain([0xff]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325, parts),
        fnv(0x6c62_272e_07bb_0142, parts)
    )
}
