"""Microsoft's Python SDKs against adf-emulator (`--seed demo --page-size 2 --kv-page-size 1`).

Each test drives one route the product uses the way the SDK does, and asserts what the SDK hands its
caller plus what reached the emulator (its request log). A failure here means the emulator answers
differently from Azure in a way a real client notices."""

import time

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest

from conftest import ARM_SCOPE

SUB_A = "1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f"
SUB_B = "9d4e6f8a-0b1c-4d2e-8f3a-5b6c7d8e9f01"
RG = "rg-data-prod"
SALES = "adf-sales-prod"
FINANCE = "adf-finance-prod"
PLATFORM_RG = "rg-platform-shared"
PLATFORM = "adf-platform-shared"
KV_AUDIENCE_SCOPE = "https://vault.azure.net/.default"


def arm_calls(emulator, method=None):
    return [
        r
        for r in emulator.requests()
        if r["host_kind"] == "arm" and (method is None or r["method"] == method)
    ]


# ---- tokens (azure-identity) -------------------------------------------------------------------


def test_managed_identity_token(emulator, managed_identity):
    token = managed_identity.get_token(ARM_SCOPE)
    assert token.token and token.expires_on > time.time()
    msi = [r for r in emulator.requests() if r["host_kind"] == "msi"]
    assert msi and msi[-1]["status"] == 200
    assert "resource=https" in msi[-1]["query"]


def test_client_secret_token(emulator, client_secret):
    token = client_secret.get_token(ARM_SCOPE)
    assert token.token and token.expires_on > time.time()
    entra = [r for r in emulator.requests() if r["host_kind"] == "entra"]
    assert entra and entra[-1]["method"] == "POST" and entra[-1]["status"] == 200


def test_client_secret_token_reaches_arm(adf_factory, emulator, client_secret):
    from azure.mgmt.datafactory import DataFactoryManagementClient

    client = DataFactoryManagementClient(
        client_secret, SUB_A, base_url=emulator.https_url, credential_scopes=[ARM_SCOPE]
    )
    assert client.factories.get(RG, SALES).name == SALES


# ---- factories ---------------------------------------------------------------------------------


def test_factories_list_by_subscription_follows_next_link(adf_factory, emulator):
    names = sorted(f.name for f in adf_factory(SUB_A).factories.list())
    assert names == sorted(["adf-sales-prod", "adf-finance-prod", "adf-hr-prod", "adf-marketing-git"])
    gets = arm_calls(emulator, "GET")
    assert len(gets) == 2, "two pages of two"
    assert "skiptoken" in gets[1]["query"].lower()
    assert "api-version=2018-06-01" in gets[1]["query"]


def test_factories_list_by_resource_group(adf_factory):
    names = sorted(f.name for f in adf_factory(SUB_A).factories.list_by_resource_group(RG))
    assert names == ["adf-finance-prod", "adf-hr-prod", "adf-sales-prod"]


def test_factory_get(adf_factory):
    factory = adf_factory(SUB_A).factories.get(RG, SALES)
    assert factory.name == SALES
    assert factory.id.lower().endswith(f"/factories/{SALES}")
    assert factory.identity is not None and factory.identity.principal_id


def test_factory_missing_is_404(adf_factory):
    with pytest.raises(ResourceNotFoundError):
        adf_factory(SUB_A).factories.get(RG, "no-such-factory")


# ---- linked services ---------------------------------------------------------------------------


def test_linked_services_paged_list(adf_factory, emulator):
    names = [ls.name for ls in adf_factory(SUB_A).linked_services.list_by_factory(RG, SALES)]
    assert len(names) == 10 and "ls_sql_sales" in names
    assert len(arm_calls(emulator, "GET")) == 5, "five pages of two, through nextLink"


def test_linked_service_get(adf_factory):
    ls = adf_factory(SUB_A).linked_services.get(RG, SALES, "ls_sql_sales")
    assert ls.name == "ls_sql_sales" and ls.etag
    assert ls.properties.type


def test_linked_service_missing_is_404(adf_factory):
    with pytest.raises(ResourceNotFoundError):
        adf_factory(SUB_A).linked_services.get(RG, SALES, "ls_does_not_exist")


def test_create_or_update_with_quoted_if_match(adf_factory, emulator):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    saved = client.linked_services.create_or_update(
        RG, SALES, "ls_sql_sales", ls, etag=ls.etag, match_condition=MatchConditions.IfNotModified
    )
    assert saved.etag and saved.etag != ls.etag
    put = arm_calls(emulator, "PUT")[-1]
    assert put["if_match"] == f'"{ls.etag}"', "the SDK quotes the etag (RFC 9110)"
    assert put["status"] == 200
    assert set(put["body"]) == {"properties"}, "the SDK sends only the writable part"


