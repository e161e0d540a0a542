//! The one error of every Azure client (ARM, Synapse development endpoints, Key Vault listings, Blob Storage):
//! variants say what happened, so callers match on meaning, never on status numbers.
//!
//! An HTTP status becomes a meaning in one place, [`from_status`]; what is worth trying again is said in one
//! place, [`AzureError::is_transient`]. A refusal carries the remedy its client knows (the custom role from
//! `infra/`, a Synapse RBAC role, Key Vault Reader, a Storage blob role). No variant ever holds a token, a key,
//! a signature or a URL query.

use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// 401 or 403: the identity lacks a role. `remedy` is the client's sentence saying which one.
    #[error("{operation} was refused ({status} {code}): {message}. {remedy}")]
    Forbidden {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        remedy: String,
        request_id: Option<String>,
    },
    #[error("{operation}: not found ({message})")]
    NotFound {
        operation: &'static str,
        message: String,
        request_id: Option<String>,
    },
    /// The vault itself does not exist: Key Vault's `VaultNotFound`, or a vault host name that does not resolve
    /// (how Azure answers for a vault that was never created).
    #[error("vault {vault} does not exist (or its name does not resolve): {message}")]
    VaultNotFound { vault: String, message: String },
    /// 412, a CloudError naming a precondition or an etag, or Storage's `ConditionNotMet`/`BlobAlreadyExists`:
    /// the resource changed since it was read.
    #[error("{operation}: the resource changed since it was read (precondition failed)")]
    PreconditionFailed {
        operation: &'static str,
        request_id: Option<String>,
    },
    /// A Storage lease stands in the way (`LeaseAlreadyPresent`, `LeaseIdMissing`, …): another holder has it.
    #[error("{operation} {target}: the blob is leased by another holder ({code})")]
    Leased {
        operation: &'static str,
        target: String,
        code: String,
    },
    /// Any other 4xx: the request itself was refused, with the service's answer.
    #[error("{operation} was rejected ({status} {code}): {message}")]
    Rejected {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        /// Boxed: an answer can be large, and the error travels in every `Result`.
        body: Box<Value>,
        request_id: Option<String>,
    },
    /// A long-running operation ended without success.
    #[error("{operation} ended as {status}: {code}: {message}")]
    OperationFailed {
        operation: &'static str,
        /// The operation's final status, e.g. `Failed`.
        status: String,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error(
        "{operation} was accepted but had not ended after {polls} polls; whether it took effect is unknown"
    )]
    OperationUnfinished { operation: &'static str, polls: u32 },
    /// 408, 429, 500, 502, 503, 504 that did not pass within the attempts or the run's budget.
    #[error("{operation} kept failing ({status} {code}) after {attempts} attempts: {message}")]
    Unavailable {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        attempts: u32,
        request_id: Option<String>,
    },
    #[error("{operation} could not reach the service after {attempts} attempts: {message}")]
    Network {
        operation: &'static str,
        message: String,
        attempts: u32,
    },
    #[error(
        "could not get a token from the {kind} credential ({endpoint}) after {attempts} attempts: {message}"
    )]
    Token {
        kind: &'static str,
        endpoint: String,
        message: String,
        attempts: u32,
    },
    /// The credential cannot give a token and no retry can mend it: a missing tool, no sign-in, a wrong tenant
    /// or client secret. `message` says what is missing and the command or setting that fixes it.
    #[error(
        "could not get a token from the {kind} credential ({endpoint}), and did not ask again since no retry can mend it: {message}"
    )]
    CredentialRefused {
        kind: &'static str,
        endpoint: String,
        message: String,
    },
    #[error("{operation} was not attempted: the run's time budget is spent")]
    Deadline { operation: &'static str },
    /// A link (a `Location`, an `Azure-AsyncOperation`) that leaves the origin it came from: never followed,
    /// since the token would go with it.
    #[error("refusing to follow a link to another origin: {0}")]
    ForeignLink(String),
    /// A 2xx whose body is not the answer asked for (cut off, not JSON, an error object, a page that is no page).
    #[error(
        "{operation} answered {status} with an unusable body after {attempts} attempts: {message}"
    )]
    Malformed {
        operation: &'static str,
        status: u16,
        message: String,
        attempts: u32,
        request_id: Option<String>,
    },
    /// A `nextLink` back to a page already read: the listing would never end.
    #[error(
        "{operation}: the listing loops back to a page already read ({link}); it was not read to its end"
    )]
    LoopingListing {
        operation: &'static str,
        link: String,
    },
    #[error("{operation} has more than {pages} pages; the listing was not read to its end")]
    TooManyPages { operation: &'static str, pages: u32 },
    #[error("not a usable ARM path: {0}")]
    InvalidId(String),
    #[error("cannot use the development endpoint of workspace {workspace}: {reason}")]
    Endpoint { workspace: String, reason: String },
    #[error("the configuration is not usable: {0}")]
    Config(String),
}

