//! Pure: from a factory's definitions and one rotated secret to the targets and their verdicts.
//!
//! Nothing here talks to Azure. [`crate::apply`] feeds it what discovery listed and acts on the result.

use crate::diagnose;
use crate::model::{Platform, Snapshot};
use crate::report::{Note, Reference, Resave, ResaveStatus, Target, TargetKind, Test, Verdict};
use crate::scan::{self, FactoryIndex, KeyVaultReference, Resolved};
use serde_json::Value;

/// What discovery observed of one factory or workspace; every holder is a [`Snapshot`] now.
pub type FactorySnapshot = Snapshot;

/// The rotated secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub vault: String,
    pub name: String,
    /// The new version, when known.
    pub version: Option<String>,
    /// The vault's cloud, as its Key Vault DNS suffix (`vault.azure.net`, `vault.azure.cn`, …). A same-named
    /// vault under another suffix is another vault. Empty only for the audit, which lists every cloud.
    pub vault_suffix: String,
}

/// How one reference relates to the rotated secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// It certainly names the secret.
    Certain,
    /// It may name it: only a guess says so.
    Possible,
    No,
}

/// Compares a reference with the rotated secret. A certain mismatch on either part settles it.
pub fn match_reference(reference: &KeyVaultReference, secret: &SecretRef) -> Match {
    let part = |resolved: &Resolved, wanted: &str| match resolved {
        Resolved::Certain(v) if v.eq_ignore_ascii_case(wanted) => Match::Certain,
        Resolved::Certain(_) => Match::No,
        Resolved::ParameterDefault(v) if v.eq_ignore_ascii_case(wanted) => Match::Possible,
        // A default that points elsewhere: the reference is not about this secret.
        Resolved::ParameterDefault(_) => Match::No,
        Resolved::Unresolved(_) => Match::Possible,
    };
    // A vault URL under another cloud's suffix names another vault, whatever its name.
    if let Some(suffix) = &reference.vault_suffix
        && !secret.vault_suffix.is_empty()
        && !suffix.eq_ignore_ascii_case(&secret.vault_suffix)
    {
        return Match::No;
    }
    match (
        part(&reference.vault, &secret.vault),
        part(&reference.secret_name, &secret.name),
    ) {
        (Match::No, _) | (_, Match::No) => Match::No,
        (Match::Certain, Match::Certain) => Match::Certain,
        _ => Match::Possible,
    }
}

/// The targets of one holder for the rotated secret, by its platform. `home_suffix` is the deployment's Key
/// Vault suffix: an App Service reference that names its vault only by `VaultName` is in that cloud.
pub fn plan_snapshot(snapshot: &Snapshot, secret: &SecretRef, home_suffix: &str) -> Vec<Target> {
    match snapshot.platform {
        Platform::DataFactory | Platform::Synapse => plan_factory(snapshot, secret),
        Platform::AppService | Platform::ApiManagement => {
            consumer_references(snapshot, home_suffix)
                .into_iter()
                .filter_map(|r| consumer_target(snapshot, r, secret))
                .collect()
        }
    }
}

/// One App Service reference or Key Vault-backed named value, as the holder lists it.
pub struct ConsumerReference {
    pub kind: TargetKind,
    pub name: String,
    /// Where it sits: `appSettings/<name>`, `connectionStrings/<name>` or `properties.keyVault.secretIdentifier`.
    pub path: String,
    /// A named value's `displayName`, when it differs from its name.
    pub display_name: Option<String>,
    pub located: Result<scan::SecretLocator, String>,
}

