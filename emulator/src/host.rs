//! A small Azure Functions host simulator for custom handlers.
//!
//! It behaves toward the handler binary as the Functions host does: starts it with
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, probes `GET /` until it answers, posts `{"Data":…,"Metadata":…}` envelopes
//! to `POST /{FunctionName}`, and passes the queue output of one function as the trigger of the next. It
//! serves the demo and the tests, so both go through the path Azure takes.
//!
//! Host behaviours it reproduces, with their sources (Azure/azure-functions-host unless noted):
//! - only a 2xx answer's `Outputs` and `Logs` are used; any other status fails the invocation
//!   (`HttpWorkerService.ProcessDefaultInvocationRequest`: `EnsureSuccessStatusCode` before reading them);
//! - a queue message is delivered again after a failed invocation, with `DequeueCount` one higher, and after
//!   `maxDequeueCount` failed deliveries (host.json, default 5) it is moved to `<queue>-poison`
//!   (Microsoft docs, "Azure Queue storage trigger", poison messages);
//! - an input binding's value is passed through `GetHttpScriptInvocationContextValue`
//!   (`ScriptInvocationContextExtensions`): a string (a blob read with `dataType: string`) becomes its JSON
//!   serialisation, so the handler receives a JSON-encoded string; a missing blob (null) becomes the text `null`;
//! - route parameters of an HTTP trigger arrive in `req.Params` (`HttpRequest.GetRequestAsJObject`).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The handler under the simulated host.
pub struct HostSimulator {
    child: Child,
    base: String,
    client: reqwest::Client,
    log_path: PathBuf,
    _log_dir: tempfile_dir::TempDir,
}

/// One invocation's answer: the HTTP status and the response envelope.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// A named output binding's value (`Outputs.{name}`).
    pub fn output(&self, name: &str) -> Option<&Value> {
        self.body
            .get("Outputs")
            .and_then(|o| o.get(name))
            .filter(|v| !v.is_null())
    }
}

