//! The one write path for linked services and credentials, whether they live in a Data Factory (ARM) or a
//! Synapse workspace (development endpoint): the body rule (`{"properties": …}` only, with
//! `properties.type`), the `If-Match` rule, and ADF's save (masked writes counted, inline secret values
//! remembered and encrypted again, a new etag). Each surface renders the refusals in its own error shape.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::http::Ctx;
use crate::state::Shared;
use crate::store::{self, Child, TestScript};
use crate::synapse_model::Artifact;

/// Why a PUT is refused before anything is written.
pub(crate) enum Refusal {
    /// 400: the body breaks the rule.
    BadRequest(&'static str),
    /// 400: the body has another top-level property.
    ExtraProperty(String),
    /// 412: `If-Match` does not hold.
    PreconditionFailed,
}

impl Refusal {
    /// The message a 400 carries (`None` for a 412, whose message names the resource).
    pub(crate) fn bad_request_message(&self) -> Option<String> {
        match self {
            Refusal::BadRequest(message) => Some((*message).to_owned()),
            Refusal::ExtraProperty(extra) => Some(format!(
                "The request body has an unsupported top-level property '{extra}'. Only 'properties' may be sent."
            )),
            Refusal::PreconditionFailed => None,
        }
    }
}

/// The `properties` of a PUT body, which must be `{"properties": {"type": …, …}}` and nothing else.
pub(crate) fn properties_of(ctx: &Ctx) -> Result<&Value, Refusal> {
    let Some(body) = ctx.json.as_ref().and_then(Value::as_object) else {
        return Err(Refusal::BadRequest(
            "The request content was invalid and could not be deserialized: a JSON object is required.",
        ));
    };
    if let Some(extra) = body.keys().find(|k| k.as_str() != "properties") {
        return Err(Refusal::ExtraProperty(extra.clone()));
    }
    let Some(properties) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(Refusal::BadRequest(
            "The request body must contain a 'properties' object.",
        ));
    };
    if properties.get("type").and_then(Value::as_str).is_none() {
        return Err(Refusal::BadRequest(
            "The 'properties.type' field is required.",
        ));
    }
    Ok(properties)
}

/// Checks the request's `If-Match` against the stored etag (`None`: the resource does not exist yet).
pub(crate) fn check_if_match(ctx: &Ctx, current: Option<&str>) -> Result<(), Refusal> {
    match ctx.header("if-match") {
        Some(header) if !if_match_holds(header, current) => Err(Refusal::PreconditionFailed),
        _ => Ok(()),
    }
}

/// Whether an `If-Match` header holds for a resource whose current etag is `current` (`None`: it does not
/// exist).
///
/// - `*` holds when the resource exists (RFC 9110 §13.1.1).
/// - A list of entity tags holds when one of them matches. Each may be quoted (`"<etag>"`, the RFC 9110
///   form that azure-mgmt-datafactory 10.0 sends: `_utils/utils.py`, `quote_etag`) or bare (the value from
///   the body as ARM returns it, which older SDKs and the product send). ARM accepts both.
/// - A weak tag (`W/"…"`) never matches: If-Match uses the strong comparison (RFC 9110 §13.1.1, "An origin
///   server MUST use the strong comparison function when comparing entity-tags for If-Match"), so a write
///   conditioned on one fails with 412.
pub(crate) fn if_match_holds(header: &str, current: Option<&str>) -> bool {
    let header = header.trim();
    let Some(current) = current else {
        return false;
    };
    if header == "*" {
        return true;
    }
    header.split(',').map(str::trim).any(|tag| {
        if tag.starts_with("W/") {
            return false;
        }
        let tag = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag);
        !tag.is_empty() && tag == current
    })
}

/// A stored linked service or credential, as both surfaces keep one.
pub(crate) trait Stored {
    fn name(&self) -> &str;
    fn properties(&self) -> &Value;
    /// A new, empty one named `name` in `owner` (a factory or a workspace).
    fn fresh(name: &str, owner: &str) -> Self;
    /// Takes the written properties, a new etag, and (when given) a new `encryptedCredential`.
    fn take(&mut self, properties: &Value, encrypted_credential: Option<String>);
}