/// The references of a site, slot or API Management service, for a rotation's plan and the inventory alike: a
/// setting that is no Key Vault reference, or a named value that is not Key Vault-backed, is no consumer.
pub fn consumer_references(snapshot: &Snapshot, home_suffix: &str) -> Vec<ConsumerReference> {
    match snapshot.platform {
        Platform::AppService => {
            let settings = snapshot
                .app_settings
                .iter()
                .map(|s| (TargetKind::AppSetting, "appSettings", s));
            let strings = snapshot
                .connection_strings
                .iter()
                .map(|s| (TargetKind::ConnectionString, "connectionStrings", s));
            settings
                .chain(strings)
                .filter_map(|(kind, collection, item)| {
                    let name = item.get("name").and_then(Value::as_str)?;
                    // Some answers name the item `site/setting`: the setting is the last part.
                    let name = name.rsplit('/').next().unwrap_or(name);
                    let reference = item
                        .pointer("/properties/reference")
                        .and_then(Value::as_str)?;
                    Some(ConsumerReference {
                        kind,
                        name: name.to_string(),
                        path: format!("{collection}/{name}"),
                        display_name: None,
                        located: scan::parse_app_service_reference(reference, home_suffix)?,
                    })
                })
                .collect()
        }
        Platform::ApiManagement => snapshot
            .named_values
            .iter()
            .filter_map(|item| {
                let name = item.get("name").and_then(Value::as_str)?;
                let identifier = item
                    .pointer("/properties/keyVault/secretIdentifier")
                    .and_then(Value::as_str)?;
                let display_name = item
                    .pointer("/properties/displayName")
                    .and_then(Value::as_str)
                    .filter(|d| *d != name)
                    .map(str::to_string);
                Some(ConsumerReference {
                    kind: TargetKind::NamedValue,
                    name: name.to_string(),
                    path: "properties.keyVault.secretIdentifier".into(),
                    display_name,
                    located: scan::parse_secret_identifier(identifier),
                })
            })
            .collect(),
        Platform::DataFactory | Platform::Synapse => Vec::new(),
    }
}

/// The target for one App Service reference or named value, or `None` when it is not about this secret. A
/// reference whose vault or secret cannot be read is `ambiguous`: it is reported, never refreshed.
fn consumer_target(
    holder: &Snapshot,
    consumer: ConsumerReference,
    secret: &SecretRef,
) -> Option<Target> {
    let ConsumerReference {
        kind,
        name,
        path,
        display_name,
        located,
    } = consumer;
    let (name, path) = (name.as_str(), path.as_str());
    let (verdict, reason, reference) = match &located {
        Ok(l) => {
            let same_vault = l.vault.eq_ignore_ascii_case(&secret.vault)
                && (secret.vault_suffix.is_empty()
                    || l.suffix.eq_ignore_ascii_case(&secret.vault_suffix));
            if !same_vault || !l.secret.eq_ignore_ascii_case(&secret.name) {
                return None;
            }
            let reference = Reference {
                path: path.to_string(),
                store: String::new(),
                vault: Some(l.vault.clone()),
                secret_name: Some(l.secret.clone()),
                secret_version: l.version.clone(),
                certainty: "certain".into(),
                unresolved_because: None,
            };
            match &l.version {
                Some(v) => (
                    Verdict::Pinned,
                    format!("the reference pins version {v}, so it keeps the old value"),
                    reference,
                ),
                None => (
                    Verdict::Resave,
                    "the reference is certain and unpinned".to_string(),
                    reference,
                ),
            }
        }
        Err(why) => (
            Verdict::Ambiguous,
            format!("the Key Vault reference cannot be read: {why}"),
            Reference {
                path: path.to_string(),
                store: String::new(),
                vault: None,
                secret_name: None,
                secret_version: None,
                certainty: "unresolved".into(),
                unresolved_because: Some(why.clone()),
            },
        ),
    };
    let mut notes = Vec::new();
    if verdict == Verdict::Pinned
        && secret.version.as_deref().is_some_and(|v| {
            reference
                .secret_version
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(v))
        })
    {
        notes.push(Note::PinnedToCurrentVersion);
    }
    let kind_of_holder = match holder.platform {
        Platform::ApiManagement => "NamedValue".to_string(),
        _ => holder
            .resource
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("app")
            .to_string(),
    };
    Some(Target {
        display_name,
        references: vec![reference],
        reason,
        diagnosis: diagnose::for_consumer_verdict(holder.platform, verdict),
        notes,
        ..planned(holder, kind, name.to_string(), kind_of_holder, verdict)
    })
}