def test_create_or_update_with_bare_if_match(adf_factory, emulator):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    client.linked_services.create_or_update(
        RG, SALES, "ls_sql_sales", ls, headers={"If-Match": ls.etag}
    )
    assert arm_calls(emulator, "PUT")[-1]["if_match"] == ls.etag


def test_create_or_update_with_star(adf_factory, emulator):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    client.linked_services.create_or_update(
        RG, SALES, "ls_sql_sales", ls, match_condition=MatchConditions.IfPresent
    )
    assert arm_calls(emulator, "PUT")[-1]["if_match"] == "*"


@pytest.mark.parametrize("form", ["quoted", "bare"])
def test_create_or_update_with_stale_etag_is_412(adf_factory, emulator, form):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    client.linked_services.create_or_update(
        RG, SALES, "ls_sql_sales", ls, etag=ls.etag, match_condition=MatchConditions.IfNotModified
    )
    kwargs = (
        {"etag": ls.etag, "match_condition": MatchConditions.IfNotModified}
        if form == "quoted"
        else {"headers": {"If-Match": ls.etag}}
    )
    with pytest.raises(HttpResponseError) as raised:
        client.linked_services.create_or_update(RG, SALES, "ls_sql_sales", ls, **kwargs)
    assert raised.value.status_code == 412
    assert raised.value.error is not None and raised.value.error.code == "PreconditionFailed"


def test_create_or_update_with_weak_etag_is_412(adf_factory):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    with pytest.raises(HttpResponseError) as raised:
        client.linked_services.create_or_update(
            RG, SALES, "ls_sql_sales", ls, etag=f'W/"{ls.etag}"', match_condition=MatchConditions.IfNotModified
        )
    assert raised.value.status_code == 412


def test_create_or_update_missing_with_star_is_412(adf_factory):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    with pytest.raises(HttpResponseError) as raised:
        client.linked_services.create_or_update(
            RG, SALES, "ls_never_created", ls, match_condition=MatchConditions.IfPresent
        )
    assert raised.value.status_code == 412


# ---- credentials -------------------------------------------------------------------------------


def test_credentials_list_and_get(adf_factory):
    client = adf_factory(SUB_A)
    names = sorted(c.name for c in client.credential_operations.list_by_factory(RG, FINANCE))
    assert names == ["cred_sp_finance", "cred_uami_finance"]
    credential = client.credential_operations.get(RG, FINANCE, "cred_sp_finance")
    assert credential.name == "cred_sp_finance" and credential.etag
    assert credential.properties.type


