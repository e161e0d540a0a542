//! Pure: what we observed → the likely cause, the fix steps, and who must take them.
//!
//! A table of rules over ADF, Entra and Key Vault error texts, plus the product's own verdicts. The first rule
//! whose needle appears in the message wins. An unknown error keeps its raw message and says so; nothing here
//! invents a cause.

use crate::model::Platform;
use crate::report::{Diagnosis, Note, Owner, Test, TestStatus, Verdict};
use serde_json::Value;

/// Who must act.
pub const PIPELINE_OWNER: Owner = Owner::PipelineOwner;
pub const ENTRA_ADMIN: Owner = Owner::EntraAdmin;
pub const PLATFORM_OWNER: Owner = Owner::PlatformOwner;
pub const RUNTIME_OWNER: Owner = Owner::RuntimeOwner;
pub const APP_OWNER: Owner = Owner::AppOwner;

struct Rule {
    code: &'static str,
    /// Any of these, case-insensitively, in the error text.
    needles: &'static [&'static str],
    cause: &'static str,
    fix: &'static [&'static str],
    owner: Owner,
}

const RULES: &[Rule] = &[
    Rule {
        code: "AADSTS7000222",
        needles: &["AADSTS7000222"],
        cause: "The app registration's client secret has expired. Re-saving the linked service cannot fix this.",
        fix: &[
            "In Entra ID > App registrations > the app > Certificates & secrets, create a new client secret.",
            "Store it as a new version of the Key Vault secret; this product then re-saves and tests the linked services.",
            "Delete the expired client secret from the app registration.",
        ],
        owner: ENTRA_ADMIN,
    },
    Rule {
        code: "AADSTS7000215",
        needles: &["AADSTS7000215"],
        cause: "The value in Key Vault is not a valid client secret of the app (a wrong value was stored, or the secret's ID was stored instead of its value).",
        fix: &[
            "In Entra ID > App registrations > the app > Certificates & secrets, check which secrets exist and when they expire.",
            "Store the secret's Value (not its Secret ID) as a new version of the Key Vault secret.",
        ],
        owner: ENTRA_ADMIN,
    },
    Rule {
        code: "AADSTS700016",
        needles: &["AADSTS700016"],
        cause: "The application was not found in the tenant: the client id or the tenant id in the linked service is wrong.",
        fix: &[
            "Compare the linked service's service principal id and tenant with the app registration's Application (client) ID and Directory (tenant) ID.",
            "Correct the linked service in source control (or ADF Studio) and publish.",
        ],
        owner: PIPELINE_OWNER,
    },
    Rule {
        code: "AADSTS90002",
        needles: &["AADSTS90002", "AADSTS900023"],
        cause: "The tenant was not found or is not valid: the token URL or tenant id in the linked service is wrong.",
        fix: &[
            "Check the tenant id in the linked service and in its token endpoint URL (https://login.microsoftonline.com/{tenantId}/oauth2/token).",
            "Correct it in source control (or ADF Studio) and publish.",
        ],
        owner: PIPELINE_OWNER,
    },
    Rule {
        code: "AADSTS53003",
        needles: &["AADSTS53003"],
        cause: "A Conditional Access policy blocked the sign-in of the service principal.",
        fix: &[
            "In Entra ID > Sign-in logs (service principal sign-ins), find the failure and the policy that blocked it.",
            "Exclude the workload identity from the policy, or meet its conditions (e.g. named locations).",
        ],
        owner: ENTRA_ADMIN,
    },
    Rule {
        code: "AADSTS7000112",
        needles: &["AADSTS7000112"],
        cause: "The application is disabled in the tenant.",
        fix: &[
            "Re-enable the enterprise application (service principal) in Entra ID, or switch the linked service to an active identity.",
        ],
        owner: ENTRA_ADMIN,
    },
    Rule {
        code: "keyVaultAccessDenied",
        needles: &[
            "does not have secrets get permission",
            "ForbiddenByPolicy",
            "ForbiddenByRbac",
            "AccessDenied",
            "Caller is not authorized to perform action on resource",
        ],
        cause: "The data factory's managed identity cannot read the secret from Key Vault.",
        fix: &[
            "Grant the factory's managed identity the 'Key Vault Secrets User' role on the vault (RBAC vaults), or a Get secret access policy (access-policy vaults).",
            "Re-run the test connection.",
        ],
        owner: PLATFORM_OWNER,
    },
    Rule {
        code: "interactiveAuthoringDisabled",
        needles: &["interactive authoring", "InteractiveAuthoring"],
        cause: "The managed virtual network integration runtime has interactive authoring off, so ADF cannot run a test connection. The linked service itself may be fine.",
        fix: &[
            "Enable interactive authoring on the integration runtime (ADF Studio > Manage > Integration runtimes), then re-run, or test from ADF Studio.",
        ],
        owner: PLATFORM_OWNER,
    },
    Rule {
        code: "keyVaultSecretDisabled",
        needles: &[
            "is disabled",
            "Operation get is not allowed on a disabled secret",
        ],
        cause: "The secret version ADF resolves is disabled in Key Vault.",
        fix: &["Enable the secret version in Key Vault, or create a new enabled version."],
        owner: PLATFORM_OWNER,
    },
    Rule {
        code: "keyVaultSecretNotFound",
        needles: &[
            "SecretNotFound",
            "was not found in this key vault",
            "secret not found",
        ],
        cause: "The secret (or the pinned version) does not exist in the vault ADF resolves.",
        fix: &[
            "Check the secret name, the pinned secretVersion and the Key Vault linked service's baseUrl.",
            "Correct the reference in source control and publish, or restore the secret.",
        ],
        owner: PIPELINE_OWNER,
    },
    Rule {
        code: "selfHostedIntegrationRuntimeOffline",
        needles: &["integration runtime is offline", "is offline"],
        cause: "The self-hosted integration runtime is offline, so ADF cannot connect through it.",
        fix: &[
            "Start the Integration Runtime service on the SHIR host(s) and check the node status in ADF Studio > Manage > Integration runtimes.",
            "Re-run the refresh (or ADF's test connection) once a node is online.",
        ],
        owner: RUNTIME_OWNER,
    },
    Rule {
        code: "networkUnreachable",
        needles: &[
            "could not be resolved",
            "unable to connect",
            "actively refused",
            "timed out",
            "No such host",
            "Connection reset",
        ],
        cause: "The integration runtime cannot reach the token endpoint or the vault (for a self-hosted IR: no outbound HTTPS).",
        fix: &[
            "Confirm the IR host has outbound HTTPS (443) to login.microsoftonline.com and *.vault.azure.net.",
            "Check proxies and firewalls, then re-run the test connection.",
        ],
        owner: RUNTIME_OWNER,
    },
    Rule {
        code: "20151",
        needles: &["FailedToGetOAuth2AccessToken", "20151"],
        cause: "ADF could not get an OAuth2 access token: the client credentials are invalid, the token endpoint is unreachable, or the secret has expired.",
        fix: &[
            "Verify the token endpoint URL and tenant id in the linked service.",
            "Check whether the client secret has expired (Entra ID > App registrations > Certificates & secrets).",
            "If a self-hosted IR is used, confirm it has outbound HTTPS to the authorization server.",
            "Test the linked service again once fixed.",
        ],
        owner: PIPELINE_OWNER,
    },
    Rule {
        code: "20153",
        needles: &["20153"],
        cause: "ADF could not refresh the OAuth2 token: the refresh token or credentials are no longer valid.",
        fix: &[
            "Re-authorize the connection (for user OAuth) or update the credentials, then test again.",
        ],
        owner: PIPELINE_OWNER,
    },
    Rule {
        code: "loginFailed",
        needles: &["Login failed for user"],
        cause: "The data store rejected the credentials ADF sent: ADF is still using an old secret value, or the new value is wrong.",
        fix: &[
            "If the linked service pins a secretVersion, remove the pin (or update it) in source control and publish.",
            "Check that the new secret version in Key Vault holds the password the data store expects.",
        ],
        owner: PIPELINE_OWNER,
    },
];

