"""Fixtures for the SDK conformance suite: a running adf-emulator (started by run.sh, which passes its
ready file in ADF_EMULATOR_READY), Microsoft's credentials and clients pointed at it, and the emulator's
control API (request log, faults)."""

import json
import os
import urllib.request

import pytest
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.datafactory import DataFactoryManagementClient

ARM_SCOPE = "https://management.azure.com/.default"


class Emulator:
    """The running emulator as the suite sees it: its URLs, its seed's identities, and the control API."""

    def __init__(self, ready):
        self.https_url = ready["httpsUrl"]
        self.http_url = ready["httpUrl"]
        self.ca_file = ready["caFile"]
        self.env = ready["env"]
        self.info = self.control("GET", "info")

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.http_url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def requests(self):
        return self.control("GET", "requests")

    def clear_requests(self):
        self.control("DELETE", "requests")

    def set_faults(self, faults):
        self.control("PUT", "faults", faults)


@pytest.fixture(scope="session")
def emulator():
    path = os.environ.get("ADF_EMULATOR_READY")
    if not path:
        pytest.exit("ADF_EMULATOR_READY must name the emulator's ready file (run.sh sets it)", returncode=2)
    with open(path, encoding="utf-8") as ready:
        emu = Emulator(json.load(ready))
    # The SDKs' transports (requests) trust this CA through REQUESTS_CA_BUNDLE; run.sh sets it, and
    # the suite sets it too so it can also be run by hand.
    os.environ.setdefault("REQUESTS_CA_BUNDLE", emu.ca_file)
    os.environ.setdefault("SSL_CERT_FILE", emu.ca_file)
    return emu


@pytest.fixture(autouse=True)
def clean_emulator(emulator):
    """Every test starts with no faults and an empty request log."""
    emulator.set_faults({})
    emulator.clear_requests()
    yield
    emulator.set_faults({})


@pytest.fixture(scope="session")
def managed_identity(emulator, monkeypatch_session):
    """azure-identity's ManagedIdentityCredential, App Service flavour (IDENTITY_ENDPOINT/IDENTITY_HEADER)."""
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch_session.delenv(name, raising=False)
    monkeypatch_session.setenv("IDENTITY_ENDPOINT", emulator.env["IDENTITY_ENDPOINT"])
    monkeypatch_session.setenv("IDENTITY_HEADER", emulator.env["IDENTITY_HEADER"])
    return ManagedIdentityCredential()


@pytest.fixture(scope="session")
def client_secret(emulator):
    """azure-identity's ClientSecretCredential against the emulator's Entra endpoint (the authority host)."""
    return ClientSecretCredential(
        emulator.info["tenantId"],
        emulator.info["clientId"],
        emulator.info["clientSecret"],
        authority=emulator.https_url,
        # Instance discovery asks login.microsoftonline.com whether the authority is known; the
        # emulator is not, and the suite must not leave the machine.
        disable_instance_discovery=True,
    )


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="session")
def adf_factory(emulator, managed_identity):
    """A DataFactoryManagementClient for one subscription of the demo estate."""

    def make(subscription_id, **kwargs):
        return DataFactoryManagementClient(
            managed_identity,
            subscription_id,
            base_url=emulator.https_url,
            credential_scopes=[ARM_SCOPE],
            **kwargs,
        )

    return make


@pytest.fixture(scope="session")
def secret_client(emulator, managed_identity):
    def make(vault):
        return SecretClient(
            vault_url=f"{emulator.https_url}/kv/{vault}",
            credential=managed_identity,
            # The SDK checks that the challenge's resource (https://vault.azure.net) is a parent domain of
            # the vault URL's host; the emulator's host is 127.0.0.1. A documented SecretClient option.
            verify_challenge_resource=False,
        )

    return make