impl AzureError {
    /// Whether trying again later (another attempt, another run, the host's redelivery) may succeed.
    ///
    /// | transient | why |
    /// |---|---|
    /// | `Unavailable`, `Network` | the service or the path to it failed; it usually recovers |
    /// | `Token` | the token endpoint failed; it usually recovers |
    /// | `Deadline` | this run's budget ran out, not the service |
    /// | `Malformed`, `ForeignLink`, `LoopingListing`, `TooManyPages` | the answer was unusable (a proxy's page, a cut body, a broken listing); nothing was claimed from it, and another read may be whole |
    /// | `OperationUnfinished` | the operation may still end; a later run sees its result |
    /// | not: `Forbidden` | a role is missing: a person must grant it |
    /// | not: `NotFound`, `VaultNotFound` | the thing is not there |
    /// | not: `PreconditionFailed`, `Leased` | the caller decides (re-read, or back off from another holder) |
    /// | not: `Rejected`, `OperationFailed` | the service refused this request as it is |
    /// | not: `InvalidId`, `Endpoint`, `Config` | our input or configuration is wrong |
    /// | not: `CredentialRefused` | the credential itself is missing or wrong: a person must sign in or fix it |
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AzureError::Unavailable { .. }
                | AzureError::Network { .. }
                | AzureError::Token { .. }
                | AzureError::Deadline { .. }
                | AzureError::Malformed { .. }
                | AzureError::ForeignLink(_)
                | AzureError::LoopingListing { .. }
                | AzureError::TooManyPages { .. }
                | AzureError::OperationUnfinished { .. }
        )
    }

    /// The service's request id, for a report and a support case.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            AzureError::Forbidden { request_id, .. }
            | AzureError::NotFound { request_id, .. }
            | AzureError::PreconditionFailed { request_id, .. }
            | AzureError::Rejected { request_id, .. }
            | AzureError::OperationFailed { request_id, .. }
            | AzureError::Unavailable { request_id, .. }
            | AzureError::Malformed { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// What a non-2xx answer said, for [`from_status`].
#[derive(Debug)]
pub struct Refusal<'a> {
    pub operation: &'static str,
    pub status: u16,
    /// The error body (JSON), or `Null`.
    pub body: Value,
    /// Storage's `x-ms-error-code` header, which wins over the body's code.
    pub header_code: Option<&'a str>,
    pub request_id: Option<String>,
    /// What a target names in a Storage error (container and blob).
    pub target: &'a str,
    /// The client's remedy for a refusal.
    pub remedy: &'a str,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// The one mapping from an HTTP status to a meaning. 2xx never reaches here.
pub fn from_status(r: Refusal<'_>) -> AzureError {
    let (body_code, message) = error_of(&r.body, r.status);
    let code = r
        .header_code
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .unwrap_or(body_code);
    let operation = r.operation;
    let request_id = r.request_id;
    match (r.status, code.as_str()) {
        (409 | 412, c) if is_lease_code(c) => AzureError::Leased {
            operation,
            target: r.target.to_string(),
            code,
        },
        (401 | 403, _) => AzureError::Forbidden {
            operation,
            status: r.status,
            code,
            message,
            remedy: r.remedy.to_string(),
            request_id,
        },
        (404, c) if c.eq_ignore_ascii_case("VaultNotFound") => AzureError::VaultNotFound {
            vault: r.target.to_string(),
            message,
        },
        (404, _) => AzureError::NotFound {
            operation,
            message,
            request_id,
        },
        (412, _) | (409, "BlobAlreadyExists") => AzureError::PreconditionFailed {
            operation,
            request_id,
        },
        (status, _) if super::retry::is_retryable_status(status) => AzureError::Unavailable {
            operation,
            status: r.status,
            code,
            message,
            attempts: r.attempts,
            request_id,
        },
        _ if mentions_precondition(&code, &message) => AzureError::PreconditionFailed {
            operation,
            request_id,
        },
        _ => AzureError::Rejected {
            operation,
            status: r.status,
            code,
            message,
            body: Box::new(r.body),
            request_id,
        },
    }
}

/// Storage's lease codes (Blob service REST API, "Lease Blob" and the conditional-header rules).
fn is_lease_code(code: &str) -> bool {
    matches!(
        code,
        "LeaseIdMissing"
            | "LeaseIdMismatchWithBlobOperation"
            | "LeaseIdMismatchWithLeaseOperation"
            | "LeaseAlreadyPresent"
            | "LeaseIsBrokenAndCannotBeRenewed"
    )
}

/// The code and message of an error body: `{"error":{"code","message"}}` (ARM's CloudError, Key Vault, Synapse)
/// or `{"code","message"}` (what a Synapse endpoint sends for authentication errors).
pub fn error_of(body: &Value, status: u16) -> (String, String) {
    let inner = body.get("error").filter(|e| e.is_object()).unwrap_or(body);
    let text = |key: &str| inner.get(key).and_then(Value::as_str).map(str::to_string);
    (
        text("code").unwrap_or_default(),
        text("message").unwrap_or_else(|| format!("HTTP {status}")),
    )
}

fn mentions_precondition(code: &str, message: &str) -> bool {
    let text = format!("{code} {message}").to_ascii_lowercase();
    text.contains("precondition") || text.contains("etag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(status: u16, body: Value, header_code: Option<&str>) -> AzureError {
        from_status(Refusal {
            operation: "op",
            status,
            body,
            header_code,
            request_id: Some("rid".into()),
            target: "c/b",
            remedy: "Grant the role.",
            attempts: 1,
        })
    }

    #[test]
    fn every_status_has_one_meaning_for_every_client() {
        let cloud = |code: &str| json!({"error": {"code": code, "message": "m"}});
        assert!(matches!(
            refusal(403, cloud("AuthorizationFailed"), None),
            AzureError::Forbidden { ref remedy, .. } if remedy == "Grant the role."
        ));
        assert!(matches!(
            refusal(401, json!({"code": "Unauthorized", "message": "no"}), None),
            AzureError::Forbidden { status: 401, ref code, .. } if code == "Unauthorized"
        ));
        assert!(matches!(
            refusal(404, cloud("ResourceNotFound"), None),
            AzureError::NotFound { .. }
        ));
        assert!(matches!(
            refusal(404, cloud("VaultNotFound"), None),
            AzureError::VaultNotFound { .. }
        ));
        assert!(matches!(
            refusal(412, Value::Null, Some("ConditionNotMet")),
            AzureError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            refusal(400, cloud("PreconditionFailed"), None),
            AzureError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            refusal(409, Value::Null, Some("BlobAlreadyExists")),
            AzureError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            refusal(409, Value::Null, Some("LeaseAlreadyPresent")),
            AzureError::Leased { .. }
        ));
        assert!(matches!(
            refusal(412, Value::Null, Some("LeaseIdMissing")),
            AzureError::Leased { .. }
        ));
        for status in [408, 429, 500, 502, 503, 504] {
            let e = refusal(status, Value::Null, None);
            assert!(
                matches!(e, AzureError::Unavailable { .. }) && e.is_transient(),
                "{status}"
            );
        }
        let rejected = refusal(400, cloud("BadRequest"), None);
        assert!(matches!(rejected, AzureError::Rejected { .. }) && !rejected.is_transient());
        assert_eq!(rejected.request_id(), Some("rid"));
    }

    #[test]
    fn a_foreign_link_is_transient_whichever_client_met_it() {
        assert!(AzureError::ForeignLink("https://elsewhere/…".into()).is_transient());
        assert!(
            AzureError::LoopingListing {
                operation: "op",
                link: "x".into()
            }
            .is_transient()
        );
        assert!(
            !AzureError::Leased {
                operation: "op",
                target: "t".into(),
                code: "LeaseAlreadyPresent".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn error_bodies_of_both_shapes_are_read() {
        assert_eq!(
            error_of(&json!({"error": {"code": "C", "message": "M"}}), 400),
            ("C".to_string(), "M".to_string())
        );
        assert_eq!(
            error_of(&json!({"code": "Unauthorized", "message": "no"}), 403),
            ("Unauthorized".to_string(), "no".to_string())
        );
        assert_eq!(
            error_of(&Value::Null, 500),
            (String::new(), "HTTP 500".to_string())
        );
    }
}