/// A target as planning leaves it on any platform, before acting: due a re-save (`dryRun` until one is made)
/// or refused one (`skipped`), not tested yet. Callers fill in what they found.
fn planned(
    holder: &Snapshot,
    kind: TargetKind,
    name: String,
    adf_type: String,
    verdict: Verdict,
) -> Target {
    Target {
        platform: holder.platform,
        resource: holder.id.clone(),
        kind,
        // `factory` stays for Data Factory and Synapse targets (CONTRACT.md).
        factory: if holder.platform.holds_definitions() {
            holder.id.clone()
        } else {
            String::new()
        },
        name,
        display_name: None,
        adf_type,
        references: Vec::new(),
        verdict,
        reason: String::new(),
        notes: Vec::new(),
        via_credential: None,
        used_by: Vec::new(),
        integration_runtime: None,
        resave: Resave::with_status(
            if verdict == Verdict::Resave {
                ResaveStatus::DryRun
            } else {
                ResaveStatus::Skipped
            },
            None,
        ),
        test: Test::not_tested("not run yet"),
        diagnosis: None,
        request_ids: Vec::new(),
        impact: None,
    }
}

/// The targets of one factory for the rotated secret: linked services and credentials that reference it,
/// and linked services that use such a credential.
pub fn plan_factory(factory: &FactorySnapshot, secret: &SecretRef) -> Vec<Target> {
    let planner = Planner::new(factory, secret);
    let mut credentials: Vec<Target> = factory
        .credentials
        .iter()
        .filter_map(|c| planner.target(c, TargetKind::Credential, None))
        .collect();
    let mut linked_services = Vec::new();
    for ls in &factory.linked_services {
        if let Some(target) = planner.target(ls, TargetKind::LinkedService, None) {
            linked_services.push(target);
            continue;
        }
        let properties = ls.get("properties").unwrap_or(&Value::Null);
        let uses = scan::credential_references(properties);
        let Some(credential) = credentials
            .iter_mut()
            .find(|c| uses.iter().any(|u| u.eq_ignore_ascii_case(&c.name)))
        else {
            continue;
        };
        if let Some(target) = planner.target(ls, TargetKind::LinkedService, Some(credential)) {
            credential.used_by.push(target.name.clone());
            linked_services.push(target);
        }
    }
    credentials.extend(linked_services);
    credentials
}

/// Classifies one definition as [`plan_factory`] would, given a fresh copy of it, without re-planning the
/// whole factory. `None` when it no longer references the secret.
pub fn plan_one(
    factory: &FactorySnapshot,
    kind: TargetKind,
    fresh: &Value,
    secret: &SecretRef,
) -> Option<Target> {
    let planner = Planner::new(factory, secret);
    let direct = planner.target(fresh, kind, None);
    if direct.is_some() || kind == TargetKind::Credential {
        return direct;
    }
    // A linked service may reach the secret through one of the factory's credentials.
    let properties = fresh.get("properties").unwrap_or(&Value::Null);
    scan::credential_references(properties)
        .iter()
        .find_map(|used| {
            let credential = factory.credentials.iter().find(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(used))
            })?;
            let credential = planner.target(credential, TargetKind::Credential, None)?;
            planner.target(fresh, kind, Some(&credential))
        })
}

/// What stays the same while one factory is planned for one secret.
struct Planner<'a> {
    factory: &'a FactorySnapshot,
    index: FactoryIndex<'a>,
    secret: &'a SecretRef,
    git_mode: bool,
}

impl<'a> Planner<'a> {
    fn new(factory: &'a FactorySnapshot, secret: &'a SecretRef) -> Self {
        Planner {
            factory,
            index: FactoryIndex::new(&factory.linked_services),
            secret,
            git_mode: factory.git_mode(),
        }
    }

