//! Key Vault events → [`SecretEvent`].
//!
//! Event Grid delivers Key Vault events in the Event Grid schema (`eventType`, `topic`) or in CloudEvents 1.0
//! (`type`, `source`), singly or in a batch. The published samples disagree on key case, carry stray spaces in
//! keys and values, and give `NBF`/`EXP` as numbers or numeric strings, so parsing here is lenient about form
//! and strict about meaning: a vault and a secret name must be found, or the event is rejected with the reason.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a Key Vault event asks the product to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// `SecretNewVersionCreated`: refresh every consumer.
    NewVersion,
    /// `SecretNearExpiry`: report the consumers at risk.
    NearExpiry,
    /// `SecretExpired`: report the consumers that are now broken.
    Expired,
}

/// One secret event, reduced to what the product acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretEvent {
    pub kind: EventKind,
    pub event_id: Option<String>,
    pub event_type: String,
    pub vault: String,
    pub secret: String,
    pub version: Option<String>,
    /// The secret's URL from the event (`data.Id`), which also tells the vault's cloud.
    pub secret_url: Option<String>,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
}

/// The outcome of reading one event from a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Secret(SecretEvent),
    /// Event Grid's handshake; the answer is `{"validationResponse": code}`.
    SubscriptionValidation {
        validation_code: String,
    },
    /// A well-formed event of a type the product does not act on.
    Ignored {
        event_type: String,
        event_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not valid JSON: {0}")]
    NotJson(String),
    #[error("expected an event object or an array of events, found {0}")]
    NotAnEvent(&'static str),
    #[error("the batch is empty")]
    EmptyBatch,
    #[error("the batch holds {0} events; at most {MAX_BATCH} are accepted")]
    BatchTooLarge(usize),
    #[error("event {index}: {reason}")]
    Invalid { index: usize, reason: String },
}

/// Event Grid delivers at most 5,000 events per batch to a webhook; a Functions trigger gets one at a time.
pub const MAX_BATCH: usize = 5000;
const MAX_FIELD_LEN: usize = 2048;

/// Parses a delivery: one event, a batch, or a JSON-encoded string of either.
pub fn parse_delivery(body: &Value) -> Result<Vec<Parsed>, EventError> {
    match body {
        // A delivery may arrive JSON-encoded as a string, once or more; each level is shorter, so this ends.
        Value::String(text) => {
            let inner: Value =
                serde_json::from_str(text).map_err(|e| EventError::NotJson(e.to_string()))?;
            parse_delivery(&inner)
        }
        Value::Array(items) if items.is_empty() => Err(EventError::EmptyBatch),
        Value::Array(items) if items.len() > MAX_BATCH => {
            Err(EventError::BatchTooLarge(items.len()))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                parse_one(item).map_err(|reason| EventError::Invalid { index, reason })
            })
            .collect(),
        Value::Object(_) => {
            Ok(vec![parse_one(body).map_err(|reason| {
                EventError::Invalid { index: 0, reason }
            })?])
        }
        other => Err(EventError::NotAnEvent(json_kind(other))),
    }
}

/// Parses raw bytes of a delivery.
pub fn parse_delivery_bytes(bytes: &[u8]) -> Result<Vec<Parsed>, EventError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_delivery(&value)
}

fn parse_one(event: &Value) -> Result<Parsed, String> {
    let Value::Object(event) = event else {
        return Err(format!(
            "expected an event object, found {}",
            json_kind(event)
        ));
    };
    let event_type = text_field(event, &["eventType", "type"])
        .ok_or("has neither `eventType` (Event Grid schema) nor `type` (CloudEvents)")?;
    let event_id = text_field(event, &["id"]);
    let short_type = event_type
        .rsplit('.')
        .next()
        .unwrap_or(&event_type)
        .to_string();
    let kind = match short_type.to_ascii_lowercase().as_str() {
        "subscriptionvalidationevent" => {
            let code = object_field(event, "data")
                .and_then(|data| text_field(data, &["validationCode"]))
                .ok_or("a SubscriptionValidationEvent without `data.validationCode`")?;
            return Ok(Parsed::SubscriptionValidation {
                validation_code: code,
            });
        }
        "secretnewversioncreated" => EventKind::NewVersion,
        "secretnearexpiry" => EventKind::NearExpiry,
        "secretexpired" => EventKind::Expired,
        _ => {
            return Ok(Parsed::Ignored {
                event_type,
                event_id,
            });
        }
    };
    if !event_type
        .to_ascii_lowercase()
        .starts_with("microsoft.keyvault.")
    {
        return Ok(Parsed::Ignored {
            event_type,
            event_id,
        });
    }

    let data = object_field(event, "data").ok_or("has no `data` object")?;
    let topic = text_field(event, &["topic", "source"]);
    let vault = text_field(data, &["VaultName"])
        .or_else(|| topic.as_deref().and_then(vault_from_resource_id))
        .ok_or(
            "names no vault: neither `data.VaultName` nor a vault resource id in `topic`/`source`",
        )?;
    let secret = text_field(data, &["ObjectName"])
        .or_else(|| text_field(event, &["subject"]))
        .ok_or("names no secret: neither `data.ObjectName` nor `subject`")?;
    if let Some(object_type) = text_field(data, &["ObjectType"])
        && !object_type.eq_ignore_ascii_case("secret")
    {
        return Err(format!("is about a {object_type}, not a secret"));
    }
    validate_name("vault", &vault, 24)?;
    validate_name("secret", &secret, 127)?;
    let version = text_field(data, &["Version"]).filter(|v| !v.is_empty());
    if let Some(v) = &version {
        validate_name("version", v, 64)?;
    }
    Ok(Parsed::Secret(SecretEvent {
        kind,
        event_id,
        event_type,
        vault,
        secret,
        version,
        secret_url: text_field(data, &["Id"]),
        not_before: number_field(data, "NBF")?,
        expires: number_field(data, "EXP")?,
    }))
}

