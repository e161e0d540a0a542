//! The deployment scripts' own logic, run for real against a stub `az` (and, for the smoke test, a stub
//! `curl` standing in for the deployed app) that records every call.
//!
//! Azure is the only thing faked: the scripts, python and bash are the real ones. What is asserted is what
//! reached "Azure" (the recorded calls) and what the user sees (exit status and messages).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
const REFRESH_KEY: &str = "FAKE-refresh-function-key";
const STATUS_KEY: &str = "FAKE-refreshstatus-function-key";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A stub `az`: appends its arguments to `calls`, then answers with the first rule whose glob matches them
/// (`rules`: `glob<TAB>exit code<TAB>file holding the stdout`), or exit 0 and nothing.
const AZ_STUB: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$STUB_DIR/az.calls"
args="$*"
while IFS=$'\t' read -r pattern code out; do
  [ -n "$pattern" ] || continue
  if [[ "$args" == $pattern ]]; then
    [ -z "$out" ] || cat "$STUB_DIR/$out"
    exit "$code"
  fi
done <"$STUB_DIR/az.rules"
exit 0
"#;

/// A stub `curl` for the deployed app: a POST answers 202 with `Retry-After: 0`; a GET answers the report,
/// but only with the RefreshStatus key (a function key opens only its own function), else 401.
const CURL_STUB: &str = r#"#!/usr/bin/env bash
out="" headers="" method="GET" url="" key=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -D) headers="$2"; shift 2 ;;
    -X) method="$2"; shift 2 ;;
    -w | --data) shift 2 ;;
    -H) case "$2" in x-functions-key:*) key="${2#x-functions-key: }" ;; esac; shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
printf '%s %s key=%s\n' "$method" "$url" "$key" >>"$STUB_DIR/curl.calls"
id="3f2c1a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f"
if [ "$method" = POST ]; then
  printf 'HTTP/1.1 202 Accepted\r\nLocation: /api/refresh/%s\r\nRetry-After: 0\r\n\r\n' "$id" >"$headers"
  printf '{"id":"%s","status":"running"}' "$id" >"$out"
  printf 202
elif [ "$key" = "$STATUS_KEY" ]; then
  printf 'HTTP/1.1 200 OK\r\n\r\n' >"$headers"
  printf '{"schema":"adf-secret-refresh/report/v1","id":"%s","dryRun":true,"complete":true,"summary":{},"errors":[]}' "$id" >"$out"
  printf 200
else
  printf 'HTTP/1.1 401 Unauthorized\r\n\r\n' >"$headers"
  : >"$out"
  printf 401
fi
"#;

/// A folder with the stubs, their rules and their recorded calls.
struct Stubs {
    dir: tempfile::TempDir,
    rules: Vec<String>,
}

impl Stubs {
    fn new() -> Stubs {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).expect("bin dir");
        for (name, text) in [("az", AZ_STUB), ("curl", CURL_STUB)] {
            let path = bin.join(name);
            fs::write(&path, text).expect("write stub");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Stubs {
            dir,
            rules: Vec::new(),
        }
    }

