//! Azure Synapse Analytics: the ARM listing of workspaces (`Microsoft.Synapse/workspaces`,
//! api-version 2021-06-01) and each workspace's development endpoint (data plane, api-version 2020-12-01)
//! under `/synapse/{workspace}/` on the TLS listener: linked services and credentials with paging, ADF's
//! masking, `If-Match`, the long-running PUT (`202` + `Location` + `Retry-After`, polled at
//! `operationResults/{id}`), the `https://dev.azuresynapse.net` token audience and Synapse RBAC.
//!
//! Sources (see the emulator README, "Synapse"): the spec files under
//! `reference/synapse-spec/` (linkedServices.json, credential.json, workspace.json and their examples) and
//! the public observations cited next to each behaviour below.

use axum::http::header::{LOCATION, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::arm_common::{self, ProviderPath, is};
use crate::http::{Ctx, cloud_error, json_response};
use crate::state::Shared;
use crate::store;
use crate::synapse_model::{
    ARM_API_VERSION, DATA_API_VERSION, Estate, Kind, Operation, PATH_PREFIX, PutScript,
    SYNAPSE_AUDIENCE, Workspace,
};
use crate::token_store::{TokenCheck, normalize_audience};
use crate::util::lock;
use crate::write;

// ---- ARM: Microsoft.Synapse/workspaces ----

/// An ARM request for `Microsoft.Synapse/workspaces`.
enum ArmRoute<'a> {
    List {
        sub: &'a str,
        rg: Option<&'a str>,
    },
    Workspace {
        sub: &'a str,
        rg: &'a str,
        name: &'a str,
    },
}

fn parse_arm(segments: &[String]) -> Option<ArmRoute<'_>> {
    match arm_common::provider_path(segments, "Microsoft.Synapse", "workspaces")? {
        ProviderPath::List { sub, rg } => Some(ArmRoute::List { sub, rg }),
        ProviderPath::Resource {
            sub,
            rg,
            name,
            rest,
        } if rest.is_empty() => Some(ArmRoute::Workspace { sub, rg, name }),
        ProviderPath::Resource { .. } => None,
    }
}

/// Whether an ARM request is for the `Microsoft.Synapse` provider (routed here instead of ADF's ARM).
pub(crate) fn is_arm_request(segments: &[String]) -> bool {
    arm_common::is_provider_request(segments, "Microsoft.Synapse")
}

/// Handles an ARM request for `Microsoft.Synapse/workspaces`: the same authentication and throttling as
/// the rest of ARM, api-version 2021-06-01, paged lists with an absolute `nextLink`.
pub(crate) fn handle_arm(shared: &Shared, ctx: &Ctx) -> Response {
    let client_id = match arm_common::preamble(shared, ctx, &[ARM_API_VERSION]) {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    let Some(route) = parse_arm(&ctx.segments) else {
        return arm_common::path_not_found(&ctx.path);
    };
    if ctx.method != Method::GET {
        // The product never writes a workspace; a write is refused as a role without it would be.
        return cloud_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client '{client_id}' with object id '{client_id}' does not have authorization to perform action 'Microsoft.Synapse/workspaces/write' over scope '{}' or the scope is invalid.",
                ctx.path
            ),
        );
    }
    let (sub, rg, name) = match route {
        ArmRoute::List { sub, rg } => (sub, rg, None),
        ArmRoute::Workspace { sub, rg, name } => (sub, Some(rg), Some(name)),
    };
    if let Err(response) = arm_common::check_scope(shared, sub, rg) {
        return *response;
    }
    let https_url = &shared.config.https_url;
    let estate = lock(&shared.synapse);
    let in_scope =
        |w: &&Workspace| arm_common::in_scope(sub, rg, &w.subscription_id, &w.resource_group);
    if let Some(name) = name {
        return match estate
            .workspaces
            .iter()
            .filter(in_scope)
            .find(|w| w.name.eq_ignore_ascii_case(name))
        {
            Some(ws) => json_response(StatusCode::OK, ws.to_json(https_url)),
            None => cloud_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource 'Microsoft.Synapse/workspaces/{name}' under resource group '{}' was not found.",
                    rg.unwrap_or("")
                ),
            ),
        };
    }
    let items: Vec<Value> = estate
        .workspaces
        .iter()
        .filter(in_scope)
        .map(|w| w.to_json(https_url))
        .collect();
    drop(estate);
    page(shared, ctx, items, ARM_API_VERSION)
}

/// One page of `items` with an absolute `nextLink` (absent on the last page). Both specs name the link
/// `nextLink` (`x-ms-pageable`); its query is the emulator's own.
fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>, api_version: &str) -> Response {
    match arm_common::page_body(shared, ctx, items, api_version) {
        Ok(body) => json_response(StatusCode::OK, Value::Object(body)),
        Err(response) => *response,
    }
}

