//! What every ARM provider shares: reading a provider's paths, bearer-token checks, the api-version rule,
//! throttling (429 bursts and the per-subscription token buckets) with the rate-limit headers, ARM's 404s,
//! 403s and 405s, and paging by an absolute `nextLink`.

use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header::WWW_AUTHENTICATE};
use axum::response::Response;
use serde_json::{Value, json};

use crate::http::{Ctx, cloud_error, json_response, too_many_requests};
use crate::state::Shared;
use crate::store::{API_VERSION, ChildKind, Missing};
use crate::token_store::{ARM_AUDIENCES, TokenCheck, normalize_audience};
use crate::util::lock;

/// ARM matches path segments without regard to case.
pub(crate) fn is(segment: &str, name: &str) -> bool {
    segment.eq_ignore_ascii_case(name)
}

/// What an ARM path under `/providers/{provider}/{resource type}` names.
pub(crate) enum ProviderPath<'a> {
    /// `/subscriptions/{sub}[/resourceGroups/{rg}]/providers/{provider}/{type}`: the subscription's or
    /// the group's list.
    List { sub: &'a str, rg: Option<&'a str> },
    /// `…/{type}/{name}` and the segments after it.
    Resource {
        sub: &'a str,
        rg: &'a str,
        name: &'a str,
        rest: Vec<&'a str>,
    },
}

/// Reads an ARM path under one provider's resource type (any case); `None` for any other path.
pub(crate) fn provider_path<'a>(
    segments: &'a [String],
    provider: &str,
    resource_type: &str,
) -> Option<ProviderPath<'a>> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [subs, sub, providers, rp, ty]
            if is(subs, "subscriptions")
                && is(providers, "providers")
                && is(rp, provider)
                && is(ty, resource_type) =>
        {
            Some(ProviderPath::List { sub, rg: None })
        }
        [subs, sub, rgs, rg, providers, rp, ty, rest @ ..]
            if is(subs, "subscriptions")
                && is(rgs, "resourceGroups")
                && is(providers, "providers")
                && is(rp, provider)
                && is(ty, resource_type) =>
        {
            Some(match rest.split_first() {
                None => ProviderPath::List { sub, rg: Some(rg) },
                Some((name, rest)) => ProviderPath::Resource {
                    sub,
                    rg,
                    name,
                    rest: rest.to_vec(),
                },
            })
        }
        _ => None,
    }
}

