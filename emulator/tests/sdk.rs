//! The real Azure SDK crates the product uses accept the emulator's answers: the managed-identity and
//! client-secret credentials, and Key Vault's challenge plus the versions pager.
//!
//! `ManagedIdentityCredential` reads `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` from the process environment,
//! so that part runs in a child process (this test binary again) started with `Emulator::env()`.

use std::sync::Arc;

use adf_emulator::{Options, demo_seed};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt as _;

const CHILD_MARKER: &str = "ADF_EMULATOR_SDK_CHILD";

fn transport(ca_file: &str) -> Transport {
    let pem = std::fs::read(ca_file).expect("CA file");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM")])
        .no_proxy()
        .build()
        .expect("reqwest client");
    Transport::new(Arc::new(client))
}

#[tokio::test]
async fn sdk_credentials_and_key_vault_pager_work() {
    let emu = adf_emulator::start(
        demo_seed(),
        Options {
            kv_page_size: 1,
            ..Options::default()
        },
    )
    .await
    .expect("emulator starts");

    // Managed identity + Key Vault, in a child process that has the emulator's environment.
    let output = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "managed_identity_child",
            "--include-ignored",
            "--nocapture",
        ])
        .envs(emu.env())
        .env(CHILD_MARKER, "1")
        .output()
        .await
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let log = emu.requests();
    let kv: Vec<_> = log.iter().filter(|r| r.host_kind == "keyvault").collect();
    assert_eq!(
        kv[0].status, 401,
        "the SDK's first request is the unauthenticated challenge"
    );
    assert!(!kv[0].had_bearer);
    assert_eq!(
        kv.iter().filter(|r| r.status == 200).count(),
        2,
        "two versions, one per page"
    );
    assert!(
        log.iter().any(|r| r.host_kind == "msi"
            && r.status == 200
            && r.query.contains("vault.azure.net"))
    );
    assert_eq!(emu.counters().secret_value_reads, 0);

    // Client secret credential against the Entra endpoint (authority host from the cloud configuration).
    let ca = emu.ca_file().to_string_lossy().into_owned();
    let mut custom = CustomConfiguration::default();
    custom.authority_host = emu.authority_host();
    let cloud = CloudConfiguration::from(custom);
    let options = || ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(transport(&ca)),
            cloud: Some(Arc::new(cloud.clone())),
            ..Default::default()
        },
    };
    let credential = ClientSecretCredential::new(
        &emu.tenant_id(),
        emu.client_id(),
        Secret::new(emu.client_secret()),
        Some(options()),
    )
    .expect("credential");
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("token from the Entra endpoint");
    assert!(
        emu.known_secrets()
            .contains(&token.token.secret().to_owned())
    );

    let wrong = ClientSecretCredential::new(
        &emu.tenant_id(),
        emu.client_id(),
        Secret::new("wrong-secret".to_owned()),
        Some(options()),
    )
    .expect("credential");
    let err = wrong
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect_err("a wrong secret is refused");
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
#[ignore = "runs inside sdk_credentials_and_key_vault_pager_work, in a child process"]
async fn managed_identity_child() {
    if std::env::var(CHILD_MARKER).is_err() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let ca = var("ADF_REFRESH_CA_FILE");
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: ClientOptions {
            transport: Some(transport(&ca)),
            ..Default::default()
        },
        ..Default::default()
    }))
    .expect("managed identity credential");
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("MI token");
    assert!(token.token.secret().starts_with("emu-"));

    let endpoint = var("ADF_REFRESH_KEYVAULT_ENDPOINT").replace("{vault}", "contoso-kv");
    let client = SecretClient::new(
        &endpoint,
        credential,
        Some(SecretClientOptions {
            client_options: ClientOptions {
                transport: Some(transport(&ca)),
                ..Default::default()
            },
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .expect("secret client");
    let mut pager = client
        .list_secret_properties_versions("sql-password", None)
        .expect("pager");
    let mut versions = Vec::new();
    while let Some(properties) = pager.try_next().await.expect("page") {
        let attributes = properties.attributes.expect("attributes");
        assert_eq!(attributes.enabled, Some(true));
        assert!(attributes.created.is_some());
        versions.push(properties.id.expect("id"));
    }
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(
        versions
            .iter()
            .all(|id| id.starts_with("https://contoso-kv.vault.azure.net/secrets/sql-password/"))
    );
}