impl Rule {
    fn diagnosis(&self) -> Diagnosis {
        Diagnosis {
            code: self.code.into(),
            cause: self.cause.into(),
            fix: self.fix.iter().map(|s| s.to_string()).collect(),
            owner: self.owner,
        }
    }
}

/// Diagnoses an error text from a test connection or an ARM call. Unknown texts keep their message.
pub fn for_message(message: &str) -> Diagnosis {
    let haystack = message.to_ascii_lowercase();
    RULES
        .iter()
        .find(|rule| rule.needles.iter().any(|n| haystack.contains(&n.to_ascii_lowercase())))
        .map(Rule::diagnosis)
        .unwrap_or_else(|| Diagnosis {
            code: "unknown".into(),
            cause: format!("Not recognised; ADF said: {}", shorten(message, 500)),
            fix: vec![
                "Read ADF's message above, fix the linked service, and run ADF's test connection again.".into(),
            ],
            owner: PIPELINE_OWNER,
        })
}

/// The diagnosis of a self-hosted integration runtime found offline before testing.
pub fn runtime_offline() -> Diagnosis {
    RULES
        .iter()
        .find(|rule| rule.code == "selfHostedIntegrationRuntimeOffline")
        .map_or_else(|| for_message("offline"), Rule::diagnosis)
}

