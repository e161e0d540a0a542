//! The custom-handler invocation envelopes, in and out.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{"Data": {binding: value}, "Metadata": {...}}` as the host posts it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Invocation {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

impl Invocation {
    /// Parses an envelope from raw bytes, with a clear message on failure.
    pub fn parse(bytes: &[u8]) -> Result<Invocation, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "the invocation body is not UTF-8".to_string())?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("the invocation body is not JSON: {e}"))?;
        if !value.is_object() {
            return Err(format!(
                "the invocation body is {}, not an object",
                crate::event::json_kind(&value)
            ));
        }
        serde_json::from_value(value)
            .map_err(|e| format!("the invocation body is not an envelope: {e}"))
    }

    /// A trigger value, which the host may send as a JSON value or as a JSON-encoded string.
    pub fn trigger(&self, binding: &str) -> Option<Value> {
        let value = self.data.get(binding)?;
        Some(decode_string(value))
    }

    /// The invocation id the host gives, for logs.
    pub fn invocation_id(&self) -> Option<String> {
        self.metadata
            .get("sys")
            .and_then(|s| s.get("RandGuid"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn dequeue_count(&self) -> u64 {
        match self.metadata.get("DequeueCount") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(1),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(1),
            _ => 1,
        }
    }
}

/// Unwraps JSON that arrived as a string (once or twice encoded); leaves other strings alone.
pub fn decode_string(value: &Value) -> Value {
    let mut current = value.clone();
    for _ in 0..2 {
        match &current {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(inner) => current = inner,
                Err(_) => break,
            },
            _ => break,
        }
    }
    current
}

/// `{"Outputs": …, "Logs": […], "ReturnValue": …}`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
    /// The status of our answer to the host: non-2xx only when the host should retry.
    #[serde(skip)]
    pub status: u16,
}

impl InvocationResponse {
    pub fn ok() -> Self {
        InvocationResponse {
            status: 200,
            ..Default::default()
        }
    }
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }
    pub fn output(mut self, binding: &str, value: Value) -> Self {
        self.outputs.insert(binding.into(), value);
        self
    }
}

impl IntoResponse for InvocationResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}
