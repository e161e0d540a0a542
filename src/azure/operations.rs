//! Every Azure Resource Manager operation the product performs, in one place.
//!
//! The ARM client only sends requests described here, and the custom role in `infra/` is checked against
//! this list by a test, so the role grants exactly what the code does and nothing more.

/// The ADF management API version used for every ARM call.
pub const ADF_API_VERSION: &str = "2018-06-01";

/// One kind of ARM request: its HTTP method, its path below a factory (or a scope), and the RBAC action
/// that authorises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmOperation {
    pub name: &'static str,
    pub method: &'static str,
    /// The RBAC actions a role needs for this operation.
    pub actions: &'static [&'static str],
}

impl ArmOperation {
    /// ARM counts every method but GET against the subscription's write bucket.
    pub fn counts_as_write(&self) -> bool {
        self.method != "GET"
    }
    /// A write of an ADF entity, which ADF also limits per factory.
    pub fn is_entity_write(&self) -> bool {
        self.method == "PUT"
    }
}

pub const LIST_FACTORIES: ArmOperation = ArmOperation {
    name: "listFactories",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/read"],
};
pub const GET_FACTORY: ArmOperation = ArmOperation {
    name: "getFactory",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/read"],
};
pub const LIST_LINKED_SERVICES: ArmOperation = ArmOperation {
    name: "listLinkedServices",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/linkedservices/read"],
};
pub const GET_LINKED_SERVICE: ArmOperation = ArmOperation {
    name: "getLinkedService",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/linkedservices/read"],
};
pub const PUT_LINKED_SERVICE: ArmOperation = ArmOperation {
    name: "putLinkedService",
    method: "PUT",
    actions: &["Microsoft.DataFactory/factories/linkedservices/write"],
};
pub const LIST_CREDENTIALS: ArmOperation = ArmOperation {
    name: "listCredentials",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/credentials/read"],
};
pub const GET_CREDENTIAL: ArmOperation = ArmOperation {
    name: "getCredential",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/credentials/read"],
};
pub const PUT_CREDENTIAL: ArmOperation = ArmOperation {
    name: "putCredential",
    method: "PUT",
    actions: &["Microsoft.DataFactory/factories/credentials/write"],
};
pub const TEST_CONNECTIVITY: ArmOperation = ArmOperation {
    name: "testConnectivity",
    method: "POST",
    // Not in the provider's published operations; Microsoft documents these two as what "test connection"
    // needs, and a custom role may only name published operations.
    actions: &[
        "Microsoft.DataFactory/factories/getFeatureValue/read",
        "Microsoft.DataFactory/factories/getDataPlaneAccess/read",
    ],
};
pub const GET_INTEGRATION_RUNTIME_STATUS: ArmOperation = ArmOperation {
    name: "getIntegrationRuntimeStatus",
    method: "POST",
    actions: &["Microsoft.DataFactory/factories/integrationruntimes/getstatus/read"],
};

// Read only to tell what a broken linked service stops, for factories with a target that needs attention.
pub const LIST_DATASETS: ArmOperation = ArmOperation {
    name: "listDatasets",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/datasets/read"],
};
pub const LIST_PIPELINES: ArmOperation = ArmOperation {
    name: "listPipelines",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/pipelines/read"],
};
pub const LIST_DATA_FLOWS: ArmOperation = ArmOperation {
    name: "listDataFlows",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/dataflows/read"],
};
pub const LIST_TRIGGERS: ArmOperation = ArmOperation {
    name: "listTriggers",
    method: "GET",
    actions: &["Microsoft.DataFactory/factories/triggers/read"],
};

/// A factory's authoring collections, listed as `GET {factory}/{segment}?api-version=2018-06-01`
/// (2018-06-01 spec: `Datasets_ListByFactory`, `Pipelines_ListByFactory`, `DataFlows_ListByFactory`,
/// `Triggers_ListByFactory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactoryCollection {
    Datasets,
    Pipelines,
    DataFlows,
    Triggers,
}

impl FactoryCollection {
    pub fn segment(self) -> &'static str {
        match self {
            FactoryCollection::Datasets => "datasets",
            FactoryCollection::Pipelines => "pipelines",
            FactoryCollection::DataFlows => "dataflows",
            FactoryCollection::Triggers => "triggers",
        }
    }
    pub fn operation(self) -> ArmOperation {
        match self {
            FactoryCollection::Datasets => LIST_DATASETS,
            FactoryCollection::Pipelines => LIST_PIPELINES,
            FactoryCollection::DataFlows => LIST_DATA_FLOWS,
            FactoryCollection::Triggers => LIST_TRIGGERS,
        }
    }
}

/// The ARM api-version of `Microsoft.Synapse/workspaces` (reference/synapse-spec, workspace.json).
pub const SYNAPSE_WORKSPACES_API_VERSION: &str = "2021-06-01";