/// The vault name at the end of a `…/providers/Microsoft.KeyVault/vaults/{name}` resource id.
pub fn vault_from_resource_id(id: &str) -> Option<String> {
    let segments: Vec<&str> = id.trim().trim_end_matches('/').split('/').collect();
    let n = segments.len();
    (n >= 2 && segments[n - 2].eq_ignore_ascii_case("vaults") && !segments[n - 1].is_empty())
        .then(|| segments[n - 1].to_string())
}

/// Vault and secret names are restricted to letters, digits and dashes; anything else is not a real event.
fn validate_name(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "the {what} name is {} characters long; at most {max} are valid",
            value.len()
        ));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "the {what} name {value:?} holds characters Key Vault never uses"
        ));
    }
    Ok(())
}

/// Finds a field whatever the case of its key and with stray spaces around it.
fn lookup<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn text_field(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| match lookup(object, key)? {
        Value::String(s) if !s.trim().is_empty() && s.len() <= MAX_FIELD_LEN => {
            Some(s.trim().to_string())
        }
        _ => None,
    })
}

fn object_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    lookup(object, key)?.as_object()
}

fn number_field(object: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match lookup(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` is not a whole number of seconds")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("`{key}` is not a number: {:?}", truncate(s, 40))),
        Some(other) => Err(format!("`{key}` is a {}, not a number", json_kind(other))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
    }

    fn sample(name: &str) -> Value {
        let text = std::fs::read_to_string(events_dir().join(name)).expect("sample exists");
        serde_json::from_str(&text).expect("sample is JSON")
    }

    fn only_secret(parsed: Vec<Parsed>) -> SecretEvent {
        match parsed.as_slice() {
            [Parsed::Secret(e)] => e.clone(),
            other => panic!("expected one secret event, got {other:?}"),
        }
    }

    #[test]
    fn every_new_version_sample_gives_the_same_event() {
        for name in [
            "kv-secret-new-version-created.eventgrid.docs-2021.json",
            "kv-secret-new-version-created.eventgrid.docs-2020-lowercase.json",
            "kv-secret-new-version-created.eventgrid.restspec.json",
            "kv-secret-new-version-created.cloudevents.docs-2021.json",
            "kv-secret-new-version-created.cloudevents.restspec.json",
        ] {
            let event = only_secret(parse_delivery(&sample(name)).unwrap());
            assert_eq!(event.kind, EventKind::NewVersion, "{name}");
            assert_eq!(event.vault, "sample-kv", "{name}");
            assert_eq!(event.secret, "newsecret", "{name}");
            assert_eq!(
                event.version.as_deref(),
                Some("ee059b2bb5bc48398a53b168c6cdcb10"),
                "{name}"
            );
            assert_eq!(event.not_before, Some(1559081980), "{name}");
            assert_eq!(event.expires, Some(1559082102), "{name}");
            assert_eq!(
                event.event_id.as_deref(),
                Some("00eccf70-95a7-4e7c-8299-2eb17ee9ad64")
            );
        }
    }

    #[test]
    fn expiry_samples_parse_with_numeric_times() {
        for (name, kind) in [
            (
                "kv-secret-near-expiry.eventgrid.DERIVED.json",
                EventKind::NearExpiry,
            ),
            (
                "kv-secret-near-expiry.cloudevents.DERIVED.json",
                EventKind::NearExpiry,
            ),
            (
                "kv-secret-expired.eventgrid.DERIVED.json",
                EventKind::Expired,
            ),
            (
                "kv-secret-expired.cloudevents.DERIVED.json",
                EventKind::Expired,
            ),
        ] {
            let event = only_secret(parse_delivery(&sample(name)).unwrap());
            assert_eq!(event.kind, kind, "{name}");
            assert_eq!(event.secret, "adf-sql-password");
            assert_eq!(event.expires, Some(1717200000));
        }
    }

    #[test]
    fn subscription_validation_yields_the_code() {
        let parsed =
            parse_delivery(&sample("eventgrid-subscription-validation.docs.json")).unwrap();
        assert_eq!(
            parsed,
            vec![Parsed::SubscriptionValidation {
                validation_code: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6".into()
            }]
        );
    }

    #[test]
    fn a_json_encoded_string_is_unwrapped() {
        let envelope = sample("customhandler-request.eventgrid.DERIVED-string-variant.json");
        let event = only_secret(parse_delivery(&envelope["Data"]["eventGridEvent"]).unwrap());
        assert_eq!(event.secret, "newsecret");
    }

    #[test]
    fn unknown_types_are_ignored_not_rejected() {
        let parsed = parse_delivery(
            &json!({"id": "1", "eventType": "Microsoft.KeyVault.KeyNewVersionCreated", "data": {}}),
        )
        .unwrap();
        assert!(
            matches!(&parsed[0], Parsed::Ignored { event_type, .. } if event_type.ends_with("KeyNewVersionCreated"))
        );
        let parsed = parse_delivery(
            &json!({"id": "1", "type": "Contoso.Custom.SecretNewVersionCreated", "data": {}}),
        )
        .unwrap();
        assert!(matches!(&parsed[0], Parsed::Ignored { .. }));
    }

    #[test]
    fn vault_falls_back_to_topic_and_secret_to_subject() {
        let event = only_secret(
            parse_delivery(&json!({
                "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
                "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-one",
                "subject": "db-pass",
                "data": {}
            }))
            .unwrap(),
        );
        assert_eq!(
            (event.vault.as_str(), event.secret.as_str()),
            ("kv-one", "db-pass")
        );
        assert_eq!(event.version, None);
    }

    #[test]
    fn malformed_events_are_rejected_with_the_reason() {
        let cases = [
            (json!(42), "expected an event object"),
            (json!([]), "empty"),
            (json!({"data": {}}), "neither `eventType`"),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated"}),
                "no `data`",
            ),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"ObjectName": "s"}}),
                "names no vault",
            ),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"VaultName": "v"}}),
                "names no secret",
            ),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"VaultName": "v", "ObjectName": "../etc"}}),
                "characters Key Vault never uses",
            ),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"VaultName": "v", "ObjectName": "s", "EXP": "soon"}}),
                "`EXP` is not a number",
            ),
            (
                json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"VaultName": "v", "ObjectName": "s", "ObjectType": "Key"}}),
                "not a secret",
            ),
            (json!("not json"), "not valid JSON"),
        ];
        for (input, expected) in cases {
            let err = parse_delivery(&input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
        let huge: Vec<Value> = (0..=MAX_BATCH).map(|_| json!({})).collect();
        assert!(matches!(
            parse_delivery(&Value::Array(huge)),
            Err(EventError::BatchTooLarge(_))
        ));
    }

    #[test]
    fn a_batch_keeps_every_event_in_order() {
        let one = sample("kv-secret-new-version-created.eventgrid.restspec.json");
        let mut two = one.clone();
        two["data"]["ObjectName"] = json!("other");
        let parsed = parse_delivery(&json!([one, two])).unwrap();
        let names: Vec<_> = parsed
            .iter()
            .map(|p| match p {
                Parsed::Secret(e) => e.secret.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(names, ["newsecret", "other"]);
    }

    proptest::proptest! {
        #[test]
        fn any_vault_id_topic_or_secret_url_is_parsed_without_panicking(
            id in "\\PC{0,80}",
            topic in "(/subscriptions/[a-z0-9]{1,4}/resourceGroups/\\PC{0,12}/providers/Microsoft.KeyVault/vaults/)?\\PC{0,30}",
        ) {
            let _ = vault_from_resource_id(&topic);
            let event = json!({
                "id": id.clone(), "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "topic": topic,
                "subject": "s", "data": {"Id": id, "ObjectName": "s", "ObjectType": "Secret"}
            });
            let _ = parse_delivery(&event);
        }
    }
}
