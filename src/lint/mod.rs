//! Pure: checks a factory's definitions, as they sit in its Git folder or in an exported ARM template, for what
//! will break or be missed when a Key Vault secret rotates, before anything is published.
//!
//! [`load`] reads a folder or a template into [`Definition`]s (the only file access); [`lint`] applies the
//! [`Rule`]s to them with the same scanner the refresh uses ([`crate::scan`]); [`output`] writes text, the
//! `adf-secret-refresh/lint/v1` JSON document, or SARIF 2.1.0 for code scanning.

pub mod arm_template;
pub mod load;
pub mod output;
pub mod position;

use crate::diagnose;
use crate::report::{Diagnosis, Note, Owner, Verdict};
use crate::scan::{self, FactoryIndex, Resolved};
use position::Lines;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The schema name of the JSON document.
pub const SCHEMA: &str = "adf-secret-refresh/lint/v1";

/// What a definition is. The names are the folders ADF writes in Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    LinkedService,
    Credential,
    IntegrationRuntime,
    Factory,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::LinkedService,
        Kind::Credential,
        Kind::IntegrationRuntime,
        Kind::Factory,
    ];

    /// The folder of a factory's (or Synapse workspace's) Git layout that holds this kind.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::LinkedService => "linkedService",
            Kind::Credential => "credential",
            Kind::IntegrationRuntime => "integrationRuntime",
            Kind::Factory => "factory",
        }
    }

    /// Words for people: `linked service`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::LinkedService => "linked service",
            Kind::Credential => "credential",
            Kind::IntegrationRuntime => "integration runtime",
            Kind::Factory => "factory",
        }
    }

    /// The kind of an ARM resource type, for Data Factory and Synapse; `None` for everything else.
    pub fn from_arm_type(resource_type: &str) -> Option<Kind> {
        let t = resource_type.to_ascii_lowercase();
        if !(t.starts_with("microsoft.datafactory/factories")
            || t.starts_with("microsoft.synapse/workspaces"))
        {
            return None;
        }
        match t.split('/').nth(2) {
            None => Some(Kind::Factory),
            Some("linkedservices") => Some(Kind::LinkedService),
            Some("credentials") => Some(Kind::Credential),
            Some("integrationruntimes") => Some(Kind::IntegrationRuntime),
            Some(_) => None,
        }
    }
}

