//! A small Azure Blob Storage client: what cross-instance coordination needs, and nothing more.
//!
//! Containers, block blobs written conditionally, blob reads with their etag and age, and blob leases, all over
//! the Blob service REST API on the product's one `reqwest` client. The same calls run against Azure Storage
//! and against Azurite (the Storage emulator) in the tests.
//!
//! Sources (Blob service REST API, learn.microsoft.com/rest/api/storageservices/):
//! - Create Container: `PUT {account}/{container}?restype=container`, 201; 409 `ContainerAlreadyExists`.
//! - Put Blob: `PUT {account}/{container}/{blob}` with `x-ms-blob-type: BlockBlob`, 201 with `ETag`.
//!   Conditional headers (`If-Match`, `If-None-Match: *`) per "Specifying conditional headers for Blob service
//!   operations": a failed condition is 412 `ConditionNotMet`; `If-None-Match: *` on an existing blob is 409
//!   `BlobAlreadyExists`. A write to a leased blob without `x-ms-lease-id` is 412 `LeaseIdMissing`.
//! - Get Blob: 200 with `ETag`, `Last-Modified` and the service's `Date`; 404 `BlobNotFound`.
//! - Lease Blob: `PUT …?comp=lease` with `x-ms-lease-action: acquire|renew|release`, `x-ms-lease-duration`
//!   (15–60 seconds, or -1 for infinite: never used here), `x-ms-proposed-lease-id` and `x-ms-lease-id`;
//!   acquire answers 201 with `x-ms-lease-id`, renew and release 200; a blob leased by someone else answers
//!   409 `LeaseAlreadyPresent`. A lease of fixed duration expires by itself, so a holder that dies frees it
//!   within the duration: the product never breaks another holder's lease.
//! - Authorize with Shared Key: `Authorization: SharedKey {account}:{HMAC-SHA256 of the string-to-sign}`,
//!   with `x-ms-date` and `x-ms-version`; with the emulator the canonicalized resource repeats the account name
//!   (`/devstoreaccount1/devstoreaccount1/…`) because the account is in the path.
//! - Authorize with Microsoft Entra ID: `Authorization: Bearer …` for scope `https://storage.azure.com/.default`,
//!   which needs `x-ms-version` 2017-11-09 or later.
//!
//! Every call goes through the one retry loop with the one status → meaning map: a 503 (`ServerBusy`), a 500 or a
//! connection that fails is tried again, a 429 waits for `Retry-After` without counting as an attempt, all within
//! the call's time limit ([`CALL_LIMIT`]).
//!
//! Keys, signatures and tokens never appear in a log, an error or `Debug` output: errors carry the operation,
//! the container and blob names, the status and the service's error code only.

pub use super::error::AzureError;
use super::request::{self, Exchange, Expect};
use super::retry::{self, Attempt, RetryPolicy};
use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The Blob service version sent as `x-ms-version` (supported by Azure and by Azurite 3.x).
pub const STORAGE_VERSION: &str = "2021-12-02";
/// The token scope for Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// Azurite's well-known development account: public, documented in Azurite's README; not a secret.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorised.
#[derive(Clone)]
pub enum StorageAuth {
    /// Shared Key with the account key (connection strings, Azurite).
    SharedKey { account: String, key: Vec<u8> },
    /// A bearer token from the product's credential (identity-based `AzureWebJobsStorage__…`).
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for StorageAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageAuth::SharedKey { account, .. } => {
                write!(f, "SharedKey {{ account: {account:?}, key: <redacted> }}")
            }
            StorageAuth::Token(_) => f.write_str("Token(<credential>)"),
        }
    }
}

/// The one error of every Azure client, under the name Storage's callers know.
pub type StorageError = AzureError;

/// What a refusal by Storage calls for.
pub const REMEDY: &str = "Give the app's identity the 'Storage Blob Data Owner' role on its storage account, as infra/ does, or check the account key in AzureWebJobsStorage";

/// How long one call may take, retries and 429s included.
pub const CALL_LIMIT: Duration = Duration::from_secs(60);

/// The write condition of a Put Blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    Always,
    /// Create only: `If-None-Match: *`.
    Absent,
    /// Replace only this version: `If-Match: <etag>`.
    Matches(String),
}