// ---- the development endpoint (data plane) ----

/// A data-plane error. The service answers `{"code","message"}` at the top level (observed in
/// Azure/azure-rest-api-specs#10500 and Azure/terraform-provider-azapi#1105).
fn dev_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message}))
}

/// `None` when the caller holds a valid token for `https://dev.azuresynapse.net`.
fn authenticate(shared: &Shared, ctx: &Ctx) -> Option<Response> {
    let Some(token) = ctx.bearer() else {
        // Azure/terraform-provider-azapi#1105: a token the endpoint cannot use is 401 AuthenticationFailed.
        return Some(dev_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Token Authentication failed - the request has no bearer token.",
        ));
    };
    match shared.tokens.check(token) {
        TokenCheck::Valid(issued) if normalize_audience(&issued.audience) == SYNAPSE_AUDIENCE => {
            None
        }
        // Azure/azure-rest-api-specs#10500: a token for another audience (an ARM token, say).
        TokenCheck::Valid(_) => Some(dev_error(
            StatusCode::UNAUTHORIZED,
            "InvalidTokenAuthenticationAudience",
            "Token Authentication failed with SecurityTokenInvalidAudienceException - IDX10214: Audience validation failed. Audiences: '[PII is hidden]'. Did not match: validationParameters.ValidAudience: '[PII is hidden]' or validationParameters.ValidAudiences: '[PII is hidden]'.",
        )),
        TokenCheck::Expired => Some(dev_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Token Authentication failed - the token has expired.",
        )),
        TokenCheck::Unknown => Some(dev_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Token Authentication failed - the token could not be validated.",
        )),
    }
}

/// The 403 of Synapse RBAC (MicrosoftDocs/azure-docs#100560 shows the message).
fn rbac_denied(client_id: &str, action: &str, workspace: &str) -> Response {
    dev_error(
        StatusCode::FORBIDDEN,
        "Unauthorized",
        &format!(
            "The principal '{client_id}' does not have the required Synapse RBAC permission to perform this action. Required permission: Action: {action}, Scope: workspaces/{workspace}/*."
        ),
    )
}

enum DevRoute<'a> {
    List(Kind),
    Artifact(Kind, &'a str),
    OperationResult(&'a str),
}

fn parse_dev(rest: &[String]) -> Option<DevRoute<'_>> {
    let kind = |s: &str| {
        if is(s, "linkedservices") {
            Some(Kind::LinkedService)
        } else if is(s, "credentials") {
            Some(Kind::Credential)
        } else {
            None
        }
    };
    match rest {
        [collection] => kind(collection).map(DevRoute::List),
        [results, id] if is(results, "operationResults") => Some(DevRoute::OperationResult(id)),
        [collection, name] => kind(collection).map(|k| DevRoute::Artifact(k, name)),
        _ => None,
    }
}

/// Whether a development-endpoint path names one linked service or credential
/// (`/synapse/{workspace}/{linkedservices|credentials}/{name}`).
pub(crate) fn is_artifact_path(segments: &[String]) -> bool {
    matches!(
        segments
            .get(1..)
            .and_then(|rest| rest.split_first())
            .map(|(_, rest)| parse_dev(rest)),
        Some(Some(DevRoute::Artifact(..)))
    )
}