/// Whether an ARM request is for `provider`, at subscription or resource-group scope.
pub(crate) fn is_provider_request(segments: &[String], provider: &str) -> bool {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(s.as_slice(), [subs, _, providers, rp, ..]
        if is(subs, "subscriptions") && is(providers, "providers") && is(rp, provider))
        || matches!(s.as_slice(), [subs, _, rgs, _, providers, rp, ..]
        if is(subs, "subscriptions") && is(rgs, "resourceGroups") && is(providers, "providers") && is(rp, provider))
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DataFactory/factories/{name}`.
#[derive(Clone, Copy)]
pub(crate) struct FactoryPath<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub name: &'a str,
}

/// The subscription a request is scoped to, if any.
fn subscription(ctx: &Ctx) -> Option<&str> {
    match ctx.segments.as_slice() {
        [first, sub, ..] if is(first, "subscriptions") => Some(sub),
        _ => None,
    }
}

/// ARM counts GETs as reads and everything else as writes.
fn is_write(ctx: &Ctx) -> bool {
    ctx.method != Method::GET && ctx.method != Method::HEAD
}

/// Adds `x-ms-ratelimit-remaining-{subscription|tenant}-{reads|writes}` from the bucket model.
pub(crate) fn add_rate_limit_header(shared: &Shared, ctx: &Ctx, response: &mut Response) {
    let write = is_write(ctx);
    let (scope, level) = match subscription(ctx) {
        Some(sub) => (sub, "subscription"),
        None => ("", "tenant"),
    };
    let kind = if write { "writes" } else { "reads" };
    let remaining = shared.faults.remaining(scope, write);
    if let (Ok(name), Ok(value)) = (
        HeaderName::try_from(format!("x-ms-ratelimit-remaining-{level}-{kind}")),
        HeaderValue::from_str(&remaining.to_string()),
    ) {
        response.headers_mut().insert(name, value);
    }
}

fn unauthorized(code: &str, message: &str, description: &str) -> Response {
    let mut response = cloud_error(StatusCode::UNAUTHORIZED, code, message);
    let challenge = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"{description}\""
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// Checks the bearer token; returns the caller's client id.
pub(crate) fn authenticate(shared: &Shared, ctx: &Ctx) -> Result<String, Box<Response>> {
    let Some(token) = ctx.bearer() else {
        return Err(Box::new(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )));
    };
    let failure = match shared.tokens.check(token) {
        TokenCheck::Valid(issued)
            if ARM_AUDIENCES.contains(&normalize_audience(&issued.audience).as_str()) =>
        {
            return Ok(issued.client_id);
        }
        TokenCheck::Valid(issued) => unauthorized(
            "InvalidAuthenticationToken",
            &format!(
                "The access token is invalid: its audience '{}' is not https://management.azure.com/.",
                issued.audience
            ),
            "The access token has an invalid audience.",
        ),
        TokenCheck::Expired => unauthorized(
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
            "The access token has expired.",
        ),
        TokenCheck::Unknown => unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token could not be validated.",
        ),
    };
    Err(Box::new(failure))
}

pub(crate) fn forbidden(client_id: &str, action: &str, scope: &str) -> Response {
    cloud_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!(
            "The client '{client_id}' with object id '{client_id}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

/// The 404 for a missing subscription, resource group, factory or child.
pub(crate) fn not_found(
    missing: Missing,
    f: FactoryPath<'_>,
    child: Option<(ChildKind, &str)>,
) -> Response {
    let (code, message) = match missing {
        Missing::Subscription => (
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", f.sub),
        ),
        Missing::ResourceGroup => (
            "ResourceGroupNotFound",
            format!("Resource group '{}' could not be found.", f.rg),
        ),
        Missing::Factory => {
            let resource = match child {
                Some((kind, name)) => {
                    format!(
                        "Microsoft.DataFactory/factories/{}/{}/{name}",
                        f.name,
                        kind.segment()
                    )
                }
                None => format!("Microsoft.DataFactory/factories/{}", f.name),
            };
            return resource_not_found(&resource, f.rg);
        }
    };
    cloud_error(StatusCode::NOT_FOUND, code, &message)
}

/// ARM's 404 for a resource (`Provider/type/name/…`) missing from resource group `rg`.
pub(crate) fn resource_not_found(resource: &str, rg: &str) -> Response {
    cloud_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{resource}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// ARM's 404 for a path no route of the provider matches.
pub(crate) fn path_not_found(path: &str) -> Response {
    cloud_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("The resource at '{path}' was not found."),
    )
}

/// ARM's 405 for a method the resource does not take.
pub(crate) fn method_not_allowed(method: &Method) -> Response {
    cloud_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("The requested resource does not support http method '{method}'."),
    )
}

/// One page of `items` with an absolute `nextLink` (absent on the last page).
pub(crate) fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>) -> Response {
    match page_body(shared, ctx, items, API_VERSION) {
        Ok(body) => json_response(StatusCode::OK, Value::Object(body)),
        Err(response) => *response,
    }
}

/// The body of one page (`value`, and `nextLink` carrying `api_version` when there is more), or the 400 for
/// a bad `$skipToken`.
pub(crate) fn page_body(
    shared: &Shared,
    ctx: &Ctx,
    items: Vec<Value>,
    api_version: &str,
) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    let skip = match ctx.query_param("$skipToken") {
        None => 0,
        Some(token) => match token.parse::<usize>() {
            Ok(skip) if skip <= items.len() => skip,
            _ => {
                return Err(Box::new(cloud_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "The provided $skipToken is not valid.",
                )));
            }
        },
    };
    let size = shared.config.page_size;
    let end = skip.saturating_add(size).min(items.len());
    let mut body = serde_json::Map::new();
    body.insert("value".into(), Value::Array(items[skip..end].to_vec()));
    if end < items.len() {
        body.insert(
            "nextLink".into(),
            json!(format!(
                "{}{}?api-version={api_version}&$skipToken={end}",
                shared.config.https_url, ctx.path
            )),
        );
    }
    Ok(body)
}

/// What every ARM provider checks first, in ARM's order: the bearer token, the `api-version` (one of
/// `versions`), then throttling (429 bursts and the subscription's token buckets). Returns the caller's
/// client id.
pub(crate) fn preamble(
    shared: &Shared,
    ctx: &Ctx,
    versions: &[&str],
) -> Result<String, Box<Response>> {
    let client_id = authenticate(shared, ctx)?;
    match ctx.query_param("api-version") {
        None => {
            return Err(Box::new(cloud_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )));
        }
        Some(version) if versions.contains(&version) => {}
        Some(other) => {
            return Err(Box::new(cloud_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                &format!(
                    "The api-version '{other}' is invalid. The supported versions are '{}'.",
                    versions.join(",")
                ),
            )));
        }
    }
    let write = is_write(ctx);
    let scope = subscription(ctx).unwrap_or("");
    let throttled = shared
        .faults
        .burst()
        .or_else(|| shared.faults.take_token(scope, write).err());
    if let Some(retry_after) = throttled {
        shared.count(|c| c.throttled += 1);
        let kind = if write { "write" } else { "read" };
        return Err(Box::new(too_many_requests(
            retry_after,
            json!({"error": {
                "code": "SubscriptionRequestsThrottled",
                "message": format!("Number of '{kind}' requests for subscription '{scope}' actor '{client_id}' exceeded. Please try again after '{retry_after}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"),
            }}),
        )));
    }
    Ok(client_id)
}

/// Whether a resource in `resource_sub`/`resource_rg` is in a listing's scope: the subscription, and the
/// resource group when one is given (any case).
pub(crate) fn in_scope(sub: &str, rg: Option<&str>, resource_sub: &str, resource_rg: &str) -> bool {
    resource_sub.eq_ignore_ascii_case(sub)
        && rg.is_none_or(|rg| resource_rg.eq_ignore_ascii_case(rg))
}

/// Checks that the subscription (and resource group, when given) exist: ARM's 404s otherwise.
pub(crate) fn check_scope(
    shared: &Shared,
    sub: &str,
    rg: Option<&str>,
) -> Result<(), Box<Response>> {
    let store = lock(&shared.store);
    let Some(subscription) = store.subscription(sub) else {
        return Err(Box::new(not_found(
            Missing::Subscription,
            FactoryPath {
                sub,
                rg: "",
                name: "",
            },
            None,
        )));
    };
    if let Some(rg) = rg
        && !subscription
            .resource_groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(rg))
    {
        return Err(Box::new(not_found(
            Missing::ResourceGroup,
            FactoryPath { sub, rg, name: "" },
            None,
        )));
    }
    Ok(())
}

/// ARM's 403 for an action the caller's role does not grant.
pub(crate) fn authorization_failed(client_id: &str, action: &str, scope: &str) -> Response {
    forbidden(client_id, action, scope)
}