/// A blob as read, with what freshness decisions need.
#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub etag: String,
    pub last_modified: Option<OffsetDateTime>,
    /// How old the blob is by the service's own clock (`Date` − `Last-Modified`), free of local clock skew.
    pub age: Option<Duration>,
}

/// A Blob service client for one storage account.
#[derive(Clone)]
pub struct BlobClient {
    http: reqwest::Client,
    /// `https://{account}.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`, no trailing slash.
    account_url: String,
    auth: StorageAuth,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobClient")
            .field("account_url", &self.account_url)
            .field("auth", &self.auth)
            .finish()
    }
}

/// The lease durations the service accepts for a fixed lease.
pub const MIN_LEASE: Duration = Duration::from_secs(15);
pub const MAX_LEASE: Duration = Duration::from_secs(60);

impl BlobClient {
    pub fn new(
        http: reqwest::Client,
        account_url: &str,
        auth: StorageAuth,
    ) -> Result<Self, StorageError> {
        let account_url = account_url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&account_url)
            .map_err(|_| AzureError::Config("the blob service URL is not a URL".into()))?;
        if parsed.query().is_some() {
            return Err(AzureError::Config(
                "the blob service URL must not carry a query (a SAS is not supported; use the account key or the app's identity)".into(),
            ));
        }
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !loopback {
            return Err(AzureError::Config(
                "the blob service URL must be https (plain http only on loopback, for the emulator)".into(),
            ));
        }
        Ok(BlobClient {
            http,
            account_url,
            auth,
        })
    }

    /// A client for Azurite's development account at `account_url` (for example
    /// `http://127.0.0.1:10000/devstoreaccount1`).
    pub fn azurite(http: reqwest::Client, account_url: &str) -> Result<Self, StorageError> {
        BlobClient::new(
            http,
            account_url,
            StorageAuth::SharedKey {
                account: DEV_ACCOUNT.into(),
                key: BASE64.decode(DEV_ACCOUNT_KEY).unwrap_or_default(),
            },
        )
    }

    /// From a storage connection string (`AzureWebJobsStorage`): `AccountName` + `AccountKey` with
    /// `BlobEndpoint` or `DefaultEndpointsProtocol` + `EndpointSuffix`, or `UseDevelopmentStorage=true`.
    pub fn from_connection_string(
        http: reqwest::Client,
        connection: &str,
    ) -> Result<Self, StorageError> {
        let mut fields = std::collections::HashMap::new();
        for part in connection
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            // Values (keys in base64) may contain '=': split on the first one only.
            let Some((name, value)) = part.split_once('=') else {
                return Err(AzureError::Config(
                    "the storage connection string has a part without '='".into(),
                ));
            };
            fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        if fields
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return BlobClient::azurite(http, "http://127.0.0.1:10000/devstoreaccount1");
        }
        if fields.contains_key("sharedaccesssignature") {
            return Err(AzureError::Config(
                "a SAS connection string is not supported; use the account key or the app's identity".into(),
            ));
        }
        let account = fields
            .get("accountname")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                AzureError::Config("the storage connection string has no AccountName".into())
            })?
            .clone();
        let key = fields
            .get("accountkey")
            .and_then(|k| BASE64.decode(k).ok())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                AzureError::Config(
                    "the storage connection string has no valid AccountKey (base64)".into(),
                )
            })?;
        let url = match fields.get("blobendpoint") {
            Some(endpoint) => endpoint.clone(),
            None => format!(
                "{}://{account}.blob.{}",
                fields
                    .get("defaultendpointsprotocol")
                    .map(String::as_str)
                    .unwrap_or("https"),
                fields
                    .get("endpointsuffix")
                    .map(String::as_str)
                    .unwrap_or("core.windows.net")
            ),
        };
        BlobClient::new(http, &url, StorageAuth::SharedKey { account, key })
    }

    /// From the Functions host's storage settings, as the host reads them: `AzureWebJobsStorage` (a connection
    /// string), else the identity-based `AzureWebJobsStorage__blobServiceUri` or `AzureWebJobsStorage__accountName`
    /// with the app's credential. `None` when none is set (the CLI).
    pub fn from_functions_settings(
        http: reqwest::Client,
        lookup: impl Fn(&str) -> Option<String>,
        credential: Arc<dyn TokenCredential>,
    ) -> Option<Result<Self, StorageError>> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        if let Some(connection) = get("AzureWebJobsStorage") {
            return Some(BlobClient::from_connection_string(http, &connection));
        }
        let url = get("AzureWebJobsStorage__blobServiceUri").or_else(|| {
            get("AzureWebJobsStorage__accountName")
                .map(|name| format!("https://{}.blob.core.windows.net", name.trim()))
        })?;
        Some(BlobClient::new(http, &url, StorageAuth::Token(credential)))
    }

    pub fn account_url(&self) -> &str {
        &self.account_url
    }

    /// Creates the container unless it exists.
    pub async fn create_container(&self, container: &str) -> Result<(), StorageError> {
        check_container(container)?;
        let created = self
            .send(
                "create container",
                container,
                reqwest::Method::PUT,
                container,
                &[("restype", "container")],
                Vec::new(),
                &[],
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(AzureError::Rejected { code, .. }) if code == "ContainerAlreadyExists" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes a block blob under `condition`; returns the new etag. `lease` is required when the blob is leased.
    pub async fn put_blob(
        &self,
        container: &str,
        blob: &str,
        bytes: Vec<u8>,
        condition: &Condition,
        lease: Option<&str>,
    ) -> Result<String, StorageError> {
        let path = blob_path(container, blob)?;
        let mut headers: Vec<(&str, String)> = vec![
            ("x-ms-blob-type", "BlockBlob".into()),
            ("content-type", "application/octet-stream".into()),
        ];
        match condition {
            Condition::Always => {}
            Condition::Absent => headers.push(("if-none-match", "*".into())),
            Condition::Matches(etag) => headers.push(("if-match", etag.clone())),
        }
        if let Some(lease) = lease {
            headers.push(("x-ms-lease-id", lease.into()));
        }
        let response = self
            .send(
                "put blob",
                &path,
                reqwest::Method::PUT,
                &path,
                &[],
                bytes,
                &headers,
            )
            .await?;
        Ok(response.etag.unwrap_or_default())
    }

    /// Reads a blob; `None` when it does not exist.
    pub async fn get_blob(
        &self,
        container: &str,
        blob: &str,
    ) -> Result<Option<Blob>, StorageError> {
        let path = blob_path(container, blob)?;
        let response = self
            .send(
                "get blob",
                &path,
                reqwest::Method::GET,
                &path,
                &[],
                Vec::new(),
                &[],
            )
            .await;
        match response {
            Ok(response) => {
                let last_modified = response.last_modified.as_deref().and_then(parse_http_date);
                let date = response.date.as_deref().and_then(parse_http_date);
                let age = match (date, last_modified) {
                    (Some(date), Some(modified)) => {
                        Some(Duration::try_from(date - modified).unwrap_or(Duration::ZERO))
                    }
                    _ => None,
                };
                Ok(Some(Blob {
                    bytes: response.body,
                    etag: response.etag.unwrap_or_default(),
                    last_modified,
                    age,
                }))
            }
            Err(AzureError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Acquires a lease of fixed `duration` (clamped to 15–60 s) with the proposed id; `Leased` when another
    /// holder has it (409 `LeaseAlreadyPresent`): the caller backs off, it never breaks the other lease.
    pub async fn acquire_lease(
        &self,
        container: &str,
        blob: &str,
        duration: Duration,
        proposed_id: &str,
    ) -> Result<String, StorageError> {
        let path = blob_path(container, blob)?;
        let seconds = duration.clamp(MIN_LEASE, MAX_LEASE).as_secs().to_string();
        let headers = [
            ("x-ms-lease-action", "acquire".to_string()),
            ("x-ms-lease-duration", seconds),
            ("x-ms-proposed-lease-id", proposed_id.to_string()),
        ];
        let response = self.lease("acquire lease", &path, &headers).await?;
        Ok(response.lease_id.unwrap_or_else(|| proposed_id.to_string()))
    }

    /// Renews a lease this process holds.
    pub async fn renew_lease(
        &self,
        container: &str,
        blob: &str,
        lease: &str,
    ) -> Result<(), StorageError> {
        self.lease_action("renew lease", "renew", container, blob, lease)
            .await
    }

    /// Releases a lease this process holds, so that others may take it at once.
    pub async fn release_lease(
        &self,
        container: &str,
        blob: &str,
        lease: &str,
    ) -> Result<(), StorageError> {
        self.lease_action("release lease", "release", container, blob, lease)
            .await
    }

    async fn lease_action(
        &self,
        operation: &'static str,
        action: &str,
        container: &str,
        blob: &str,
        lease: &str,
    ) -> Result<(), StorageError> {
        let path = blob_path(container, blob)?;
        let headers = [
            ("x-ms-lease-action", action.to_string()),
            ("x-ms-lease-id", lease.to_string()),
        ];
        self.lease(operation, &path, &headers).await.map(|_| ())
    }

    /// `PUT {blob}?comp=lease` with the lease headers of one action.
    async fn lease(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Answer, StorageError> {
        self.send(
            operation,
            path,
            reqwest::Method::PUT,
            path,
            &[("comp", "lease")],
            Vec::new(),
            headers,
        )
        .await
    }

    /// One call through the one retry loop: signed (or given a token) afresh for each attempt, its answer
    /// classified by the one shared classifier. A non-2xx is an error with its meaning.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        operation: &'static str,
        target: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Answer, StorageError> {
        let mut url = format!("{}/{path}", self.account_url);
        if !query.is_empty() {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let deadline = Some(tokio::time::Instant::now() + CALL_LIMIT);
        let policy = &RetryPolicy::default();
        let token = match &self.auth {
            StorageAuth::Token(credential) => Some(
                request::bearer_token(credential.as_ref(), None, STORAGE_SCOPE, policy, deadline)
                    .await?,
            ),
            StorageAuth::SharedKey { .. } => None,
        };
        let (url, method, body, token) = (&url, &method, &body, &token);
        let answer = retry::run(policy, deadline, |attempt| async move {
            let date = httpdate_now();
            let mut all: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            all.push(("x-ms-date".into(), date));
            all.push(("x-ms-version".into(), STORAGE_VERSION.into()));
            all.push((
                "x-ms-client-request-id".into(),
                uuid::Uuid::new_v4().to_string(),
            ));
            let authorization = match (&self.auth, token) {
                (StorageAuth::SharedKey { account, key }, _) => {
                    let resource_path = url::Url::parse(url)
                        .map(|u| u.path().to_string())
                        .unwrap_or_default();
                    let to_sign = string_to_sign(
                        method.as_str(),
                        body.len(),
                        &all,
                        account,
                        &resource_path,
                        query,
                    );
                    format!("SharedKey {account}:{}", sign(key, &to_sign))
                }
                (StorageAuth::Token(_), token) => {
                    format!("Bearer {}", token.as_deref().unwrap_or_default())
                }
            };
            let mut request = self
                .http
                .request(method.clone(), url.as_str())
                .header("authorization", authorization)
                .header("content-length", body.len().to_string());
            for (name, value) in &all {
                request = request.header(name.as_str(), value.as_str());
            }
            let request = request
                .body(body.clone())
                .timeout(retry::request_timeout(Duration::from_secs(30), deadline));
            let x = Exchange {
                operation,
                expect: Expect::Raw,
                remedy: REMEDY,
                target,
                attempt,
            };
            let outcome = request::exchange(request, &x).await;
            if let Attempt::Done(answer) = &outcome {
                tracing::debug!(operation, target, status = answer.status, "storage call");
            }
            outcome
        })
        .await?;
        let header = |name: &str| answer.header(name).map(str::to_string);
        Ok(Answer {
            etag: header("etag"),
            last_modified: header("last-modified"),
            date: header("date"),
            lease_id: header("x-ms-lease-id"),
            body: answer.bytes,
        })
    }
}

/// What a successful call answered.
struct Answer {
    etag: Option<String>,
    last_modified: Option<String>,
    date: Option<String>,
    lease_id: Option<String>,
    body: Vec<u8>,
}

/// Container names: 3–63 lowercase letters, digits and single hyphens (the service's rule).
fn check_container(container: &str) -> Result<(), StorageError> {
    let ok = (3..=63).contains(&container.len())
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if ok {
        Ok(())
    } else {
        Err(AzureError::Config(format!(
            "`{container}` is not a valid container name"
        )))
    }
}

/// Blob names here are built by the product from hashes and fixed words; anything outside a safe set is refused
/// rather than encoded, so that the signed path and the sent path can never differ.
fn blob_path(container: &str, blob: &str) -> Result<String, StorageError> {
    check_container(container)?;
    let ok = !blob.is_empty()
        && blob.len() <= 1024
        && blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        && !blob.starts_with('/')
        && !blob
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if ok {
        Ok(format!("{container}/{blob}"))
    } else {
        Err(AzureError::Config(
            "a blob name may hold only letters, digits, '-', '_', '.' and '/' segments".into(),
        ))
    }
}

/// The Shared Key string-to-sign for the Blob service (version 2015-02-21 and later: an empty Content-Length
/// when the body is empty).
fn string_to_sign(
    method: &str,
    content_length: usize,
    headers: &[(String, String)],
    account: &str,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut ms: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-ms-"))
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut params: Vec<(String, &str)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    params.sort();
    let mut resource = format!("/{account}{path}");
    for (k, v) in params {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    format!(
        "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canonical_headers}{resource}",
        get("content-encoding"),
        get("content-language"),
        get("content-md5"),
        get("content-type"),
        get("if-modified-since"),
        get("if-match"),
        get("if-none-match"),
        get("if-unmodified-since"),
        get("range"),
    )
}

fn sign(key: &[u8], to_sign: &str) -> String {
    // HMAC accepts a key of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

const HTTP_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

fn httpdate_now() -> String {
    OffsetDateTime::now_utc()
        .format(HTTP_DATE)
        .unwrap_or_default()
}

/// Parses an RFC 1123 date as HTTP sends it (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(value.trim(), HTTP_DATE)
        .ok()
        .map(|d| d.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_follows_the_shared_key_layout() {
        let headers = vec![
            ("x-ms-version".to_string(), STORAGE_VERSION.to_string()),
            (
                "x-ms-date".to_string(),
                "Sun, 06 Nov 1994 08:49:37 GMT".to_string(),
            ),
            ("if-none-match".to_string(), "*".to_string()),
            ("x-ms-blob-type".to_string(), "BlockBlob".to_string()),
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ];
        let s = string_to_sign(
            "PUT",
            3,
            &headers,
            "devstoreaccount1",
            "/devstoreaccount1/c/b",
            &[("comp", "lease")],
        );
        assert_eq!(
            s,
            "PUT\n\n\n3\n\napplication/octet-stream\n\n\n\n*\n\n\n\
             x-ms-blob-type:BlockBlob\nx-ms-date:Sun, 06 Nov 1994 08:49:37 GMT\nx-ms-version:2021-12-02\n\
             /devstoreaccount1/devstoreaccount1/c/b\ncomp:lease"
        );
        // An empty body signs an empty Content-Length.
        assert!(string_to_sign("GET", 0, &[], "a", "/c", &[]).starts_with("GET\n\n\n\n"));
    }

    #[test]
    fn http_dates_round_trip() {
        let d = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("parses");
        assert_eq!(d.unix_timestamp(), 784111777);
        assert_eq!(
            d.format(HTTP_DATE).ok().as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn names_are_checked_not_encoded() {
        assert!(blob_path("coordination", "rotations/ab12.lock").is_ok());
        for bad in ["", "/x", "a//b", "a/../b", "a b", "a?comp=lease", "é"] {
            assert!(blob_path("coordination", bad).is_err(), "{bad}");
        }
        for bad in ["ab", "Upper", "-a-b", "a--b", "a_b"] {
            assert!(check_container(bad).is_err(), "{bad}");
        }
    }

    fn http() -> reqwest::Client {
        reqwest::Client::new()
    }

    #[test]
    fn connection_strings_parse_and_keys_never_show() {
        let key = BASE64.encode(b"super-secret-account-key-bytes!!");
        let c = BlobClient::from_connection_string(
            http(),
            &format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"),
        )
        .expect("parses");
        assert_eq!(c.account_url(), "https://acct.blob.core.windows.net");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains(&key) && debug.contains("redacted"),
            "{debug}"
        );

        let c = BlobClient::from_connection_string(
            http(),
            &format!("AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"),
        )
        .expect("parses");
        assert_eq!(c.account_url(), "http://127.0.0.1:10000/devstoreaccount1");

        let dev =
            BlobClient::from_connection_string(http(), "UseDevelopmentStorage=true").expect("dev");
        assert_eq!(dev.account_url(), "http://127.0.0.1:10000/devstoreaccount1");

        for bad in [
            "AccountName=acct;AccountKey=not base64!;".to_string(),
            "AccountName=acct".to_string(),
            format!("AccountKey={key}"),
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2021&sig=SIGNATURE-VALUE".to_string(),
            format!("AccountName=acct;AccountKey={key};BlobEndpoint=http://acct.example.com"),
        ] {
            let e = BlobClient::from_connection_string(http(), &bad).expect_err("refused").to_string();
            assert!(!e.contains(&key) && !e.contains("SIGNATURE-VALUE") && !e.contains("not base64"), "{e}");
        }
    }

    /// Identity-based access: a bearer token for Storage's scope, with `x-ms-version`, and no Shared Key.
    #[tokio::test]
    async fn identity_based_requests_carry_a_storage_token_and_a_version() {
        use std::sync::Mutex;
        #[derive(Debug, Default)]
        struct Recording(Mutex<Vec<String>>);
        #[async_trait::async_trait]
        impl TokenCredential for Recording {
            async fn get_token(
                &self,
                scopes: &[&str],
                _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> azure_core::Result<azure_core::credentials::AccessToken> {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(scopes.iter().map(|s| s.to_string()));
                Ok(azure_core::credentials::AccessToken::new(
                    "storage-token",
                    OffsetDateTime::now_utc() + time::Duration::hours(1),
                ))
            }
        }
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let app = {
            let seen = seen.clone();
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    for (k, v) in &headers {
                        seen.push((k.to_string(), v.to_str().unwrap_or("").to_string()));
                    }
                    axum::http::StatusCode::CREATED
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let credential = Arc::new(Recording::default());
        let blobs = BlobClient::new(
            http(),
            &format!("http://127.0.0.1:{port}/acct"),
            StorageAuth::Token(credential.clone()),
        )
        .expect("client");
        blobs.create_container("reports").await.expect("created");
        assert_eq!(
            *credential.0.lock().unwrap_or_else(|e| e.into_inner()),
            vec![STORAGE_SCOPE.to_string()]
        );
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let get = |name: &str| {
            seen.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("authorization"), Some("Bearer storage-token"));
        assert_eq!(get("x-ms-version"), Some(STORAGE_VERSION));
        assert!(get("x-ms-date").is_some());
    }

    #[test]
    fn functions_settings_choose_connection_string_then_identity() {
        #[derive(Debug)]
        struct NoToken;
        #[async_trait::async_trait]
        impl TokenCredential for NoToken {
            async fn get_token(
                &self,
                _: &[&str],
                _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> azure_core::Result<azure_core::credentials::AccessToken> {
                Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "none",
                ))
            }
        }
        let cred: Arc<dyn TokenCredential> = Arc::new(NoToken);
        let none = BlobClient::from_functions_settings(http(), |_| None, cred.clone());
        assert!(none.is_none());
        let by_name = BlobClient::from_functions_settings(
            http(),
            |k| (k == "AzureWebJobsStorage__accountName").then(|| "acct".to_string()),
            cred.clone(),
        )
        .and_then(Result::ok)
        .expect("identity-based");
        assert_eq!(by_name.account_url(), "https://acct.blob.core.windows.net");
        assert!(matches!(by_name.auth, StorageAuth::Token(_)));
        let by_uri = BlobClient::from_functions_settings(
            http(),
            |k| {
                (k == "AzureWebJobsStorage__blobServiceUri")
                    .then(|| "https://acct.blob.core.usgovcloudapi.net/".to_string())
            },
            cred,
        )
        .and_then(Result::ok)
        .expect("identity-based");
        assert_eq!(
            by_uri.account_url(),
            "https://acct.blob.core.usgovcloudapi.net"
        );
    }
}