/// A test connection that could not be run because ARM refused the call itself.
pub fn test_not_run(error: &str) -> Test {
    Test {
        status: TestStatus::Error,
        message: Some(error.to_string()),
        raw: None,
        diagnosis: Some(for_message(error)),
    }
}

/// What ADF's answer to a test connection means, and the note it adds to the target, if any.
///
/// A 400 means "interactive authoring is off" only when ADF's message says so (azure.datafactory.tools #255);
/// any other 400 is a failed test with ADF's message. A 2xx without `succeeded` is an error, with the body
/// (azure.datafactory.tools #382).
pub fn test_outcome(status: u16, body: Value) -> (Test, Option<Note>) {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let cloud_message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = (!errors.is_empty())
        .then(|| errors.join(" | "))
        .or(cloud_message);
    if !(200..300).contains(&status) {
        let text = message.unwrap_or_else(|| format!("HTTP {status}"));
        let diagnosis = for_message(&text);
        let authoring_off = status == 400 && diagnosis.code == "interactiveAuthoringDisabled";
        let test = Test {
            status: if authoring_off {
                TestStatus::NotTested
            } else {
                TestStatus::Failed
            },
            message: Some(text),
            raw: Some(body),
            diagnosis: Some(diagnosis),
        };
        return (
            test,
            authoring_off.then_some(Note::InteractiveAuthoringDisabled),
        );
    }
    let test = match body.get("succeeded").and_then(Value::as_bool) {
        Some(true) => Test {
            status: TestStatus::Passed,
            message: None,
            raw: Some(body),
            diagnosis: None,
        },
        Some(false) => {
            let text = message.unwrap_or_else(|| "ADF reported a failure without a message".into());
            Test {
                status: TestStatus::Failed,
                diagnosis: Some(for_message(&text)),
                message: Some(text),
                raw: Some(body),
            }
        }
        None => Test {
            status: TestStatus::Error,
            message: Some("ADF's answer to the test connection had no `succeeded` field".into()),
            raw: Some(body),
            diagnosis: None,
        },
    };
    (test, None)
}