    /// The target for one definition, or `None` if it does not reference the secret. A linked service that
    /// gets the secret through a credential passes that credential's target as `via_credential`.
    fn target(
        &self,
        resource: &Value,
        kind: TargetKind,
        via_credential: Option<&Target>,
    ) -> Option<Target> {
        let (factory, index, secret, git_mode) =
            (self.factory, &self.index, self.secret, self.git_mode);
        let name = resource.get("name")?.as_str()?.to_string();
        let properties = resource.get("properties").unwrap_or(&Value::Null);
        let adf_type = properties
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();

        let (matched, references): (Vec<(KeyVaultReference, Match)>, Vec<Reference>) =
            match via_credential {
                Some(credential) => (
                    Vec::new(),
                    credential
                        .references
                        .iter()
                        .map(|r| Reference {
                            path: format!("credential:{}/{}", credential.name, r.path),
                            ..r.clone()
                        })
                        .collect(),
                ),
                None => {
                    let matched: Vec<_> = scan::find_references(properties, index)
                        .into_iter()
                        .map(|r| {
                            let m = match_reference(&r, secret);
                            (r, m)
                        })
                        .filter(|(_, m)| *m != Match::No)
                        .collect();
                    let references = matched
                        .iter()
                        .map(|(r, _)| to_report_reference(r))
                        .collect();
                    (matched, references)
                }
            };
        if matched.is_empty() && via_credential.is_none() {
            return None;
        }

        let inline = scan::inline_secret_paths(properties);
        let pinned: Vec<&KeyVaultReference> = matched
            .iter()
            .filter(|(r, m)| *m == Match::Certain && r.secret_version.is_some())
            .map(|(r, _)| r)
            .collect();
        let guessed = matched.iter().any(|(_, m)| *m == Match::Possible);
        let mut notes = Vec::new();

        let (verdict, reason) =
            if let Some(credential) = via_credential.filter(|c| c.verdict != Verdict::Resave) {
                (
                    credential.verdict,
                    format!(
                        "it gets the secret through credential `{}`, whose verdict is {:?}",
                        credential.name, credential.verdict
                    ),
                )
            } else if !pinned.is_empty() {
                let versions: Vec<&str> = pinned
                    .iter()
                    .filter_map(|r| r.secret_version.as_deref())
                    .collect();
                if secret
                    .version
                    .as_deref()
                    .is_some_and(|v| versions.iter().all(|p| p.eq_ignore_ascii_case(v)))
                {
                    notes.push(Note::PinnedToCurrentVersion);
                }
                (
                    Verdict::Pinned,
                    format!("the reference pins secretVersion {}", versions.join(", ")),
                )
            } else if !inline.is_empty() {
                let shir_credential = properties
                    .pointer("/typeProperties/encryptedCredential")
                    .is_some()
                    && scan::connect_via(properties).is_some();
                if shir_credential {
                    notes.push(Note::SelfHostedIntegrationRuntimeCredential);
                }
                (
                    Verdict::InlineSecret,
                    format!("it also holds an inline secret at {}", inline.join(", ")),
                )
            } else if guessed {
                (
            Verdict::Ambiguous,
            "the match rests on a parameter default or an expression that cannot be evaluated"
                .into(),
        )
            } else {
                (
                    Verdict::Resave,
                    "every matching reference is certain, unpinned, and nothing is inline".into(),
                )
            };
        if properties
            .get("parameters")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        {
            notes.push(Note::Parameterised);
        }
        if via_credential.is_some() {
            notes.push(Note::ViaCredential);
        }
        if git_mode {
            notes.push(Note::GitMode);
        }

        Some(Target {
            references,
            reason,
            diagnosis: diagnose::for_verdict(verdict, &notes),
            notes,
            via_credential: via_credential.map(|c| c.name.clone()),
            ..planned(factory, kind, name, adf_type, verdict)
        })
    }
}