/// How bad a finding is, as SARIF levels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// A check, with a stable id that code scanning keys its alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    PinnedSecretVersion,
    InlineSecret,
    SelfHostedCredential,
    DanglingStore,
    UnresolvedReference,
    UnwatchedVault,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::PinnedSecretVersion,
        Rule::InlineSecret,
        Rule::SelfHostedCredential,
        Rule::DanglingStore,
        Rule::UnresolvedReference,
        Rule::UnwatchedVault,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::PinnedSecretVersion => "pinned-secret-version",
            Rule::InlineSecret => "inline-secret",
            Rule::SelfHostedCredential => "self-hosted-credential",
            Rule::DanglingStore => "dangling-store",
            Rule::UnresolvedReference => "unresolved-reference",
            Rule::UnwatchedVault => "unwatched-vault",
        }
    }

    /// The rule's name in SARIF (`PinnedSecretVersion`).
    pub fn name(self) -> String {
        self.id()
            .split('-')
            .map(crate::report::capitalise)
            .collect()
    }

    /// One line for a rule list.
    pub fn title(self) -> &'static str {
        match self {
            Rule::PinnedSecretVersion => "A Key Vault reference pins secretVersion",
            Rule::InlineSecret => "A secret is held inline instead of in Key Vault",
            Rule::SelfHostedCredential => {
                "A credential is kept on a self-hosted integration runtime"
            }
            Rule::DanglingStore => "A Key Vault reference names a store that is not in the factory",
            Rule::UnresolvedReference => "A vault or secret name cannot be resolved",
            Rule::UnwatchedVault => {
                "A Key Vault reference reads a vault this deployment does not watch"
            }
        }
    }

    pub fn level(self) -> Level {
        match self {
            Rule::PinnedSecretVersion | Rule::DanglingStore => Level::Error,
            _ => Level::Warning,
        }
    }

    /// The cause, the fix and who makes it, worded as the refresh reports word them.
    pub fn diagnosis(self) -> Diagnosis {
        let from_verdict = |verdict, notes: &[Note]| {
            diagnose::for_verdict(verdict, notes).unwrap_or_else(|| Diagnosis {
                code: self.id().into(),
                cause: String::new(),
                fix: Vec::new(),
                owner: diagnose::PIPELINE_OWNER,
            })
        };
        let own = |code: &str, cause: &str, fix: &[&str], owner: Owner| Diagnosis {
            code: code.into(),
            cause: cause.into(),
            fix: fix.iter().map(|s| s.to_string()).collect(),
            owner,
        };
        match self {
            Rule::PinnedSecretVersion => Diagnosis {
                cause: "The Key Vault reference pins secretVersion, so ADF keeps using that version after the secret rotates. A re-save cannot change that.".into(),
                ..from_verdict(Verdict::Pinned, &[])
            },
            Rule::InlineSecret => Diagnosis {
                cause: "The definition holds the secret itself (a SecureString value or an encryptedCredential), so a new version in Key Vault never reaches it.".into(),
                ..from_verdict(Verdict::InlineSecret, &[])
            },
            Rule::SelfHostedCredential => from_verdict(
                Verdict::InlineSecret,
                &[Note::SelfHostedIntegrationRuntimeCredential],
            ),
            Rule::DanglingStore => own(
                "danglingStore",
                "The Key Vault reference names a store that is not an AzureKeyVault linked service of this factory, so ADF cannot resolve the secret once this is published.",
                &[
                    "Add the Key Vault linked service to the factory, or correct store.referenceName to the one that exists.",
                    "Publish only when every linked service a reference names is part of the factory.",
                ],
                diagnose::PIPELINE_OWNER,
            ),
            Rule::UnresolvedReference => own(
                "unresolvedReference",
                "The vault or the secret name comes from an expression or a parameter whose value is not known here, so nothing can tell which secret it reads, and a rotation may pass it by.",
                &[
                    "Use a literal secret name and a literal Key Vault baseUrl where you can.",
                    "In an ARM template, give the parameter a value in the parameters file.",
                ],
                diagnose::PIPELINE_OWNER,
            ),
            Rule::UnwatchedVault => own(
                "vaultNotCovered",
                "The reference reads a vault that this deployment does not watch (--vault-allow / ADF_REFRESH_VAULTS), so a new version there is not refreshed automatically.",
                &[
                    "Add the vault to ADF_REFRESH_VAULTS and subscribe the deployment to its Key Vault events, or move the secret to a watched vault.",
                ],
                diagnose::PLATFORM_OWNER,
            ),
        }
    }
}

/// Where a definition was read from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file, relative to the PATH given, with `/` separators.
    pub file: String,
    pub lines: Arc<Lines>,
    /// The path of the resource object within the file: empty for a Git file, `resources[3]` in a template.
    pub prefix: String,
}

impl Source {
    /// The line of a value, by its path within the resource object (`properties.typeProperties.password`).
    pub fn line(&self, path: &str) -> u32 {
        if self.prefix.is_empty() {
            self.lines.line(path)
        } else if path.is_empty() {
            self.lines.line(&self.prefix)
        } else {
            self.lines.line(&format!("{}.{path}", self.prefix))
        }
    }
}

/// One linked service, credential, integration runtime or factory.
#[derive(Debug, Clone)]
pub struct Definition {
    pub kind: Kind,
    pub name: String,
    /// `{"name": …, "properties": …}`, as the scanner reads resources.
    pub document: Value,
    pub source: Source,
    /// Template expressions that could not be evaluated: their path within the resource object, and why.
    pub unresolved: Vec<(String, String)>,
    /// Values a secure template parameter fills at deployment, by path within the resource object.
    pub secure: Vec<String>,
}

impl Definition {
    pub fn new(kind: Kind, name: String, properties: Value, source: Source) -> Self {
        Definition {
            kind,
            document: json!({"name": name, "properties": properties}),
            name,
            source,
            unresolved: Vec::new(),
            secure: Vec::new(),
        }
    }

    pub fn properties(&self) -> &Value {
        &self.document["properties"]
    }

    fn unresolved_under(&self, path: &str) -> Option<&(String, String)> {
        self.unresolved
            .iter()
            .find(|(p, _)| p == path || p.starts_with(&format!("{path}.")))
    }
}