/// Lists the Synapse workspaces of a subscription or resource group (paged by `nextLink`), to find their
/// development endpoints (`properties.connectivityEndpoints.dev`). Linked services inside a workspace are
/// read and written through that endpoint with Synapse RBAC, not through ARM.
pub const LIST_SYNAPSE_WORKSPACES: ArmOperation = ArmOperation {
    name: "listSynapseWorkspaces",
    method: "GET",
    actions: &["Microsoft.Synapse/workspaces/read"],
};
pub const GET_SYNAPSE_WORKSPACE: ArmOperation = ArmOperation {
    name: "getSynapseWorkspace",
    method: "GET",
    actions: &["Microsoft.Synapse/workspaces/read"],
};

/// The api-version of `Microsoft.Web` reads: sites, slots and their Key Vault references (reference/appservice-spec,
/// WebApps.kv-references.extract.json, 2024-11-01).
pub const WEB_API_VERSION: &str = "2024-11-01";
/// The api-version of the Key Vault reference refresh, as the documentation gives it ("Use Key Vault references
/// as app settings", section "Understand rotation"); the call is in no REST spec.
pub const WEB_REFRESH_API_VERSION: &str = "2022-03-01";
/// The api-version of `Microsoft.ApiManagement` (reference/apim-spec, 2024-05-01, the latest stable).
pub const APIM_API_VERSION: &str = "2024-05-01";

/// Lists the web apps, function apps and Logic Apps Standard of a subscription or resource group
/// (`WebApps_List`, `WebApps_ListByResourceGroup`).
pub const LIST_SITES: ArmOperation = ArmOperation {
    name: "listSites",
    method: "GET",
    actions: &["Microsoft.Web/sites/Read"],
};
/// A site's deployment slots (`WebApps_ListSlots`).
pub const LIST_SLOTS: ArmOperation = ArmOperation {
    name: "listSlots",
    method: "GET",
    actions: &["Microsoft.Web/sites/slots/Read"],
};
/// The Key Vault references of a site's or slot's app settings or connection strings, metadata only
/// (`WebApps_GetAppSettingsKeyVaultReferences` and its three siblings). The action is presumed (no published
/// operation names `configreferences`): reading configuration is `config/Read`.
pub const LIST_KEY_VAULT_REFERENCES: ArmOperation = ArmOperation {
    name: "listKeyVaultReferences",
    method: "GET",
    actions: &[
        "Microsoft.Web/sites/config/Read",
        "Microsoft.Web/sites/slots/config/Read",
    ],
};
/// Forces App Service to resolve a site's or slot's Key Vault references now. Documented, in no spec, and no
/// RBAC action is published for it: `config/Write` is presumed (docs/deploy.md says what to grant if refused).
pub const REFRESH_KEY_VAULT_REFERENCES: ArmOperation = ArmOperation {
    name: "refreshKeyVaultReferences",
    method: "POST",
    actions: &[
        "Microsoft.Web/sites/config/Write",
        "Microsoft.Web/sites/slots/config/Write",
    ],
};
/// Lists the API Management services of a subscription or resource group (`ApiManagementService_List*`).
pub const LIST_API_MANAGEMENT_SERVICES: ArmOperation = ArmOperation {
    name: "listApiManagementServices",
    method: "GET",
    actions: &["Microsoft.ApiManagement/service/read"],
};
/// A service's named values, never their values (`NamedValue_ListByService`).
pub const LIST_NAMED_VALUES: ArmOperation = ArmOperation {
    name: "listNamedValues",
    method: "GET",
    actions: &["Microsoft.ApiManagement/service/namedValues/read"],
};
/// One named value, for its `keyVault.lastStatus` (`NamedValue_Get`), and the poll of a refresh in progress.
pub const GET_NAMED_VALUE: ArmOperation = ArmOperation {
    name: "getNamedValue",
    method: "GET",
    actions: &["Microsoft.ApiManagement/service/namedValues/read"],
};
/// Makes API Management fetch a Key Vault-backed named value again (`NamedValue_RefreshSecret`, long-running).
pub const REFRESH_NAMED_VALUE: ArmOperation = ArmOperation {
    name: "refreshNamedValueSecret",
    method: "POST",
    actions: &["Microsoft.ApiManagement/service/namedValues/refreshSecret/action"],
};

/// All of them: the source of truth for the least-privilege role.
pub const ALL: &[ArmOperation] = &[
    LIST_FACTORIES,
    GET_FACTORY,
    LIST_LINKED_SERVICES,
    GET_LINKED_SERVICE,
    PUT_LINKED_SERVICE,
    LIST_CREDENTIALS,
    GET_CREDENTIAL,
    PUT_CREDENTIAL,
    TEST_CONNECTIVITY,
    GET_INTEGRATION_RUNTIME_STATUS,
    LIST_DATASETS,
    LIST_PIPELINES,
    LIST_DATA_FLOWS,
    LIST_TRIGGERS,
    LIST_SYNAPSE_WORKSPACES,
    GET_SYNAPSE_WORKSPACE,
    LIST_SITES,
    LIST_SLOTS,
    LIST_KEY_VAULT_REFERENCES,
    REFRESH_KEY_VAULT_REFERENCES,
    LIST_API_MANAGEMENT_SERVICES,
    LIST_NAMED_VALUES,
    GET_NAMED_VALUE,
    REFRESH_NAMED_VALUE,
];

/// The distinct RBAC actions of [`ALL`], sorted.
pub fn required_actions() -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = ALL
        .iter()
        .flat_map(|op| op.actions.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}