/// What a person must do about a verdict other than a plain re-save, or about a notable trap.
pub fn for_verdict(verdict: Verdict, notes: &[Note]) -> Option<Diagnosis> {
    let has = |n: Note| notes.contains(&n);
    let (code, cause, fix, owner): (&str, &str, &[&str], Owner) = match verdict {
        Verdict::Pinned if has(Note::PinnedToCurrentVersion) => (
            "pinnedVersion",
            "The reference pins secretVersion to the new version already; it is current, but the next rotation will leave it behind again.",
            &[
                "Remove secretVersion from the reference in source control so that ADF always uses the latest version.",
            ],
            PIPELINE_OWNER,
        ),
        Verdict::Pinned => (
            "pinnedVersion",
            "The reference pins an older secretVersion, so ADF keeps using the old value. A re-save cannot change that.",
            &[
                "Remove secretVersion from the Key Vault reference (or set it to the new version) in source control.",
                "Publish the factory; then run the refresh again to test it.",
            ],
            PIPELINE_OWNER,
        ),
        Verdict::InlineSecret if has(Note::SelfHostedIntegrationRuntimeCredential) => (
            "selfHostedIntegrationRuntimeCredential",
            "The linked service keeps credentials encrypted on the self-hosted integration runtime (encryptedCredential). A re-save through ARM cannot refresh them and could break them.",
            &[
                "Move the credential to Key Vault (an AzureKeyVaultSecret reference) so that rotation reaches it.",
                "Until then, re-enter the credential in ADF Studio on a machine that can reach the self-hosted IR.",
            ],
            RUNTIME_OWNER,
        ),
        Verdict::InlineSecret => (
            "inlineSecret",
            "The linked service holds an inline secret, which ARM returns masked. Writing it back could replace the real value with the mask, so it was not re-saved.",
            &[
                "Move the inline secret to Key Vault (an AzureKeyVaultSecret reference), then this product can refresh it.",
                "Until then, open the linked service in ADF Studio, re-enter the secret, and save.",
            ],
            PIPELINE_OWNER,
        ),
        Verdict::Ambiguous => (
            "ambiguousReference",
            "The reference matches the rotated secret only through a parameter default or an expression that cannot be evaluated here, so it was not re-saved.",
            &[
                "Check which secret the pipelines actually pass; if it is this one, re-save the linked service in ADF Studio.",
                "Prefer literal secret names in Key Vault references where you can.",
            ],
            PIPELINE_OWNER,
        ),
        Verdict::Resave if has(Note::GitMode) => (
            "gitMode",
            "The factory is Git-integrated. The live factory was updated, but the next publish from Git overwrites it with what Git holds.",
            &[
                "Make sure the definition in Git is the same (it normally is: only the live copy was re-saved), then nothing more is needed.",
            ],
            PIPELINE_OWNER,
        ),
        Verdict::Resave => return None,
    };
    Some(Diagnosis {
        code: code.into(),
        cause: cause.into(),
        fix: fix.iter().map(|s| s.to_string()).collect(),
        owner,
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// What a person must do about an App Service reference or a named value that is not refreshed: pinned, or
/// unreadable. `None` for a plain refresh.
pub fn for_consumer_verdict(platform: Platform, verdict: Verdict) -> Option<Diagnosis> {
    let (code, cause, fix): (&str, &str, &[&str]) = match (platform, verdict) {
        (Platform::DataFactory | Platform::Synapse, _) => return for_verdict(verdict, &[]),
        (_, Verdict::Resave) => return None,
        (Platform::AppService, Verdict::Pinned) => (
            "pinnedVersion",
            "The Key Vault reference names a secret version, so the app keeps that version's value whatever is rotated.",
            &[
                "Remove the version from the reference (SecretUri without the version, or no SecretVersion=) in the app's settings or its deployment template.",
                "Saving the setting restarts the app and makes it fetch the reference at once.",
            ],
        ),
        (Platform::ApiManagement, Verdict::Pinned) => (
            "pinnedVersion",
            "The named value's secretIdentifier names a secret version, which prevents API Management from refreshing it.",
            &[
                "Set the named value's secretIdentifier to the secret URL without the version (portal: Named values, or the deployment template).",
            ],
        ),
        (_, _) => (
            "unreadableReference",
            "The Key Vault reference cannot be read as a vault and a secret, so the product cannot tell which secret it uses and did not refresh it.",
            &[
                "Fix the reference: @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>/) or @Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>).",
            ],
        ),
    };
    Some(Diagnosis {
        code: code.into(),
        cause: cause.into(),
        fix: fix.iter().map(|s| s.to_string()).collect(),
        owner: APP_OWNER,
    })
}

/// Why an App Service Key Vault reference is not `Resolved`, from App Service's own status
/// (reference/appservice-spec, `ResolveStatus`) and its `details` text.
pub fn for_app_service_status(status: &str, details: Option<&str>) -> Diagnosis {
    let (cause, fix, owner): (&str, &[&str], Owner) = match status {
        "AccessToKeyVaultDenied" | "UnauthorizedClient" => (
            "The app's managed identity may not read secrets from the vault.",
            &[
                "Grant the app's identity (system- or user-assigned, as the setting uses) the 'Key Vault Secrets User' role on the vault, or a Get permission on secrets in an access-policy vault.",
                "If the vault has a firewall, allow the app's outbound path (virtual network integration, private endpoint, or trusted services).",
                "Then run the refresh again: App Service fetches the reference at once.",
            ],
            PLATFORM_OWNER,
        ),
        "MSINotEnabled" => (
            "The app has no managed identity, so App Service cannot authenticate to Key Vault.",
            &[
                "Turn on the app's system-assigned identity (Identity blade) or set keyVaultReferenceIdentity to a user-assigned one.",
                "Grant that identity 'Key Vault Secrets User' on the vault, then run the refresh again.",
            ],
            APP_OWNER,
        ),
        "SecretNotFound" | "SecretVersionNotFound" => (
            "The vault has no such secret (or no such version): it was deleted, renamed or never created.",
            &[
                "Check the secret's name in the reference against the vault; restore a deleted secret (soft delete) or fix the reference.",
            ],
            APP_OWNER,
        ),
        "VaultNotFound" => (
            "App Service cannot find the vault: its name is wrong, it was deleted, or it is in another cloud.",
            &[
                "Check the vault name in the reference; restore a deleted vault (soft delete) or fix the reference.",
            ],
            APP_OWNER,
        ),
        "InvalidSyntax" => (
            "App Service cannot read the reference's syntax.",
            &[
                "Fix the reference: @Microsoft.KeyVault(SecretUri=…) or @Microsoft.KeyVault(VaultName=…;SecretName=…).",
            ],
            APP_OWNER,
        ),
        "FetchTimedOut" => (
            "App Service timed out fetching the secret, often because the vault's firewall or network path blocks it.",
            &[
                "Check the vault's networking (firewall, private endpoint) from the app's outbound path, then run the refresh again.",
            ],
            PLATFORM_OWNER,
        ),
        _ => (
            "App Service could not resolve the reference.",
            &[
                "Read App Service's details in the report, fix what they name, then run the refresh again.",
            ],
            PLATFORM_OWNER,
        ),
    };
    let mut fix: Vec<String> = fix.iter().map(|s| s.to_string()).collect();
    if let Some(details) = details.filter(|d| !d.trim().is_empty()) {
        fix.push(format!(
            "App Service says: {}",
            shorten(details.trim(), 300)
        ));
    }
    Diagnosis {
        code: status.to_string(),
        cause: cause.into(),
        fix,
        owner,
    }
}

/// Why API Management's last fetch of a Key Vault-backed named value failed. `lastStatus.code` is free text
/// (only `Success` is documented, reference/apim-spec), so the cause rests on the words APIM used.
pub fn for_named_value_status(code: &str, message: &str) -> Diagnosis {
    let text = format!("{code} {message}").to_ascii_lowercase();
    let denied = ["forbidden", "denied", "unauthorized", "access"];
    let (cause, fix, owner): (&str, &[&str], Owner) = if denied.iter().any(|w| text.contains(w)) {
        (
            "API Management's identity may not read the secret from the vault.",
            &[
                "Grant the service's managed identity (or the identity named by identityClientId) the 'Key Vault Secrets User' role on the vault.",
                "Then refresh the named value again (this product, or the portal's Named values → Refresh secret).",
            ],
            PLATFORM_OWNER,
        )
    } else if text.contains("notfound") || text.contains("not found") {
        (
            "The vault or the secret named by secretIdentifier does not exist.",
            &["Check the named value's secretIdentifier against the vault."],
            APP_OWNER,
        )
    } else {
        (
            "API Management could not fetch the secret from Key Vault.",
            &[
                "Read API Management's message in the report, fix what it names, then refresh the named value again.",
            ],
            PLATFORM_OWNER,
        )
    };
    Diagnosis {
        code: if code.is_empty() {
            "namedValueRefreshFailed".into()
        } else {
            code.to_string()
        },
        cause: cause.into(),
        fix: fix.iter().map(|s| s.to_string()).collect(),
        owner,
    }
}

/// Why a Synapse target is not tested: the report's `test.message` for it.
pub const SYNAPSE_NOT_TESTED: &str = "Not tested: Azure Synapse publishes no test-connection call for linked services, so the product cannot run one.";

/// What the owner of a re-saved (or skipped) Synapse linked service should do, since the product cannot test
/// it: test it by hand in Synapse Studio, where a failure shows the data store's own error.
pub fn for_synapse_not_tested(workspace: &str, linked_service: &str) -> Diagnosis {
    Diagnosis {
        code: "synapseNotTested".into(),
        cause: "Synapse has no published test-connection call, so the product re-saved the linked service (where safe) but could not prove that it connects.".into(),
        fix: vec![
            format!(
                "Open Synapse Studio for workspace {workspace}: Manage \u{2192} Linked services \u{2192} {linked_service} \u{2192} Test connection."
            ),
            "If the test fails, read the data store's error there; a login failure after a rotation means the new secret value is wrong or not yet accepted by the data store.".into(),
            "If the workspace is in Git mode, make the same change in the collaboration branch and publish, or the next publish puts the old definition back.".into(),
        ],
        owner: PIPELINE_OWNER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_entra_errors_are_recognised() {
        let cases = [
            (
                "AADSTS7000222: The provided client secret keys for app '1b2c…' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret",
                "AADSTS7000222",
                ENTRA_ADMIN,
            ),
            (
                "ErrorCode=FailedToGetOAuth2AccessToken,'Type=…,Message=Failed to get access token by using service principal. Error: invalid_client, Error Message: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID",
                "AADSTS7000215",
                ENTRA_ADMIN,
            ),
            (
                "AADSTS700016: Application with identifier 'abc' was not found in the directory 'Contoso'.",
                "AADSTS700016",
                PIPELINE_OWNER,
            ),
            (
                "AADSTS90002: Tenant 'contoso.onmicrosoft.con' not found.",
                "AADSTS90002",
                PIPELINE_OWNER,
            ),
            (
                "AADSTS900023: Specified tenant identifier 'x' is neither a valid DNS name, nor a valid external domain.",
                "AADSTS90002",
                PIPELINE_OWNER,
            ),
            (
                "AADSTS53003: Access has been blocked by Conditional Access policies.",
                "AADSTS53003",
                ENTRA_ADMIN,
            ),
            (
                "AADSTS7000112: Application 'x'(y) is disabled.",
                "AADSTS7000112",
                ENTRA_ADMIN,
            ),
            (
                "ErrorCode=FailedToGetOAuth2AccessToken,'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,Message=Failed to get access token",
                "20151",
                PIPELINE_OWNER,
            ),
            (
                "Error code 20153: failed to refresh the access token",
                "20153",
                PIPELINE_OWNER,
            ),
            (
                "The user, group or application 'appid=…' does not have secrets get permission on key vault 'contoso-kv'",
                "keyVaultAccessDenied",
                PLATFORM_OWNER,
            ),
            (
                "Operation get is not allowed on a disabled secret.",
                "keyVaultSecretDisabled",
                PLATFORM_OWNER,
            ),
            (
                "A secret with (name/id) sql-password/abc was not found in this key vault.",
                "keyVaultSecretNotFound",
                PIPELINE_OWNER,
            ),
            (
                "The integration runtime is offline.",
                "selfHostedIntegrationRuntimeOffline",
                RUNTIME_OWNER,
            ),
            (
                "Interactive authoring is disabled on integration runtime 'mvnet-ir'.",
                "interactiveAuthoringDisabled",
                PLATFORM_OWNER,
            ),
            (
                "Login failed for user 'etl'.",
                "loginFailed",
                PIPELINE_OWNER,
            ),
        ];
        for (message, code, owner) in cases {
            let d = for_message(message);
            assert_eq!((d.code.as_str(), d.owner), (code, owner), "{message}");
            assert!(!d.fix.is_empty());
        }
    }

    #[test]
    fn the_entra_code_wins_over_the_adf_wrapper() {
        let d = for_message(
            "ErrorCode=FailedToGetOAuth2AccessToken … AADSTS7000222: The provided client secret keys are expired.",
        );
        assert_eq!(d.code, "AADSTS7000222");
    }

    #[test]
    fn unknown_errors_keep_their_message_and_say_so() {
        let d = for_message("Something odd happened (code 99999)");
        assert_eq!(d.code, "unknown");
        assert!(d.cause.contains("Something odd happened (code 99999)"));
        assert!(d.cause.starts_with("Not recognised"));
    }

    #[test]
    fn a_400_is_interactive_authoring_off_only_when_adf_says_so() {
        let off = serde_json::json!({"error": {"code": "BadRequest", "message": "Interactive authoring is disabled on integration runtime 'mvnet-ir'."}});
        let (test, note) = test_outcome(400, off);
        assert_eq!(test.status, TestStatus::NotTested);
        assert_eq!(note, Some(Note::InteractiveAuthoringDisabled));
        let other = serde_json::json!({"error": {"code": "BadRequest", "message": "Login failed for user 'etl'."}});
        let (test, note) = test_outcome(400, other);
        assert_eq!(test.status, TestStatus::Failed);
        assert_eq!(
            test.message.as_deref(),
            Some("Login failed for user 'etl'.")
        );
        assert_eq!(test.diagnosis.map(|d| d.code), Some("loginFailed".into()));
        assert_eq!(note, None);
    }

    #[test]
    fn test_answers_map_to_outcomes() {
        let passed = test_outcome(200, serde_json::json!({"succeeded": true})).0;
        assert_eq!(passed.status, TestStatus::Passed);
        let failed = test_outcome(
            200,
            serde_json::json!({"succeeded": false, "errors": [{"message": "AADSTS7000222: expired"}]}),
        )
        .0;
        assert_eq!(failed.status, TestStatus::Failed);
        assert_eq!(failed.diagnosis.map(|d| d.owner), Some(ENTRA_ADMIN));
        let odd = test_outcome(200, serde_json::json!({"status": "?"})).0;
        assert_eq!(odd.status, TestStatus::Error);
    }

    #[test]
    fn an_offline_runtime_has_its_own_diagnosis() {
        let d = runtime_offline();
        assert_eq!(
            (d.code.as_str(), d.owner),
            ("selfHostedIntegrationRuntimeOffline", RUNTIME_OWNER)
        );
    }

    #[test]
    fn every_refusing_verdict_has_a_fix() {
        for v in [Verdict::Pinned, Verdict::InlineSecret, Verdict::Ambiguous] {
            assert!(for_verdict(v, &[]).is_some_and(|d| !d.fix.is_empty()));
        }
        assert_eq!(for_verdict(Verdict::Resave, &[]), None);
        assert_eq!(
            for_verdict(Verdict::Resave, &[Note::GitMode]).map(|d| d.code),
            Some("gitMode".into())
        );
    }

    #[test]
    fn synapse_targets_are_told_how_to_test_from_synapse_studio() {
        let diagnosis = for_synapse_not_tested("syn-contoso-analytics", "ls_sqlpool_sales");
        assert_eq!(diagnosis.code, "synapseNotTested");
        assert_eq!(diagnosis.owner, PIPELINE_OWNER);
        assert!(diagnosis.fix[0].contains("Synapse Studio"));
        assert!(diagnosis.fix[0].contains("syn-contoso-analytics"));
        assert!(diagnosis.fix[0].contains("ls_sqlpool_sales"));
        assert!(diagnosis.fix[0].contains("Test connection"));
        assert!(SYNAPSE_NOT_TESTED.contains("no test-connection call"));
    }
}