impl Stored for Child {
    fn name(&self) -> &str {
        &self.name
    }

    fn properties(&self) -> &Value {
        &self.properties
    }

    fn fresh(name: &str, owner: &str) -> Self {
        Child {
            name: name.to_owned(),
            properties: Value::Null,
            etag: String::new(),
            test: TestScript::default(),
            resaved: false,
            puts: 0,
            encrypted_credential: store::new_encrypted_credential(owner),
        }
    }

    fn take(&mut self, properties: &Value, encrypted_credential: Option<String>) {
        if let Some(blob) = encrypted_credential {
            self.encrypted_credential = blob;
        }
        self.properties = properties.clone();
        self.etag = store::new_etag();
        self.resaved = true;
        self.puts += 1;
    }
}

impl Stored for Artifact {
    fn name(&self) -> &str {
        &self.name
    }

    fn properties(&self) -> &Value {
        &self.properties
    }

    fn fresh(name: &str, owner: &str) -> Self {
        Artifact {
            name: name.to_owned(),
            properties: Value::Null,
            etag: String::new(),
            encrypted_credential: store::new_encrypted_credential(owner),
            put: None,
            resaved: false,
            puts: 0,
        }
    }

    fn take(&mut self, properties: &Value, encrypted_credential: Option<String>) {
        if let Some(blob) = encrypted_credential {
            self.encrypted_credential = blob;
        }
        self.properties = properties.clone();
        self.etag = store::new_etag();
        self.resaved = true;
        self.puts += 1;
    }
}

/// Saves `properties` as `name` among `items` of `owner` with ADF's rules and returns its position: a PUT
/// that writes the mask over a stored inline secret counts in `masked_writes` (data loss); every inline
/// value is remembered in `seen`; new inline values are encrypted again (a new `encryptedCredential`) unless
/// the body carries its own; the etag changes; the write counts in `puts`.
pub(crate) fn save<T: Stored>(
    shared: &Shared,
    items: &mut Vec<T>,
    seen: &mut BTreeSet<String>,
    owner: &str,
    name: &str,
    properties: &Value,
) -> usize {
    let existing = items
        .iter()
        .position(|item| item.name().eq_ignore_ascii_case(name));
    let masked_write = existing
        .is_some_and(|p| store::overwrites_secret_with_mask(items[p].properties(), properties));
    if masked_write {
        shared.count(|c| c.masked_writes += 1);
        tracing::warn!(%owner, %name, "PUT wrote the mask over an inline secret");
    }
    store::collect_secure_values(properties, seen);
    let position = existing.unwrap_or_else(|| {
        items.push(T::fresh(name, owner));
        items.len() - 1
    });
    let carries_own_blob = properties
        .pointer("/typeProperties/encryptedCredential")
        .is_some();
    // New inline secret values: ADF encrypts them again.
    let encrypted_credential =
        (store::has_secure_string(properties) && !carries_own_blob && !masked_write)
            .then(|| store::new_encrypted_credential(owner));
    items[position].take(properties, encrypted_credential);
    shared.count(|c| c.puts += 1);
    position
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_quoted_or_bare_tags_and_refuses_weak_ones() {
        let etag = "0a00-0000";
        assert!(if_match_holds(etag, Some(etag)));
        assert!(if_match_holds("\"0a00-0000\"", Some(etag)));
        assert!(if_match_holds(" \"0a00-0000\" ", Some(etag)));
        assert!(if_match_holds("\"other\", \"0a00-0000\"", Some(etag)));
        assert!(if_match_holds("*", Some(etag)));
        assert!(!if_match_holds("*", None));
        assert!(!if_match_holds(etag, None));
        assert!(!if_match_holds("W/\"0a00-0000\"", Some(etag)));
        assert!(!if_match_holds("\"stale\"", Some(etag)));
        assert!(!if_match_holds("stale", Some(etag)));
        assert!(!if_match_holds("\"\"", Some(etag)));
        assert!(!if_match_holds("\"0a00-0000", Some(etag)));
    }
}