/// How a PATH was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Layout {
    /// `linkedService/*.json`, `credential/*.json`, … as ADF and Synapse write them in Git.
    GitFolder,
    /// `ARMTemplateForFactory.json` (or Synapse's `TemplateForWorkspace.json`) and its parameters file.
    ArmTemplate,
}

/// Everything read from one PATH: one factory or workspace.
#[derive(Debug, Clone)]
pub struct Factory {
    /// The PATH as given.
    pub root: String,
    /// Whether the PATH is a template file rather than a folder.
    pub root_is_file: bool,
    pub layouts: Vec<Layout>,
    pub definitions: Vec<Definition>,
    /// Definitions whose file could not be read, by kind and the name the file gives them (ADF names a Git
    /// file after its resource): nothing about them can be said, not even that they are missing.
    pub unreadable: Vec<(Kind, String)>,
}

impl Factory {
    fn is_unreadable(&self, kind: Kind, name: &str) -> bool {
        self.unreadable
            .iter()
            .any(|(k, n)| *k == kind && n.eq_ignore_ascii_case(name))
    }
}

/// What the caller chose.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Vault names this deployment watches; empty means no `unwatched-vault` check.
    pub vault_allow: Vec<String>,
}

/// One rule that fired, at one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule: Rule,
    /// The PATH given.
    pub root: String,
    /// The file, relative to `root`, with `/` separators.
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    pub name: String,
    /// Where the value sits within the definition's `properties`, e.g. `typeProperties.password.secretVersion`.
    pub property: String,
    /// What is wrong here. Names only: never a secret's value.
    pub message: String,
}