/// Handles one request under `/synapse/{workspace}/` (after latency, drops and injected errors).
pub(crate) fn handle_dev(shared: &Shared, ctx: &Ctx) -> Response {
    let Some((workspace_name, rest)) = ctx.segments.get(1..).and_then(<[String]>::split_first)
    else {
        return dev_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No workspace in the request path.",
        );
    };
    if let Some(response) = authenticate(shared, ctx) {
        return response;
    }
    let client_id = ctx
        .bearer()
        .and_then(|token| match shared.tokens.check(token) {
            TokenCheck::Valid(issued) => Some(issued.client_id),
            _ => None,
        })
        .unwrap_or_default();
    match ctx.query_param("api-version") {
        Some(DATA_API_VERSION) => {}
        other => {
            return dev_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersion",
                &format!(
                    "The api-version '{}' is not supported. Use {DATA_API_VERSION}.",
                    other.unwrap_or("")
                ),
            );
        }
    }
    let Some(route) = parse_dev(rest) else {
        return dev_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The resource at '{}' was not found.", ctx.path),
        );
    };
    let mut estate = lock(&shared.synapse);
    let Some(index) = estate.workspace(workspace_name) else {
        return dev_error(
            StatusCode::NOT_FOUND,
            "WorkspaceNotFound",
            &format!("The workspace '{workspace_name}' does not exist."),
        );
    };
    let role = estate.workspaces[index].caller_role;
    let ws_name = estate.workspaces[index].name.clone();
    match (route, &ctx.method) {
        (DevRoute::List(kind), &Method::GET) => {
            if !role.can_read() {
                return rbac_denied(&client_id, kind.read_action(), &ws_name);
            }
            let ws = &estate.workspaces[index];
            let items = ws
                .artifacts(kind)
                .iter()
                .map(|a| ws.artifact_json(kind, a, true))
                .collect();
            drop(estate);
            page(shared, ctx, items, DATA_API_VERSION)
        }
        (DevRoute::Artifact(kind, name), &Method::GET) => {
            if !role.can_read() {
                return rbac_denied(&client_id, kind.read_action(), &ws_name);
            }
            let ws = &estate.workspaces[index];
            let Some(position) = ws.position(kind, name) else {
                return artifact_not_found(kind, name);
            };
            let artifact = &ws.artifacts(kind)[position];
            // If-None-Match (linkedServices.json): 304 when the etag still matches.
            if let Some(tag) = ctx.header("if-none-match")
                && (tag.trim() == "*" || unquote(tag) == artifact.etag)
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let body = ws.artifact_json(kind, artifact, true);
            // The `concurrentEdits` fault, as for a factory (`factoryId` is the workspace's resource id):
            // someone edits the linked service right after this GET, so a PUT with its etag gets 412.
            if kind == Kind::LinkedService {
                let (workspace_id, artifact_name) = (ws.id(), artifact.name.clone());
                for description in shared
                    .faults
                    .take_concurrent_edits(&workspace_id, &artifact_name)
                {
                    let artifact = &mut estate.workspaces[index].linked_services[position];
                    if let Some(properties) = artifact.properties.as_object_mut() {
                        properties.insert("description".into(), json!(description));
                    }
                    artifact.etag = store::new_etag();
                    tracing::info!(linked_service = %artifact.name, "concurrent edit applied");
                }
            }
            json_response(StatusCode::OK, body)
        }
        (DevRoute::Artifact(kind, name), &Method::PUT) => {
            if !role.can_write() {
                return rbac_denied(&client_id, kind.write_action(), &ws_name);
            }
            put_artifact(shared, ctx, &mut estate, index, kind, name)
        }
        (DevRoute::OperationResult(id), &Method::GET) => {
            if !role.can_read() {
                return rbac_denied(
                    &client_id,
                    "Microsoft.Synapse/workspaces/operationResults/read",
                    &ws_name,
                );
            }
            poll(shared, &mut estate, &ws_name, id)
        }
        (_, method) => dev_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("The requested resource does not support http method '{method}'."),
        ),
    }
}

fn artifact_not_found(kind: Kind, name: &str) -> Response {
    let what = match kind {
        Kind::LinkedService => "LinkedService",
        Kind::Credential => "Credential",
    };
    dev_error(
        StatusCode::NOT_FOUND,
        "EntityNotFound",
        &format!("{what} '{name}' not found in the workspace."),
    )
}

/// An etag as sent, with optional quotes (`"abc"` or `abc`).
fn unquote(tag: &str) -> &str {
    tag.trim().trim_matches('"')
}

fn put_artifact(
    shared: &Shared,
    ctx: &Ctx,
    estate: &mut Estate,
    index: usize,
    kind: Kind,
    name: &str,
) -> Response {
    let properties = match write::properties_of(ctx) {
        Ok(properties) => properties,
        Err(refusal) => return refused(&refusal, kind, name),
    };
    let ws = &estate.workspaces[index];
    let existing = ws.position(kind, name);
    let current_etag = existing.map(|p| ws.artifacts(kind)[p].etag.as_str());
    if let Err(refusal) = write::check_if_match(ctx, current_etag) {
        return refused(&refusal, kind, name);
    }
    let script = existing
        .and_then(|p| ws.artifacts(kind)[p].put.clone())
        .unwrap_or_else(|| ws.put.clone());
    match script {
        PutScript::Ok => {
            let position = apply_write(shared, estate, index, kind, name, properties);
            let ws = &estate.workspaces[index];
            json_response(
                StatusCode::OK,
                ws.artifact_json(kind, &ws.artifacts(kind)[position], true),
            )
        }
        PutScript::Accepted { polls, fail_with } => {
            let id = uuid::Uuid::new_v4().to_string();
            let ws_name = ws.name.clone();
            let retry_after = ws.retry_after_secs;
            estate.operations.insert(
                id.clone(),
                Operation {
                    workspace: ws_name.clone(),
                    kind,
                    name: name.to_owned(),
                    properties: properties.clone(),
                    polls_left: polls,
                    fail_with,
                    outcome: None,
                },
            );
            // azure.synapse.tools (Deploy-SynapseObjectOnly.ps1) reads `operationId` from the 202 body.
            accepted(
                &shared.config.https_url,
                &ws_name,
                &id,
                retry_after,
                json!({"operationId": id, "state": "InProgress"}),
            )
        }
    }
}

