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
//!
//! [`HostSimulator::front_end`] adds the host's HTTP front end, as a client of a deployed app meets it:
//! - a function with `authLevel: function` opens only with one of its own keys, in the `x-functions-key` header
//!   or the `code` query parameter; a missing or wrong key is `401` and the handler is not invoked (Microsoft
//!   docs, "Azure Functions HTTP trigger", API key authorization; "Work with access keys in Azure Functions":
//!   function keys "apply only to the specific functions under which they're defined");
//! - routes come from `function.json` under the `api` prefix (`host.json` `routePrefix`), with their methods and
//!   constraints: `POST /api/refresh` is `Refresh`, `GET /api/refresh/{id:guid}` is `RefreshStatus`; any other
//!   path, method or an id that is not a GUID is `404` (ASP.NET Core routing, which the host uses);
//! - the answer is the handler's `res` output (`statusCode`, `headers`, `body`); a failed invocation is `500`;
//! - output bindings take effect: `run` blobs are kept (`reports/runs/{id}.json`) for the status function's
//!   input binding, and a `job` queue message is delivered to `RefreshJob` as the queue trigger would.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
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

/// The functions the front end serves: route, method, and the function that answers.
const FRONT_END_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "refresh", "Refresh"),
    ("GET", "refresh/{id:guid}", "RefreshStatus"),
];

/// What the front end keeps between requests: each function's key and the `run` blobs written so far.
struct FrontEnd {
    host: Arc<HostSimulator>,
    keys: HashMap<String, String>,
    runs: Mutex<HashMap<String, String>>,
}

impl HostSimulator {
    /// Starts the host's HTTP front end on loopback and returns its base URL (`http://127.0.0.1:{port}`).
    /// `keys` maps a function name (`Refresh`, `RefreshStatus`) to its function key; a function without one
    /// opens to no key. See the module documentation for what it reproduces.
    pub async fn front_end(self: &Arc<Self>, keys: &[(&str, &str)]) -> std::io::Result<String> {
        let state = Arc::new(FrontEnd {
            host: Arc::clone(self),
            keys: keys
                .iter()
                .map(|(f, k)| ((*f).to_string(), (*k).to_string()))
                .collect(),
            runs: Mutex::new(HashMap::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let state = Arc::clone(&state);
            async move { state.answer(request).await }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(url)
    }
}

impl FrontEnd {
    async fn answer(self: Arc<Self>, request: axum::extract::Request) -> axum::response::Response {
        use axum::http::StatusCode;
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let header_key = request
            .headers()
            .get("x-functions-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some((function, params)) = route(&method, &path) else {
            return status_only(StatusCode::NOT_FOUND);
        };
        let query_key = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("code="))
            .map(str::to_string);
        let given = header_key.or(query_key);
        let expected = self.keys.get(function);
        if expected.is_none() || given.as_ref() != expected {
            return status_only(StatusCode::UNAUTHORIZED);
        }
        let key = given.unwrap_or_default();
        let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let answer = match function {
            "Refresh" => {
                let text = String::from_utf8_lossy(&body).into_owned();
                self.host.http(function, &text, &key).await
            }
            _ => {
                let id = params["id"].as_str().unwrap_or_default().to_string();
                let blob = self.run_blob(&id);
                self.host
                    .http_get(
                        function,
                        path.trim_start_matches("/api/"),
                        params,
                        json!({ "run": blob_input(blob.as_deref()) }),
                        &key,
                    )
                    .await
            }
        };
        if !(200..300).contains(&answer.status) {
            return status_only(StatusCode::INTERNAL_SERVER_ERROR);
        }
        if let Some(run) = answer.output("run") {
            self.keep_run(run);
        }
        if let Some(job) = answer.output("job").cloned() {
            // The queue trigger picks the message up: RefreshJob runs and writes its `run` blob.
            let state = Arc::clone(&self);
            tokio::spawn(async move {
                let delivered = state.host.deliver("RefreshJob", &job, 5).await;
                if let Some(run) = delivered.answers.last().and_then(|a| a.output("run")) {
                    state.keep_run(run);
                }
            });
        }
        http_answer(answer.output("res"))
    }

    /// Keeps a `run` output as the blob `reports/runs/{id}.json`, keyed by the document's `id`.
    fn keep_run(&self, run: &Value) {
        let text = match run {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let document: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(id) = document.get("id").and_then(Value::as_str)
            && let Ok(mut runs) = self.runs.lock()
        {
            runs.insert(id.to_ascii_lowercase(), text);
        }
    }

    fn run_blob(&self, id: &str) -> Option<String> {
        self.runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(&id.to_ascii_lowercase()).cloned())
    }
}

/// The function a request reaches, and its route parameters, or `None` (404).
fn route(method: &str, path: &str) -> Option<(&'static str, Value)> {
    let rest = path.strip_prefix("/api/")?.trim_end_matches('/');
    FRONT_END_ROUTES.iter().find_map(|(m, template, function)| {
        if !m.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut params = serde_json::Map::new();
        let template: Vec<&str> = template.split('/').collect();
        let segments: Vec<&str> = rest.split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        for (t, s) in template.iter().zip(&segments) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(parameter) => {
                    let (name, constraint) = parameter.split_once(':').unwrap_or((parameter, ""));
                    if constraint == "guid" && uuid::Uuid::parse_str(s).is_err() {
                        return None;
                    }
                    params.insert(name.to_string(), json!(s));
                }
                None if t.eq_ignore_ascii_case(s) => {}
                None => return None,
            }
        }
        Some((*function, Value::Object(params)))
    })
}

fn status_only(status: axum::http::StatusCode) -> axum::response::Response {
    let mut response = axum::response::Response::new(axum::body::Body::empty());
    *response.status_mut() = status;
    response
}

/// The HTTP answer the host makes of a handler's `res` output.
fn http_answer(res: Option<&Value>) -> axum::response::Response {
    let Some(res) = res else {
        return status_only(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    };
    let body = match &res["body"] {
        Value::Null => Vec::new(),
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let mut response = axum::response::Response::new(axum::body::Body::from(body));
    *response.status_mut() = res["statusCode"]
        .as_u64()
        .and_then(|s| axum::http::StatusCode::from_u16(s as u16).ok())
        .unwrap_or(axum::http::StatusCode::OK);
    for (name, value) in res["headers"].as_object().into_iter().flatten() {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            other => other.to_string(),
        };
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
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