    /// `az` answers arguments matching `glob` with `stdout` and `code`. Earlier rules win.
    fn az(&mut self, glob: &str, code: i32, stdout: &str) -> &mut Self {
        let file = format!("out-{}", self.rules.len());
        fs::write(self.dir.path().join(&file), stdout).expect("write answer");
        self.rules.push(format!("{glob}\t{code}\t{file}"));
        self
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The recorded calls of one stub (`az` or `curl`), one per line.
    fn calls(&self, stub: &str) -> Vec<String> {
        fs::read_to_string(self.path(&format!("{stub}.calls")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runs a script of the repository with the stubs first on PATH and no cargo anywhere on it.
    fn run(&self, script: &str, args: &[&str]) -> Output {
        fs::write(self.path("az.rules"), self.rules.join("\n") + "\n").expect("write rules");
        let mut path = vec![self.path("bin")];
        path.extend(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .filter(|dir| !dir.join("cargo").exists()),
        );
        let mut command = Command::new("bash");
        command
            .arg(repo_path(script))
            .args(args)
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env("STUB_DIR", self.dir.path())
            .env("STATUS_KEY", STATUS_KEY)
            .stdin(std::process::Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("ADF_REFRESH_") {
                command.env_remove(key);
            }
        }
        command.output().expect("bash runs")
    }
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A parameters file (JSON form) with one subscription scope and one vault.
fn parameters(stubs: &Stubs) -> PathBuf {
    let path = stubs.path("parameters.json");
    let document = serde_json::json!({
        "parameters": {
            "appName": { "value": "adfrefresh-test" },
            "managedScopes": { "value": [format!("/subscriptions/{SUBSCRIPTION}")] },
            "vaultIds": { "value": [format!(
                "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv-one"
            )] }
        }
    });
    fs::write(&path, document.to_string()).expect("write parameters");
    path
}

/// A package as scripts/package.sh makes it: host.json and an x86-64 Linux ELF at the root.
fn package(stubs: &Stubs) -> PathBuf {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[6] = 1;
    elf[16] = 2;
    elf[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
    let binary = stubs.path("adf-secret-refresh");
    fs::write(&binary, elf).expect("write binary");
    let zip = stubs.path("adf-secret-refresh.zip");
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
             \x20   z.write(sys.argv[2], 'adf-secret-refresh')\n\
             \x20   z.writestr('host.json', '{}')",
        )
        .arg(&zip)
        .arg(&binary)
        .status()
        .expect("python3 runs");
    assert!(made.success());
    zip
}

const TOPIC: &str = "evgt-kv-one-adfrefresh-test";

/// The deployment outputs of step 1 (no subscriptions) and of step 3 with `subscription_ids`.
fn outputs(subscriptions_deployed: bool, subscription_ids: &[&str]) -> String {
    serde_json::json!({
        "functionAppName": { "value": "adfrefresh-test" },
        "functionAppHostName": { "value": "adfrefresh-test.azurewebsites.net" },
        "storageAccountName": { "value": "stadfrefreshabc" },
        "customRoleDefinitionId": { "value": "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/y" },
        "managedIdentityPrincipalId": { "value": "11111111-1111-1111-1111-111111111111" },
        "reportContainerName": { "value": "reports" },
        "systemTopicNames": { "value": [TOPIC] },
        "eventSubscriptionsDeployed": { "value": subscriptions_deployed },
        "eventSubscriptionIds": { "value": subscription_ids },
    })
    .to_string()
}

/// The answers of a subscription where nothing is deployed yet, for a deploy with the given step-3 outputs.
fn deploy_stubs(az_version: &str, step3: &str) -> Stubs {
    let mut stubs = Stubs::new();
    stubs
        .az("version *", 0, &format!("{az_version}\n"))
        .az(
            "bicep version*",
            0,
            "Bicep CLI version 0.30.23 (ec3612b1ba)\n",
        )
        .az(
            "account show*",
            0,
            &format!("Test {SUBSCRIPTION} me@example.com\n"),
        )
        .az("group exists*", 0, "true\n")
        .az("functionapp show*", 3, "")
        .az(
            "deployment group create *deployEventSubscriptions=false*",
            0,
            &outputs(false, &[""]),
        )
        .az(
            "deployment group create *deployEventSubscriptions=true*",
            0,
            step3,
        );
    stubs
}

fn deploy(stubs: &Stubs, zip: &Path) -> Output {
    let parameters = parameters(stubs);
    stubs.run(
        "scripts/deploy.sh",
        &[
            "--resource-group",
            "rg-app",
            "--parameters",
            parameters.to_str().expect("utf-8 path"),
            "--zip",
            zip.to_str().expect("utf-8 path"),
            "--skip-check",
        ],
    )
}

#[test]
fn deploy_with_a_given_zip_needs_no_cargo_and_uploads_that_zip() {
    let subscription = format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-kv/providers/Microsoft.EventGrid/systemTopics/{TOPIC}/eventSubscriptions/adf-secret-refresh-adfrefresh-test"
    );
    let stubs = deploy_stubs("2.91.0", &outputs(true, &[&subscription]));
    let zip = package(&stubs);
    let output = deploy(&stubs, &zip);
    assert!(output.status.success(), "{}", text(&output));
    let calls = stubs.calls("az");
    let upload = calls
        .iter()
        .find(|c| c.starts_with("functionapp deployment source config-zip"))
        .unwrap_or_else(|| panic!("no upload in {calls:#?}"));
    assert!(
        upload.contains(&format!("--src {}", zip.display())),
        "{upload}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("deployment group create"))
            .count(),
        2,
        "steps 1 and 3"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "subscribed: Microsoft.EventGrid/systemTopics/{TOPIC}"
        )),
        "{stdout}"
    );
}

#[test]
fn deploy_step_three_fails_unless_the_outputs_say_every_vault_is_subscribed() {
    for (what, step3) in [
        ("no subscription id", outputs(true, &[""])),
        ("subscriptions not deployed", outputs(false, &[""])),
        (
            "an old template without the output",
            serde_json::json!({
                "systemTopicNames": { "value": [TOPIC] },
                "reportContainerName": { "value": "reports" },
                "storageAccountName": { "value": "stadfrefreshabc" },
            })
            .to_string(),
        ),
    ] {
        let stubs = deploy_stubs("2.91.0", &step3);
        let zip = package(&stubs);
        let output = deploy(&stubs, &zip);
        assert_eq!(output.status.code(), Some(1), "{what}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("step 3 did not subscribe KeyVaultSecretEvent to every vault"),
            "{what}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("==> done"),
            "{what}"
        );
    }
}

#[test]
fn deploy_refuses_an_azure_cli_older_than_the_scripts_need() {
    let stubs = deploy_stubs("2.59.0", &outputs(true, &["x"]));
    let zip = package(&stubs);
    let output = deploy(&stubs, &zip);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("Azure CLI 2.59.0 is too old: 2.60.0 or later is needed (run 'az upgrade')"),
        "{stderr}"
    );
    assert!(
        !stubs
            .calls("az")
            .iter()
            .any(|c| c.starts_with("deployment")),
        "nothing is deployed"
    );
}

#[test]
fn smoke_test_posts_with_the_refresh_key_and_polls_with_the_refresh_status_key() {
    let mut stubs = Stubs::new();
    stubs
        .az(
            "functionapp function keys list * --function-name Refresh *",
            0,
            &format!("{REFRESH_KEY}\n"),
        )
        .az(
            "functionapp function keys list * --function-name RefreshStatus *",
            0,
            &format!("{STATUS_KEY}\n"),
        );
    let output = stubs.run(
        "scripts/smoke-test.sh",
        &[
            "--resource-group",
            "rg-app",
            "--app",
            "adfrefresh-test",
            "--host",
            "adfrefresh-test.azurewebsites.net",
            "--vault",
            "kv-one",
            "--secret",
            "adf-secret-refresh-deploy-check",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let calls = stubs.calls("curl");
    assert_eq!(
        calls,
        [
            format!("POST https://adfrefresh-test.azurewebsites.net/api/refresh key={REFRESH_KEY}"),
            format!(
                "GET https://adfrefresh-test.azurewebsites.net/api/refresh/3f2c1a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f key={STATUS_KEY}"
            ),
        ]
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("HTTP 200: report"), "{printed}");
    assert!(
        !printed.contains(REFRESH_KEY) && !printed.contains(STATUS_KEY),
        "keys are never printed"
    );
}

#[test]
fn uninstall_removes_each_vaults_alert_rules_beside_its_system_topic() {
    let mut stubs = Stubs::new();
    stubs
        .az("account show*", 0, &format!("{SUBSCRIPTION}\n"))
        .az(
            "identity show*",
            0,
            "11111111-1111-1111-1111-111111111111\n",
        )
        .az("role assignment list*", 0, "")
        .az("role definition list*", 0, "");
    let parameters = parameters(&stubs);
    let output = stubs.run(
        "scripts/uninstall.sh",
        &[
            "--resource-group",
            "rg-app",
            "--parameters",
            parameters.to_str().expect("utf-8 path"),
            "--yes",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let calls = stubs.calls("az");
    for alert in ["deadlettered", "dropped", "delivery-failures"] {
        let delete = format!(
            "monitor metrics alert delete --subscription {SUBSCRIPTION} -g rg-kv -n alert-{TOPIC}-{alert}"
        );
        assert!(calls.contains(&delete), "no `{delete}` in {calls:#?}");
    }
    assert!(calls.contains(&format!(
        "eventgrid system-topic delete --subscription {SUBSCRIPTION} -g rg-kv -n {TOPIC} --yes"
    )));
    assert!(calls.contains(&"group delete --name rg-app --yes".to_string()));
}

#[test]
fn uninstall_without_yes_only_says_what_it_would_delete() {
    let mut stubs = Stubs::new();
    stubs
        .az("account show*", 0, &format!("{SUBSCRIPTION}\n"))
        .az("identity show*", 3, "");
    let parameters = parameters(&stubs);
    let output = stubs.run(
        "scripts/uninstall.sh",
        &[
            "--resource-group",
            "rg-app",
            "--parameters",
            parameters.to_str().expect("utf-8 path"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("would run: az monitor metrics alert delete --subscription {SUBSCRIPTION} -g rg-kv -n alert-{TOPIC}-deadlettered")),
        "{stdout}"
    );
    assert!(
        !stubs.calls("az").iter().any(|c| c.contains(" delete ")),
        "nothing deleted"
    );
}

/// The invocations `scripts/az_cli_check.py --list` finds in `scripts`, as (command, flags).
fn az_invocations(scripts: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    let output = Command::new("python3")
        .arg(repo_path("scripts/az_cli_check.py"))
        .arg("--list")
        .args(scripts)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let found: serde_json::Value = serde_json::from_str(line).expect("one JSON line");
            let words = |key: &str| -> Vec<String> {
                found[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            };
            (words("command").join(" "), words("flags"))
        })
        .collect()
}

#[test]
fn the_az_check_finds_every_invocation_however_the_shell_spells_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("sample.sh");
    fs::write(
        &script,
        r#"#!/usr/bin/env bash
tools=(az python3)
for tool in az cargo; do :; done
# az commented --out
host="$(az functionapp show -g "$rg" -n "$app" --query defaultHostName -o tsv)"
case "$p" in
  *.bicepparam) az bicep build-params --file "$p" --outfile "$o" >/dev/null ;;
esac
az deployment group create \
  --resource-group "$rg" \
  --parameters "x=$(date)" --output json
run az group delete --name "$rg" --yes
python3 - <<'PY'
print("az fake-command --nope")
PY
die "not signed in: run 'az login --tenant <tenant id>'"
if az monitor metrics alert show --subscription "$s" -n x 2>/dev/null | grep -q .; then :; fi
"#,
    )
    .expect("write sample");
    let found = az_invocations(&[script]);
    let flags = |list: &[&str]| list.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        vec![
            (
                "functionapp show".to_string(),
                flags(&["-g", "-n", "--query", "-o"])
            ),
            (
                "bicep build-params".to_string(),
                flags(&["--file", "--outfile"])
            ),
            (
                "deployment group create".to_string(),
                flags(&["--resource-group", "--parameters", "--output"])
            ),
            ("group delete".to_string(), flags(&["--name", "--yes"])),
            ("login".to_string(), flags(&["--tenant"])),
            (
                "monitor metrics alert show".to_string(),
                flags(&["--subscription", "-n"])
            ),
        ]
    );
}

#[test]
fn the_az_check_covers_the_calls_the_scripts_make() {
    let scripts: Vec<PathBuf> = ["deploy.sh", "smoke-test.sh", "uninstall.sh"]
        .iter()
        .map(|s| repo_path(&format!("scripts/{s}")))
        .collect();
    let found = az_invocations(&scripts);
    for (command, flag) in [
        ("functionapp deployment source config-zip", "--src"),
        ("functionapp function keys list", "--function-name"),
        ("monitor metrics alert delete", "--subscription"),
        ("eventgrid system-topic delete", "--yes"),
        ("deployment group create", "--template-file"),
        (
            "synapse role assignment create",
            "--assignee-principal-type",
        ),
    ] {
        assert!(
            found
                .iter()
                .any(|(c, flags)| c == command && flags.iter().any(|f| f == flag)),
            "az {command} {flag} is not among {found:#?}"
        );
    }
}