/// A 202 with `Location` (the operation's result) and `Retry-After`.
fn accepted(https_url: &str, workspace: &str, id: &str, retry_after: u64, body: Value) -> Response {
    let mut response = json_response(StatusCode::ACCEPTED, body);
    let location = format!(
        "{https_url}/{PATH_PREFIX}/{workspace}/operationResults/{id}?api-version={DATA_API_VERSION}"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        headers.insert(RETRY_AFTER, value);
    }
    response
}

/// Writes the artifact through the one write path (write.rs); returns its position.
fn apply_write(
    shared: &Shared,
    estate: &mut Estate,
    index: usize,
    kind: Kind,
    name: &str,
    properties: &Value,
) -> usize {
    let Estate {
        workspaces,
        inline_secrets_seen,
        ..
    } = estate;
    let ws = &mut workspaces[index];
    let ws_name = ws.name.clone();
    write::save(
        shared,
        ws.artifacts_mut(kind),
        inline_secrets_seen,
        &ws_name,
        name,
        properties,
    )
}

/// The development endpoint's answer to a refused PUT: 400 `BadRequest` or 412 `PreconditionFailed`.
fn refused(refusal: &write::Refusal, kind: Kind, name: &str) -> Response {
    match refusal.bad_request_message() {
        Some(message) => dev_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
        None => dev_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            &format!(
                "The specified precondition 'If-Match' failed for {} '{name}': it was changed since it was read.",
                kind.segment().trim_end_matches('s')
            ),
        ),
    }
}

/// `GET operationResults/{id}`: 202 while in progress; at the end, 200 with the saved resource
/// (`Succeeded`) or 200 with `{"status":"Failed","error":…}`. Community tooling that polls this endpoint
/// (azure.synapse.tools `Wait-CompleteOperation.ps1`) ends on a body with an `etag` or on `status` `Failed`.
fn poll(shared: &Shared, estate: &mut Estate, workspace: &str, id: &str) -> Response {
    let retry_after;
    {
        let Some(index) = estate.workspace(workspace) else {
            return operation_not_found(id);
        };
        retry_after = estate.workspaces[index].retry_after_secs;
    }
    let Some(operation) = estate
        .operations
        .get_mut(id)
        .filter(|op| op.workspace.eq_ignore_ascii_case(workspace))
    else {
        return operation_not_found(id);
    };
    if let Some((status, body)) = &operation.outcome {
        return json_response(*status, body.clone());
    }
    if operation.polls_left > 0 {
        operation.polls_left -= 1;
        return accepted(
            &shared.config.https_url,
            workspace,
            id,
            retry_after,
            json!({"status": "InProgress"}),
        );
    }
    let operation = operation.clone();
    let outcome = match &operation.fail_with {
        Some(message) => (
            StatusCode::OK,
            json!({"status": "Failed", "error": {"code": "OperationFailed", "message": message}}),
        ),
        None => {
            let Some(index) = estate.workspace(&operation.workspace) else {
                return operation_not_found(id);
            };
            let position = apply_write(
                shared,
                estate,
                index,
                operation.kind,
                &operation.name,
                &operation.properties,
            );
            let ws = &estate.workspaces[index];
            (
                StatusCode::OK,
                ws.artifact_json(
                    operation.kind,
                    &ws.artifacts(operation.kind)[position],
                    true,
                ),
            )
        }
    };
    if let Some(stored) = estate.operations.get_mut(id) {
        stored.outcome = Some(outcome.clone());
    }
    json_response(outcome.0, outcome.1)
}

fn operation_not_found(id: &str) -> Response {
    dev_error(
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        &format!("The operation '{id}' was not found."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::decode_segments as segs;

    #[test]
    fn synapse_arm_paths_are_recognised_case_insensitively() {
        assert!(is_arm_request(&segs(
            "/subscriptions/s/providers/microsoft.synapse/workspaces"
        )));
        assert!(is_arm_request(&segs(
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Synapse/workspaces/w"
        )));
        assert!(!is_arm_request(&segs(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories"
        )));
        assert!(matches!(
            parse_arm(&segs(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w"
            )),
            Some(ArmRoute::Workspace { name: "w", .. })
        ));
    }
}
