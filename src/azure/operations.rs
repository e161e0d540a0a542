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