def test_credential_create_or_update_with_etag(adf_factory, emulator):
    client = adf_factory(SUB_A)
    credential = client.credential_operations.get(RG, FINANCE, "cred_sp_finance")
    saved = client.credential_operations.create_or_update(
        RG, FINANCE, "cred_sp_finance", credential, etag=credential.etag,
        match_condition=MatchConditions.IfNotModified,
    )
    assert saved.etag != credential.etag
    put = arm_calls(emulator, "PUT")[-1]
    assert put["status"] == 200 and put["if_match"] == f'"{credential.etag}"'
    with pytest.raises(HttpResponseError) as raised:
        client.credential_operations.create_or_update(
            RG, FINANCE, "cred_sp_finance", credential, etag=credential.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    assert raised.value.status_code == 412


def test_create_or_update_in_a_missing_factory_is_404(adf_factory):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    with pytest.raises(ResourceNotFoundError):
        client.linked_services.create_or_update(RG, "no-such-factory", "ls_sql_sales", ls)


# ---- integration runtimes ----------------------------------------------------------------------


def test_integration_runtimes_list(adf_factory):
    names = sorted(
        ir.name for ir in adf_factory(SUB_B).integration_runtimes.list_by_factory(PLATFORM_RG, PLATFORM)
    )
    assert names == ["mvnet-ir", "shir-dmz", "shir-onprem"]


def test_integration_runtime_get(adf_factory):
    ir = adf_factory(SUB_B).integration_runtimes.get(PLATFORM_RG, PLATFORM, "shir-onprem")
    assert ir.name == "shir-onprem" and ir.properties.type == "SelfHosted"


def test_integration_runtime_get_status(adf_factory):
    status = adf_factory(SUB_B).integration_runtimes.get_status(PLATFORM_RG, PLATFORM, "shir-onprem")
    assert status.name == "shir-onprem"
    assert status.properties.type == "SelfHosted"
    assert status.properties.state
    nodes = status.properties.as_dict().get("typeProperties", {}).get("nodes")
    if nodes is None:
        nodes = getattr(status.properties, "nodes", None)
    assert nodes, "a self-hosted IR's status lists its nodes"


def test_integration_runtime_missing_is_404(adf_factory):
    with pytest.raises(ResourceNotFoundError):
        adf_factory(SUB_B).integration_runtimes.get(PLATFORM_RG, PLATFORM, "no-such-ir")


# ---- testConnectivity (no SDK method: the same client's pipeline) --------------------------------


def test_test_connectivity_through_the_sdk_pipeline(adf_factory, emulator):
    client = adf_factory(SUB_A)
    ls = client.linked_services.get(RG, SALES, "ls_sql_sales")
    request = HttpRequest(
        "POST",
        f"{emulator.https_url}/subscriptions/{SUB_A}/resourceGroups/{RG}/providers/Microsoft.DataFactory"
        f"/factories/{SALES}/testConnectivity",
        params={"api-version": "2018-06-01"},
        json={"linkedService": {"name": ls.name, "properties": ls.properties.as_dict()}},
    )
    response = client._client.send_request(request)
    assert response.status_code == 200, response.text()
    body = response.json()
    assert "succeeded" in body
    post = arm_calls(emulator, "POST")[-1]
    assert post["had_bearer"], "the client's own pipeline authorised the request"


# ---- 429 and Retry-After -----------------------------------------------------------------------


def test_429_retry_after_is_honoured_by_the_sdk_retry_policy(adf_factory, emulator):
    client = adf_factory(SUB_A)
    # The first ARM request after this is answered, the second gets 429 with Retry-After: 1.
    emulator.set_faults({"burst429": {"every": 1, "length": 1, "retryAfterSecs": 1}})
    client.factories.get(RG, SALES)
    started = time.monotonic()
    assert client.factories.get(RG, SALES).name == SALES
    waited = time.monotonic() - started
    calls = arm_calls(emulator)
    assert [c["status"] for c in calls[-2:]] == [429, 200]
    assert calls[-1]["at_ms"] - calls[-2]["at_ms"] >= 1000, "the retry waited Retry-After"
    assert waited >= 1.0


# ---- Key Vault ---------------------------------------------------------------------------------


def is_canonical(secret_id, vault, name):
    return secret_id.startswith(f"https://{vault}.vault.azure.net/secrets/{name}")


def test_key_vault_challenge_flow(secret_client, emulator):
    list(secret_client("contoso-kv").list_properties_of_secret_versions("sql-password"))
    kv = [r for r in emulator.requests() if r["host_kind"] == "keyvault"]
    assert kv[0]["status"] == 401 and not kv[0]["had_bearer"], "the SDK first asks without a token"
    assert all(r["status"] == 200 and r["had_bearer"] for r in kv[1:])
    msi = [r for r in emulator.requests() if r["host_kind"] == "msi"]
    assert any("vault.azure.net" in r["query"] for r in msi), "the token was for the challenge's resource"


def test_key_vault_list_secrets(secret_client, emulator):
    secrets = list(secret_client("contoso-kv").list_properties_of_secrets())
    assert sorted(s.name for s in secrets) == ["sp-client-secret", "sql-password"]
    for s in secrets:
        assert is_canonical(s.id, "contoso-kv", s.name), s.id
        assert s.vault_url == "https://contoso-kv.vault.azure.net"
    pages = [r for r in emulator.requests() if r["host_kind"] == "keyvault" and r["status"] == 200]
    assert len(pages) == 2, "one secret per page, through nextLink"


def test_key_vault_list_versions(secret_client, emulator):
    versions = list(secret_client("contoso-kv").list_properties_of_secret_versions("sql-password"))
    assert len(versions) == 2
    for v in versions:
        assert v.name == "sql-password" and v.version
        assert is_canonical(v.id, "contoso-kv", "sql-password"), v.id
        assert v.id.endswith(f"/{v.version}")
        assert v.enabled is not None and v.created_on is not None
    assert emulator.control("GET", "counters")["secret_value_reads"] == 0


def test_key_vault_get_secret_properties(secret_client):
    client = secret_client("contoso-kv")
    version = next(iter(client.list_properties_of_secret_versions("sql-password"))).version
    secret = client.get_secret("sql-password", version)
    assert secret.properties.version == version
    assert secret.properties.vault_url == "https://contoso-kv.vault.azure.net"
    assert secret.id == f"https://contoso-kv.vault.azure.net/secrets/sql-password/{version}"


def test_key_vault_missing_secret_is_404(secret_client):
    client = secret_client("contoso-kv")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("no-such-secret")
    with pytest.raises(ResourceNotFoundError):
        list(client.list_properties_of_secret_versions("no-such-secret"))
