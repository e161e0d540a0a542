//! The nouns every layer shares: the [`Platform`] a consumer of a secret lives on, and the [`Snapshot`] of one
//! holder (a factory, a Synapse workspace, a web app or slot, an API Management service) as discovery read it.
//!
//! The platform is set once, when discovery lists the holder, and travels with the snapshot and every target
//! planned from it: planning, acting, testing and reporting dispatch on it, and nothing guesses it from the
//! text of a resource id.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// Where a consumer of a Key Vault secret lives. Each is one variant of the one consumer model: discovery lists
/// its holders, planning gives its targets the same verdicts, acting refreshes them and proves them with the
/// platform's own check.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Platform {
    /// Azure Data Factory: linked services and credentials, re-saved through ARM and proven with
    /// `testConnectivity`.
    #[default]
    DataFactory,
    /// Azure Synapse workspaces: linked services and credentials on the workspace's development endpoint.
    Synapse,
    /// App Service (web apps, function apps, Logic Apps Standard, and each deployment slot): Key Vault
    /// references in app settings and connection strings, refreshed with `configreferences/appsettings/refresh`.
    AppService,
    /// API Management: Key Vault-backed named values, refreshed with `refreshSecret`.
    ApiManagement,
}

impl Platform {
    /// Every platform, in the order reports list them.
    pub const ALL: [Platform; 4] = [
        Platform::DataFactory,
        Platform::Synapse,
        Platform::AppService,
        Platform::ApiManagement,
    ];

    /// The report's spelling, e.g. `dataFactory`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::DataFactory => "dataFactory",
            Platform::Synapse => "synapse",
            Platform::AppService => "appService",
            Platform::ApiManagement => "apiManagement",
        }
    }

    /// A name for people, e.g. `Data Factory`.
    pub fn label(self) -> &'static str {
        match self {
            Platform::DataFactory => "Data Factory",
            Platform::Synapse => "Synapse",
            Platform::AppService => "App Service",
            Platform::ApiManagement => "API Management",
        }
    }

    /// Whether targets on this platform are definitions (linked services, credentials) held in a factory or
    /// workspace, re-saved by writing back exactly what was read.
    pub fn holds_definitions(self) -> bool {
        matches!(self, Platform::DataFactory | Platform::Synapse)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    /// Accepts the report's spelling in any case, and the short forms `adf`, `web` and `apim`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        let found = match wanted.as_str() {
            "adf" | "datafactory" => Some(Platform::DataFactory),
            "synapse" => Some(Platform::Synapse),
            "web" | "appservice" => Some(Platform::AppService),
            "apim" | "apimanagement" => Some(Platform::ApiManagement),
            _ => None,
        };
        found.ok_or_else(|| {
            format!(
                "unknown platform `{}`: expected one of dataFactory, synapse, appService, apiManagement",
                s.trim()
            )
        })
    }
}

/// The platforms a run scans (`--platforms`, `ADF_REFRESH_PLATFORMS`); all four unless narrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platforms(BTreeSet<Platform>);

impl Default for Platforms {
    fn default() -> Self {
        Platforms(Platform::ALL.into_iter().collect())
    }
}

impl Platforms {
    /// Parses a comma-separated list; empty means all.
    pub fn parse(list: &str) -> Result<Platforms, String> {
        let chosen: BTreeSet<Platform> = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(if chosen.is_empty() {
            Platforms::default()
        } else {
            Platforms(chosen)
        })
    }

    pub fn contains(&self, platform: Platform) -> bool {
        self.0.contains(&platform)
    }

    pub fn iter(&self) -> impl Iterator<Item = Platform> + '_ {
        self.0.iter().copied()
    }
}

/// What discovery read of one holder of consumers: a factory, a Synapse workspace, a web app or one of its
/// slots, or an API Management service. Only the collections of its platform are filled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Set by discovery; never inferred from `id`.
    #[serde(default)]
    pub platform: Platform,
    /// The holder's resource id: factory, workspace, site, slot (`…/sites/{s}/slots/{slot}`) or service.
    pub id: String,
    /// The holder as ARM listed it, trimmed to what a run reads (Git mode, identity, kind, endpoints).
    pub resource: Value,
    /// Data Factory and Synapse: linked-service resources as listed, with full (masked) properties.
    #[serde(default)]
    pub linked_services: Vec<Value>,
    /// Data Factory and Synapse: credential resources as listed.
    #[serde(default)]
    pub credentials: Vec<Value>,
    /// App Service: the Key Vault references of app settings (`config/configreferences/appsettings` items;
    /// metadata only, never a value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_settings: Vec<Value>,
    /// App Service: the Key Vault references of connection strings (`config/configreferences/connectionstrings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_strings: Vec<Value>,
    /// API Management: named values as listed (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_values: Vec<Value>,
}

impl Snapshot {
    /// An empty snapshot of a holder on `platform`.
    pub fn new(platform: Platform, id: impl Into<String>, resource: Value) -> Snapshot {
        Snapshot {
            platform,
            id: id.into(),
            resource,
            ..Snapshot::default()
        }
    }

    /// Whether the factory (`properties.repoConfiguration`) or the Synapse workspace
    /// (`properties.workspaceRepositoryConfiguration`, reference/synapse-spec, workspace.json) is in Git mode.
    pub fn git_mode(&self) -> bool {
        self.platform.holds_definitions()
            && [
                "/properties/repoConfiguration",
                "/properties/workspaceRepositoryConfiguration",
            ]
            .iter()
            .any(|p| self.resource.pointer(p).is_some_and(|r| r.is_object()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_from_the_report_spelling_and_short_forms() {
        let chosen = Platforms::parse("appService, APIM").expect("platforms");
        assert!(chosen.contains(Platform::AppService));
        assert!(chosen.contains(Platform::ApiManagement));
        assert!(!chosen.contains(Platform::DataFactory));
        assert_eq!(Platforms::parse("").expect("all"), Platforms::default());
        let err = Platforms::parse("dataFactory,logicApps").expect_err("unknown");
        assert!(err.contains("logicApps"), "{err}");
    }

    #[test]
    fn a_platform_serialises_as_the_report_spells_it() {
        for platform in Platform::ALL {
            assert_eq!(
                serde_json::to_value(platform).expect("json"),
                serde_json::json!(platform.as_str())
            );
        }
    }

    #[test]
    fn git_mode_is_a_property_of_factories_and_workspaces_only() {
        let repo = serde_json::json!({"properties": {"repoConfiguration": {"type": "FactoryGitHubConfiguration"}}});
        assert!(Snapshot::new(Platform::DataFactory, "f", repo.clone()).git_mode());
        assert!(!Snapshot::new(Platform::AppService, "s", repo).git_mode());
    }
}