pub fn to_report_reference(r: &KeyVaultReference) -> Reference {
    let (certainty, because) = match (&r.vault, &r.secret_name) {
        (Resolved::Unresolved(why), _) | (_, Resolved::Unresolved(why)) => {
            ("unresolved", Some(why.clone()))
        }
        (Resolved::ParameterDefault(_), _) | (_, Resolved::ParameterDefault(_)) => {
            ("parameterDefault", None)
        }
        _ => ("certain", None),
    };
    Reference {
        path: r.path.clone(),
        store: r.store.clone(),
        vault: r.vault.value().map(str::to_string),
        secret_name: r.secret_name.value().map(str::to_string),
        secret_version: r.secret_version.clone(),
        certainty: certainty.into(),
        unresolved_because: because,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KV_URL: &str = "https://contoso-kv.vault.azure.net/";

    fn secret() -> SecretRef {
        SecretRef {
            vault: "contoso-kv".into(),
            name: "sql-password".into(),
            version: Some("v2".into()),
            vault_suffix: "vault.azure.net".into(),
        }
    }

    fn kv(name: &str, url: &str) -> Value {
        json!({"name": name, "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": url}}})
    }

    fn sql(name: &str, password: Value) -> Value {
        json!({"name": name, "properties": {"type": "AzureSqlDatabase", "typeProperties": {
            "connectionString": "Server=tcp:x.database.windows.net;Database=d;User ID=etl", "password": password}}})
    }

    fn kv_ref(store: &str, secret: &str) -> Value {
        json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
    }

    fn factory(linked_services: Vec<Value>) -> FactorySnapshot {
        FactorySnapshot {
            linked_services,
            ..Snapshot::new(
                Platform::DataFactory,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f",
                json!({"properties": {}}),
            )
        }
    }

    fn verdicts(targets: &[Target]) -> Vec<(String, Verdict)> {
        targets
            .iter()
            .map(|t| (t.name.clone(), t.verdict))
            .collect()
    }

    #[test]
    fn a_plain_reference_is_resaved() {
        let f = factory(vec![
            kv("KV", KV_URL),
            sql("Sql", kv_ref("KV", "sql-password")),
        ]);
        let targets = plan_factory(&f, &secret());
        assert_eq!(verdicts(&targets), [("Sql".to_string(), Verdict::Resave)]);
        assert_eq!(targets[0].references[0].path, "typeProperties.password");
        assert_eq!(targets[0].resave.status, ResaveStatus::DryRun);
    }

    #[test]
    fn the_same_secret_name_in_another_vault_is_not_matched() {
        let f = factory(vec![
            kv("Other", "https://other-kv.vault.azure.net/"),
            sql("Sql", kv_ref("Other", "sql-password")),
        ]);
        assert!(plan_factory(&f, &secret()).is_empty());
    }

    #[test]
    fn secret_names_compare_without_case_and_vault_urls_normalise() {
        let f = factory(vec![
            kv("KV", "HTTPS://Contoso-KV.VAULT.azure.net:443/"),
            sql("Sql", kv_ref("KV", "SQL-Password")),
        ]);
        assert_eq!(plan_factory(&f, &secret()).len(), 1);
    }

    #[test]
    fn a_same_named_vault_in_another_cloud_is_another_vault() {
        for other_cloud in [
            "https://contoso-kv.vault.azure.cn/",
            "https://contoso-kv.vault.usgovcloudapi.net/",
        ] {
            let f = factory(vec![
                kv("KV", other_cloud),
                sql("Sql", kv_ref("KV", "sql-password")),
            ]);
            assert!(plan_factory(&f, &secret()).is_empty(), "{other_cloud}");
            let china = SecretRef {
                vault_suffix: other_cloud
                    .trim_start_matches("https://contoso-kv.")
                    .trim_end_matches('/')
                    .into(),
                ..secret()
            };
            assert_eq!(plan_factory(&f, &china).len(), 1, "{other_cloud}");
        }
    }

    #[test]
    fn pinned_reference_is_reported_not_resaved() {
        let mut r = kv_ref("KV", "sql-password");
        r["secretVersion"] = json!("v1");
        let f = factory(vec![kv("KV", KV_URL), sql("Sql", r)]);
        let t = &plan_factory(&f, &secret())[0];
        assert_eq!(t.verdict, Verdict::Pinned);
        assert_eq!(t.resave.status, ResaveStatus::Skipped);
        assert!(t.diagnosis.is_some());
        assert!(!t.notes.contains(&Note::PinnedToCurrentVersion));
    }

    #[test]
    fn a_pin_to_the_new_version_is_noted() {
        let mut r = kv_ref("KV", "sql-password");
        r["secretVersion"] = json!("V2");
        let f = factory(vec![kv("KV", KV_URL), sql("Sql", r)]);
        assert!(
            plan_factory(&f, &secret())[0]
                .notes
                .contains(&Note::PinnedToCurrentVersion)
        );
    }

    #[test]
    fn an_inline_secret_is_never_resaved() {
        let mut ls = sql("Sql", kv_ref("KV", "sql-password"));
        ls["properties"]["typeProperties"]["connectionString"] =
            json!({"type": "SecureString", "value": "**********"});
        ls["properties"]["typeProperties"]["encryptedCredential"] = json!("ew0K");
        let f = factory(vec![kv("KV", KV_URL), ls]);
        let t = &plan_factory(&f, &secret())[0];
        assert_eq!(t.verdict, Verdict::InlineSecret);
        assert!(t.reason.contains("typeProperties.connectionString"));
    }

    #[test]
    fn shir_held_credentials_are_flagged() {
        let mut ls = sql("Sql", kv_ref("KV", "sql-password"));
        ls["properties"]["typeProperties"]["encryptedCredential"] = json!("ew0K");
        ls["properties"]["connectVia"] =
            json!({"referenceName": "shir", "type": "IntegrationRuntimeReference"});
        let f = factory(vec![kv("KV", KV_URL), ls]);
        let t = &plan_factory(&f, &secret())[0];
        assert_eq!(t.verdict, Verdict::InlineSecret);
        assert!(
            t.notes
                .contains(&Note::SelfHostedIntegrationRuntimeCredential)
        );
    }

    #[test]
    fn a_match_through_a_parameter_default_is_ambiguous() {
        let mut ls = sql("Sql", kv_ref("KV", "@{linkedService().secret}"));
        ls["properties"]["parameters"] =
            json!({"secret": {"type": "String", "defaultValue": "sql-password"}});
        let f = factory(vec![kv("KV", KV_URL), ls]);
        let t = &plan_factory(&f, &secret())[0];
        assert_eq!(t.verdict, Verdict::Ambiguous);
        assert_eq!(t.references[0].certainty, "parameterDefault");
        assert!(t.notes.contains(&Note::Parameterised));
    }

    #[test]
    fn a_default_pointing_elsewhere_is_not_affected() {
        let mut ls = sql("Sql", kv_ref("KV", "@{linkedService().secret}"));
        ls["properties"]["parameters"] =
            json!({"secret": {"type": "String", "defaultValue": "another-secret"}});
        let f = factory(vec![kv("KV", KV_URL), ls]);
        assert!(plan_factory(&f, &secret()).is_empty());
    }

    #[test]
    fn an_unresolvable_expression_in_the_right_vault_is_ambiguous() {
        let ls = sql(
            "Sql",
            kv_ref("KV", "@concat('sql-', pipeline().parameters.x)"),
        );
        let f = factory(vec![kv("KV", KV_URL), ls]);
        let t = &plan_factory(&f, &secret())[0];
        assert_eq!(t.verdict, Verdict::Ambiguous);
        assert_eq!(t.references[0].certainty, "unresolved");
    }

    #[test]
    fn the_credential_path_yields_the_credential_and_its_users() {
        let mut f = factory(vec![
            kv("KV", KV_URL),
            json!({"name": "Lake", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://lake.dfs.core.windows.net",
                "credential": {"referenceName": "SpCred", "type": "CredentialReference"}}}}),
            json!({"name": "Unrelated", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://x"}}}),
        ]);
        f.credentials = vec![
            json!({"name": "SpCred", "properties": {"type": "ServicePrincipal", "typeProperties": {
            "servicePrincipalId": "app-id", "tenant": "t", "servicePrincipalKey": kv_ref("KV", "sql-password")}}}),
        ];
        let targets = plan_factory(&f, &secret());
        assert_eq!(
            verdicts(&targets),
            [
                ("SpCred".to_string(), Verdict::Resave),
                ("Lake".to_string(), Verdict::Resave)
            ]
        );
        assert_eq!(targets[0].kind, TargetKind::Credential);
        assert_eq!(targets[0].used_by, ["Lake"]);
        assert_eq!(targets[1].via_credential.as_deref(), Some("SpCred"));
        assert_eq!(
            targets[1].references[0].path,
            "credential:SpCred/typeProperties.servicePrincipalKey"
        );
    }

    #[test]
    fn one_definition_is_classified_as_the_whole_factory_would() {
        let mut f = factory(vec![
            kv("KV", KV_URL),
            json!({"name": "Lake", "properties": {"type": "AzureBlobFS", "typeProperties": {
                "credential": {"referenceName": "SpCred", "type": "CredentialReference"}}}}),
            sql("Sql", kv_ref("KV", "sql-password")),
        ]);
        f.credentials = vec![
            json!({"name": "SpCred", "properties": {"type": "ServicePrincipal", "typeProperties": {
            "servicePrincipalKey": kv_ref("KV", "sql-password")}}}),
        ];
        let whole = plan_factory(&f, &secret());
        for target in &whole {
            let list = if target.kind == TargetKind::Credential {
                &f.credentials
            } else {
                &f.linked_services
            };
            let fresh = list
                .iter()
                .find(|r| r["name"] == target.name.as_str())
                .unwrap();
            let one = plan_one(&f, target.kind, fresh, &secret()).expect("still a target");
            assert_eq!(
                (one.verdict, &one.references, &one.via_credential),
                (target.verdict, &target.references, &target.via_credential)
            );
        }
        let mut edited = f.linked_services[2].clone();
        edited["properties"]["typeProperties"]["password"]["secretVersion"] = json!("v1");
        assert_eq!(
            plan_one(&f, TargetKind::LinkedService, &edited, &secret()).map(|t| t.verdict),
            Some(Verdict::Pinned)
        );
        edited["properties"]["typeProperties"]["password"] = json!("inline now");
        assert!(plan_one(&f, TargetKind::LinkedService, &edited, &secret()).is_none());
    }

    #[test]
    fn git_mode_is_noted_on_every_target() {
        let mut f = factory(vec![
            kv("KV", KV_URL),
            sql("Sql", kv_ref("KV", "sql-password")),
        ]);
        f.resource =
            json!({"properties": {"repoConfiguration": {"type": "FactoryGitHubConfiguration"}}});
        let t = &plan_factory(&f, &secret())[0];
        assert!(t.notes.contains(&Note::GitMode));
        assert_eq!(
            t.diagnosis.as_ref().map(|d| d.code.as_str()),
            Some("gitMode"),
            "Git mode carries its advice"
        );
    }

    #[test]
    fn a_synapse_workspace_in_git_mode_is_noted_too() {
        let mut f = factory(vec![
            kv("KV", KV_URL),
            sql("Sql", kv_ref("KV", "sql-password")),
        ]);
        f.resource = json!({"properties": {"workspaceRepositoryConfiguration": {"type": "WorkspaceGitHubConfiguration"}}});
        assert!(f.git_mode());
        assert!(
            plan_factory(&f, &secret())[0]
                .notes
                .contains(&Note::GitMode)
        );
        f.resource = json!({"properties": {"connectivityEndpoints": {"dev": "https://w.dev.azuresynapse.net"}}});
        assert!(!f.git_mode());
    }

    #[test]
    fn the_key_vault_linked_service_itself_is_not_a_target() {
        let f = factory(vec![kv("KV", KV_URL)]);
        assert!(plan_factory(&f, &secret()).is_empty());
    }
}
