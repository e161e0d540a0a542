//! The tokens the emulator has issued: opaque random strings remembered with their audience, client and
//! expiry, so ARM, Key Vault and Synapse can check the tokens they are shown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{lock, random_secret};

/// The audiences ARM accepts (after [`normalize_audience`]).
pub(crate) const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
];
/// The audience Key Vault accepts.
pub(crate) const KEYVAULT_AUDIENCE: &str = "https://vault.azure.net";

/// `https://management.azure.com/.default` and `https://management.azure.com/` both become
/// `https://management.azure.com`.
pub(crate) fn normalize_audience(resource: &str) -> String {
    let trimmed = resource.trim();
    let trimmed = trimmed.strip_suffix("/.default").unwrap_or(trimmed);
    trimmed.trim_end_matches('/').to_ascii_lowercase()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub audience: String,
    pub client_id: String,
    pub expires_on: u64,
}

/// What a presented token turned out to be.
pub(crate) enum TokenCheck {
    Unknown,
    Expired,
    Valid(Issued),
}

/// Every token issued so far.
#[derive(Default)]
pub(crate) struct Registry {
    issued: Mutex<HashMap<String, Issued>>,
}

impl Registry {
    pub(crate) fn issue(
        &self,
        audience: &str,
        client_id: &str,
        lifetime_secs: u64,
    ) -> (String, u64) {
        let token = random_secret("emu-");
        let expires_on = now_secs() + lifetime_secs;
        lock(&self.issued).insert(
            token.clone(),
            Issued {
                audience: normalize_audience(audience),
                client_id: client_id.to_owned(),
                expires_on,
            },
        );
        (token, expires_on)
    }

    pub(crate) fn check(&self, token: &str) -> TokenCheck {
        match lock(&self.issued).get(token) {
            None => TokenCheck::Unknown,
            Some(issued) if issued.expires_on <= now_secs() => TokenCheck::Expired,
            Some(issued) => TokenCheck::Valid(issued.clone()),
        }
    }

    pub(crate) fn all(&self) -> Vec<String> {
        lock(&self.issued).keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_normalize() {
        for input in [
            "https://management.azure.com",
            "https://management.azure.com/",
            "https://management.azure.com/.default",
            "HTTPS://Management.Azure.com//",
        ] {
            assert_eq!(normalize_audience(input), "https://management.azure.com");
        }
    }

    #[test]
    fn registry_remembers_audience() {
        let registry = Registry::default();
        let (token, _) = registry.issue("https://vault.azure.net/.default", "c", 60);
        assert!(token.starts_with("emu-") && token.len() == 44);
        match registry.check(&token) {
            TokenCheck::Valid(issued) => assert_eq!(issued.audience, KEYVAULT_AUDIENCE),
            _ => panic!("token should be valid"),
        }
        assert!(matches!(registry.check("nope"), TokenCheck::Unknown));
        let (old, _) = registry.issue("https://vault.azure.net", "c", 0);
        assert!(matches!(registry.check(&old), TokenCheck::Expired));
    }
}
