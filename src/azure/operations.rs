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
    /// The RBAC action a role needs for this operation.
    pub action: &'static str,
    /// Whether ARM counts it against the write bucket.
    pub is_write: bool,
}

pub const LIST_FACTORIES: ArmOperation = ArmOperation {
    name: "listFactories",
    method: "GET",
    action: "Microsoft.DataFactory/factories/read",
    is_write: false,
};
pub const GET_FACTORY: ArmOperation = ArmOperation {
    name: "getFactory",
    method: "GET",
    action: "Microsoft.DataFactory/factories/read",
    is_write: false,
};
pub const LIST_LINKED_SERVICES: ArmOperation = ArmOperation {
    name: "listLinkedServices",
    method: "GET",
    action: "Microsoft.DataFactory/factories/linkedservices/read",
    is_write: false,
};
pub const GET_LINKED_SERVICE: ArmOperation = ArmOperation {
    name: "getLinkedService",
    method: "GET",
    action: "Microsoft.DataFactory/factories/linkedservices/read",
    is_write: false,
};
pub const PUT_LINKED_SERVICE: ArmOperation = ArmOperation {
    name: "putLinkedService",
    method: "PUT",
    action: "Microsoft.DataFactory/factories/linkedservices/write",
    is_write: true,
};
pub const LIST_CREDENTIALS: ArmOperation = ArmOperation {
    name: "listCredentials",
    method: "GET",
    action: "Microsoft.DataFactory/factories/credentials/read",
    is_write: false,
};
pub const GET_CREDENTIAL: ArmOperation = ArmOperation {
    name: "getCredential",
    method: "GET",
    action: "Microsoft.DataFactory/factories/credentials/read",
    is_write: false,
};
pub const PUT_CREDENTIAL: ArmOperation = ArmOperation {
    name: "putCredential",
    method: "PUT",
    action: "Microsoft.DataFactory/factories/credentials/write",
    is_write: true,
};
pub const TEST_CONNECTIVITY: ArmOperation = ArmOperation {
    name: "testConnectivity",
    method: "POST",
    action: "Microsoft.DataFactory/factories/testConnectivity/action",
    is_write: false,
};
pub const GET_INTEGRATION_RUNTIME_STATUS: ArmOperation = ArmOperation {
    name: "getIntegrationRuntimeStatus",
    method: "POST",
    action: "Microsoft.DataFactory/factories/integrationruntimes/getstatus/action",
    is_write: false,
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
];

/// The distinct RBAC actions of [`ALL`], sorted.
pub fn required_actions() -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = ALL.iter().map(|op| op.action).collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}