impl HostSimulator {
    /// Starts `binary serve` with the given environment and waits until `GET /` answers.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> std::io::Result<HostSimulator> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let log_dir = tempfile_dir::TempDir::new()?;
        let log_path = log_dir.path().join("handler.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn()?;
        let host = HostSimulator {
            child,
            base: format!("http://127.0.0.1:{port}"),
            // No pooled connections: when the handler refuses an oversized body early it closes the
            // connection, and a pooled connection reused by the next invocation would fail at random.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .pool_max_idle_per_host(0)
                .build()
                .map_err(std::io::Error::other)?,
            log_path,
            _log_dir: log_dir,
        };
        for _ in 0..300 {
            if host.client.get(&host.base).send().await.is_ok() {
                return Ok(host);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(std::io::Error::other(format!(
            "the handler did not answer GET / within 30 s; its log:\n{}",
            host.logs()
        )))
    }

    /// Posts one invocation envelope to `POST /{function}`.
    pub async fn invoke(&self, function: &str, data: Value, metadata: Value) -> Answer {
        self.post(
            function,
            json!({ "Data": data, "Metadata": metadata })
                .to_string()
                .into_bytes(),
        )
        .await
    }

    /// Posts raw bytes, for hostile-input tests.
    pub async fn post(&self, function: &str, body: Vec<u8>) -> Answer {
        let response = self
            .client
            .post(format!("{}/{function}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.json::<Value>().await.unwrap_or(Value::Null);
                Answer { status, body }
            }
            Err(e) => Answer {
                status: 0,
                body: json!({ "transportError": e.to_string() }),
            },
        }
    }

    /// An Event Grid trigger invocation of `KeyVaultSecretEvent`.
    pub async fn event_grid(&self, event: Value) -> Answer {
        self.invoke(
            "KeyVaultSecretEvent",
            json!({ "event": event }),
            sys("KeyVaultSecretEvent"),
        )
        .await
    }

    /// A queue trigger invocation: the host hands the message over as a string.
    pub async fn queue(&self, function: &str, message: &Value, dequeue_count: u32) -> Answer {
        let text = match message {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut metadata = sys(function);
        metadata["DequeueCount"] = json!(dequeue_count);
        metadata["Id"] = json!(uuid::Uuid::new_v4().to_string());
        self.invoke(function, json!({ "job": text }), metadata)
            .await
    }

    /// An HTTP trigger invocation as the host forwards it when `enableForwardingHttpRequest` is false.
    /// The URL and headers carry a function key, as they do in Azure.
    pub async fn http(&self, function: &str, body: &str, function_key: &str) -> Answer {
        let req = json!({
            "Url": format!("https://app.azurewebsites.net/api/{}?code={function_key}", function.to_ascii_lowercase()),
            "Method": "POST",
            "Query": json!({ "code": function_key }).to_string(),
            "Headers": { "Content-Type": ["application/json"], "x-functions-key": [function_key] },
            "Params": {},
            "Body": body,
        });
        self.invoke(function, json!({ "req": req }), sys(function))
            .await
    }

    /// The whole path of a rotation: Event Grid → `KeyVaultSecretEvent` → queue → `RefreshJob`. Returns the
    /// answers of the refresh jobs, redelivering each (as the host does) while the handler asks for a retry.
    pub async fn rotate(&self, event: Value, max_deliveries: u32) -> (Answer, Vec<Answer>) {
        let queued = self.event_grid(event).await;
        let jobs: Vec<Value> = match queued.output("job") {
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        let mut answers = Vec::new();
        for job in jobs {
            let delivered = self.deliver("RefreshJob", &job, max_deliveries).await;
            if let Some(last) = delivered.answers.into_iter().last() {
                answers.push(last);
            }
        }
        (queued, answers)
    }

    /// Delivers one queue message as the host does: again with `DequeueCount` one higher after each failed
    /// (non-2xx) invocation, until one succeeds or `max_dequeue_count` deliveries have failed, when the host
    /// moves the message to `<queue>-poison`.
    pub async fn deliver(
        &self,
        function: &str,
        message: &Value,
        max_dequeue_count: u32,
    ) -> Deliveries {
        let mut answers = Vec::new();
        for delivery in 1..=max_dequeue_count.max(1) {
            let answer = self.queue(function, message, delivery).await;
            let succeeded = (200..300).contains(&answer.status);
            answers.push(answer);
            if succeeded {
                return Deliveries {
                    answers,
                    moved_to_poison: None,
                };
            }
        }
        Deliveries {
            answers,
            moved_to_poison: Some(message.clone()),
        }
    }

    /// An HTTP trigger `GET` with route parameters (`req.Params`) and input bindings, as the host forwards it
    /// when `enableForwardingHttpRequest` is false. `inputs` maps a binding name to its value as the host
    /// passes it (see `blob_input`).
    pub async fn http_get(
        &self,
        function: &str,
        path: &str,
        params: Value,
        inputs: Value,
        function_key: &str,
    ) -> Answer {
        let req = json!({
            "Url": format!("https://app.azurewebsites.net/api/{path}?code={function_key}"),
            "Method": "GET",
            "Query": json!({ "code": function_key }).to_string(),
            "Headers": { "x-functions-key": [function_key] },
            "Params": params,
            "Body": null,
        });
        let mut data = json!({ "req": req });
        if let (Some(data), Value::Object(inputs)) = (data.as_object_mut(), inputs) {
            data.extend(inputs);
        }
        self.invoke(function, data, sys(function)).await
    }

    /// Everything the handler wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops the handler.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The outcome of delivering one queue message.
#[derive(Debug, Clone)]
pub struct Deliveries {
    /// Every invocation's answer, in order; the last one is the one that counted.
    pub answers: Vec<Answer>,
    /// The message the host moved to `<queue>-poison` because every delivery failed, if it did.
    pub moved_to_poison: Option<Value>,
}

/// A blob input binding's value as the host passes it to a custom handler: the blob's text (read with
/// `dataType: string`) serialised as JSON, or the text `null` when the blob does not exist.
pub fn blob_input(blob_text: Option<&str>) -> Value {
    match blob_text {
        Some(text) => Value::String(Value::String(text.to_string()).to_string()),
        None => Value::String("null".into()),
    }
}

fn sys(function: &str) -> Value {
    json!({ "sys": {
        "MethodName": function,
        "UtcNow": "2026-11-26T01:00:00.0000000Z",
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    }})
}

/// A temporary directory removed on drop, without another dependency.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> std::io::Result<TempDir> {
            let path = std::env::temp_dir().join(format!("adf-host-sim-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path)?;
            Ok(TempDir(path))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