/// Applies every rule to one factory's definitions.
pub fn lint(factory: &Factory, options: &Options) -> Vec<Finding> {
    let linked_services: Vec<&Definition> = factory
        .definitions
        .iter()
        .filter(|d| d.kind == Kind::LinkedService)
        .collect();
    let index = FactoryIndex::new(linked_services.iter().map(|d| &d.document));
    let key_vaults: HashMap<String, &Definition> = linked_services
        .iter()
        .filter(|d| is_type(d.properties(), "AzureKeyVault"))
        .map(|d| (d.name.to_ascii_lowercase(), *d))
        .collect();
    let runtimes: HashMap<String, &Definition> = factory
        .definitions
        .iter()
        .filter(|d| d.kind == Kind::IntegrationRuntime)
        .map(|d| (d.name.to_ascii_lowercase(), d))
        .collect();
    let allowed: BTreeSet<String> = options
        .vault_allow
        .iter()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();

    let mut findings = Vec::new();
    for definition in factory
        .definitions
        .iter()
        .filter(|d| d.kind != Kind::Factory)
    {
        let mut found = |rule: Rule, property: String, message: String| {
            findings.push(Finding {
                rule,
                root: factory.root.clone(),
                file: definition.source.file.clone(),
                line: definition.source.line(&format!("properties.{property}")),
                kind: definition.kind,
                name: definition.name.clone(),
                property,
                message,
            });
        };
        let what = format!("{} `{}`", definition.kind.label(), definition.name);
        let properties = definition.properties();

        for reference in scan::find_references(properties, &index) {
            let at = |leaf: &str| format!("{}.{leaf}", reference.path);
            let secret = match &reference.secret_name {
                Resolved::Unresolved(_) => "a secret".to_string(),
                named => format!("secret `{}`", named.value().unwrap_or_default()),
            };
            if let Some(version) = &reference.secret_version {
                found(
                    Rule::PinnedSecretVersion,
                    at("secretVersion"),
                    format!(
                        "{what} pins {secret} to version {version} at {}.",
                        reference.path
                    ),
                );
            }

            // The secret name: a template expression left unevaluated, or an ADF expression we cannot evaluate.
            let secret_path = format!("properties.{}", at("secretName"));
            let unresolved_secret = definition
                .unresolved_under(&secret_path)
                .map(|(_, why)| why.to_string())
                .or_else(|| match &reference.secret_name {
                    Resolved::Unresolved(why) => Some(why.clone()),
                    _ => None,
                });
            if let Some(why) = unresolved_secret {
                found(
                    Rule::UnresolvedReference,
                    at("secretName"),
                    format!(
                        "{what}: the secret name at {} cannot be resolved: {why}.",
                        reference.path
                    ),
                );
            }

            let store_name_path = format!("properties.{}", at("store.referenceName"));
            if let Some((_, why)) = definition.unresolved_under(&store_name_path) {
                found(
                    Rule::UnresolvedReference,
                    at("store.referenceName"),
                    format!(
                        "{what}: the store of the reference at {} cannot be resolved: {why}.",
                        reference.path
                    ),
                );
                continue;
            }
            let Some(store) = key_vaults.get(&reference.store.to_ascii_lowercase()) else {
                // A store whose file could not be read may well exist: that file is reported as unreadable.
                if factory.is_unreadable(Kind::LinkedService, &reference.store) {
                    continue;
                }
                found(
                    Rule::DanglingStore,
                    at("store.referenceName"),
                    format!(
                        "{what} reads {secret} from store `{}`, which is not an AzureKeyVault linked service of this factory.",
                        reference.store
                    ),
                );
                continue;
            };
            let passed = format!("properties.{}", at("store.parameters"));
            let vault_unresolved = store
                .unresolved_under("properties.typeProperties.baseUrl")
                .map(|(_, why)| format!("the baseUrl of store `{}`: {why}", store.name))
                .or_else(|| {
                    definition
                        .unresolved_under(&passed)
                        .map(|(_, why)| why.clone())
                })
                .or_else(|| match &reference.vault {
                    Resolved::Unresolved(why) => Some(why.clone()),
                    _ => None,
                });
            if let Some(why) = vault_unresolved {
                found(
                    Rule::UnresolvedReference,
                    at("store"),
                    format!(
                        "{what}: the vault of the reference at {} cannot be resolved: {why}.",
                        reference.path
                    ),
                );
            } else if let Some(vault) = reference.vault.value()
                && !allowed.is_empty()
                && !allowed.contains(&vault.to_ascii_lowercase())
            {
                found(
                    Rule::UnwatchedVault,
                    at("store.referenceName"),
                    format!(
                        "{what} reads {secret} from vault `{vault}` (store `{}`), which is not in the watched list.",
                        store.name
                    ),
                );
            }
        }

        let mut inline = scan::inline_secret_paths(properties);
        // A secure template parameter is a secret written into the definition at deployment.
        for path in &definition.secure {
            let Some(path) = path.strip_prefix("properties.") else {
                continue;
            };
            if !inline
                .iter()
                .any(|p| path == p || path.starts_with(&format!("{p}.")))
            {
                inline.push(path.to_string());
            }
        }
        let on_self_hosted = inline
            .iter()
            .any(|p| p.rsplit('.').next() == Some("encryptedCredential"))
            && scan::connect_via(properties).is_some_and(|runtime| {
                // A runtime outside the folder may well be self-hosted; only a known other type clears it.
                runtimes
                    .get(&runtime.to_ascii_lowercase())
                    .is_none_or(|ir| is_type(ir.properties(), "SelfHosted"))
            });
        for path in inline {
            if on_self_hosted {
                let runtime = scan::connect_via(properties).unwrap_or_default();
                found(
                    Rule::SelfHostedCredential,
                    path.clone(),
                    format!(
                        "{what} keeps the credential at {path} on self-hosted integration runtime `{runtime}`."
                    ),
                );
            } else {
                found(
                    Rule::InlineSecret,
                    path.clone(),
                    format!("{what} holds an inline secret at {path}."),
                );
            }
        }
    }
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.rule, &a.property).cmp(&(&b.file, b.line, b.rule, &b.property))
    });
    findings.dedup();
    findings
}

/// What `lint` found over every PATH.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The factories read, in the order of their PATHs (a PATH that holds neither layout gives none).
    pub factories: Vec<Factory>,
    pub findings: Vec<Finding>,
    /// Every PATH or file that could not be read. The rest is linted all the same, but the run fails (exit 1):
    /// a pull request must not pass on a file that was never read.
    pub errors: Vec<load::InputError>,
}

/// Reads and lints every PATH, going on past files that cannot be read.
pub fn check(paths: &[std::path::PathBuf], options: &Options) -> Checked {
    let mut checked = Checked::default();
    for path in paths {
        let loaded = load::load(path);
        checked.errors.extend(loaded.errors);
        if let Some(factory) = loaded.factory {
            checked.findings.extend(lint(&factory, options));
            checked.factories.push(factory);
        }
    }
    checked
}

fn is_type(properties: &Value, type_name: &str) -> bool {
    properties
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(type_name))
}

#[cfg(test)]
mod tests;
