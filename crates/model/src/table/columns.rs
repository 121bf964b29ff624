//! The column definitions of every served resource, as `printers.go` `AddHandlers` declares them
//! (names, types, priorities, descriptions) and as MetalLB's CRDs declare their
//! `additionalPrinterColumns`.

use super::descriptions as d;
use crate::registry::ResourceInfo;
use serde_json::{json, Value};

/// One `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// `name` for the object name column, otherwise empty.
    pub format: &'static str,
    pub description: String,
    /// 0: always shown; > 0: only with `kubectl get -o wide`.
    pub priority: i64,
}

impl Column {
    fn new(name: &'static str, description: &str) -> Self {
        Column {
            name,
            type_: "string",
            format: "",
            description: description.to_string(),
            priority: 0,
        }
    }

    fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    fn typed(mut self, type_: &'static str) -> Self {
        self.type_ = type_;
        self
    }

    fn name_column() -> Self {
        Column {
            format: "name",
            ..Column::new("Name", d::OBJECT_META_NAME)
        }
    }

    fn age() -> Self {
        Column::new("Age", d::OBJECT_META_CREATION_TIMESTAMP)
    }

    /// The JSON kube-apiserver sends (Go field order, no field omitted).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A custom resource column: `additionalPrinterColumns` entry of the CRD.
pub(super) struct CrColumn {
    pub name: &'static str,
    pub type_: &'static str,
    pub json_path: &'static str,
    pub priority: i64,
}

/// MetalLB `IPAddressPool` (metallb.io/v1beta1; config/crd/bases/metallb.io_ipaddresspools.yaml).
/// Like every CRD with its own columns, it has no AGE column.
pub(super) const IP_ADDRESS_POOL_COLUMNS: &[CrColumn] = &[
    CrColumn {
        name: "Auto Assign",
        type_: "boolean",
        json_path: ".spec.autoAssign",
        priority: 0,
    },
    CrColumn {
        name: "Avoid Buggy IPs",
        type_: "boolean",
        json_path: ".spec.avoidBuggyIPs",
        priority: 0,
    },
    CrColumn {
        name: "Addresses",
        type_: "string",
        json_path: ".spec.addresses",
        priority: 0,
    },
];

/// MetalLB `L2Advertisement` (metallb.io/v1beta1; config/crd/bases/metallb.io_l2advertisements.yaml).
pub(super) const L2_ADVERTISEMENT_COLUMNS: &[CrColumn] = &[
    CrColumn {
        name: "IPAddressPools",
        type_: "string",
        json_path: ".spec.ipAddressPools",
        priority: 0,
    },
    CrColumn {
        name: "IPAddressPool Selectors",
        type_: "string",
        json_path: ".spec.ipAddressPoolSelectors",
        priority: 0,
    },
    CrColumn {
        name: "Interfaces",
        type_: "string",
        json_path: ".spec.interfaces",
        priority: 0,
    },
    CrColumn {
        name: "Node Selectors",
        type_: "string",
        json_path: ".spec.nodeSelectors",
        priority: 10,
    },
];

/// The printer columns of a custom resource, if `res` is one.
pub(super) fn custom_columns(res: &ResourceInfo) -> Option<&'static [CrColumn]> {
    match (res.group, res.kind) {
        ("metallb.io", "IPAddressPool") => Some(IP_ADDRESS_POOL_COLUMNS),
        ("metallb.io", "L2Advertisement") => Some(L2_ADVERTISEMENT_COLUMNS),
        _ => None,
    }
}

/// The columns of a resource's Table.
pub fn columns(res: &ResourceInfo) -> Vec<Column> {
    if let Some(cr) = custom_columns(res) {
        let mut cols = vec![Column::name_column()];
        cols.extend(cr.iter().map(|c| Column {
            name: c.name,
            type_: c.type_,
            format: "",
            description: format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            ),
            priority: c.priority,
        }));
        return cols;
    }
    match (res.group, res.kind) {
        ("", "Pod") => vec![
            Column::name_column(),
            Column::new("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            Column::new("Status", "The aggregate status of the containers in this pod."),
            Column::new(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            Column::age(),
            Column::new("IP", d::POD_STATUS_POD_IP).wide(),
            Column::new("Node", d::POD_SPEC_NODE_NAME).wide(),
            Column::new("Nominated Node", d::POD_STATUS_NOMINATED_NODE_NAME).wide(),
            Column::new("Readiness Gates", d::POD_SPEC_READINESS_GATES).wide(),
        ],
        ("", "Service") => vec![
            Column::name_column(),
            Column::new("Type", d::SERVICE_SPEC_TYPE),
            Column::new("Cluster-IP", d::SERVICE_SPEC_CLUSTER_IP),
            Column::new("External-IP", d::SERVICE_SPEC_EXTERNAL_IPS),
            Column::new("Port(s)", d::SERVICE_SPEC_PORTS),
            Column::age(),
            Column::new("Selector", d::SERVICE_SPEC_SELECTOR).wide(),
        ],
        ("", "Endpoints") => {
            vec![Column::name_column(), Column::new("Endpoints", d::ENDPOINTS_SUBSETS), Column::age()]
        }
        ("", "Node") => vec![
            Column::name_column(),
            Column::new("Status", "The status of the node"),
            Column::new("Roles", "The roles of the node"),
            Column::age(),
            Column::new("Version", d::NODE_INFO_KUBELET_VERSION),
            Column::new("Internal-IP", d::NODE_STATUS_ADDRESSES).wide(),
            Column::new("External-IP", d::NODE_STATUS_ADDRESSES).wide(),
            Column::new("OS-Image", d::NODE_INFO_OS_IMAGE).wide(),
            Column::new("Kernel-Version", d::NODE_INFO_KERNEL_VERSION).wide(),
            Column::new("Container-Runtime", d::NODE_INFO_CONTAINER_RUNTIME_VERSION).wide(),
        ],
        ("", "Event") => vec![
            Column::new("Last Seen", d::EVENT_LAST_TIMESTAMP),
            Column::new("Type", d::EVENT_TYPE),
            Column::new("Reason", d::EVENT_REASON),
            Column::new("Object", d::EVENT_INVOLVED_OBJECT),
            Column::new("Subobject", d::OBJECT_REFERENCE_FIELD_PATH).wide(),
            Column::new("Source", d::EVENT_SOURCE).wide(),
            Column::new("Message", d::EVENT_MESSAGE),
            Column::new("First Seen", d::EVENT_FIRST_TIMESTAMP).wide(),
            Column::new("Count", d::EVENT_COUNT).wide(),
            Column { format: "name", ..Column::new("Name", d::OBJECT_META_NAME).wide() },
        ],
        ("", "Namespace") => {
            vec![Column::name_column(), Column::new("Status", "The status of the namespace"), Column::age()]
        }
        ("", "Secret") => vec![
            Column::name_column(),
            Column::new("Type", d::SECRET_TYPE),
            Column::new("Data", d::SECRET_DATA),
            Column::age(),
        ],
        ("", "ConfigMap") => vec![Column::name_column(), Column::new("Data", d::CONFIG_MAP_DATA), Column::age()],
        ("", "ServiceAccount") => vec![Column::name_column(), Column::new("Secrets", d::SERVICE_ACCOUNT_SECRETS), Column::age()],
        ("coordination.k8s.io", "Lease") => {
            vec![Column::name_column(), Column::new("Holder", d::LEASE_SPEC_HOLDER_IDENTITY), Column::age()]
        }
        ("discovery.k8s.io", "EndpointSlice") => vec![
            Column::name_column(),
            Column::new("AddressType", d::ENDPOINT_SLICE_ADDRESS_TYPE),
            Column::new("Ports", d::ENDPOINT_SLICE_PORTS),
            Column::new("Endpoints", d::ENDPOINT_SLICE_ENDPOINTS),
            Column::age(),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            Column::name_column(),
            Column::new("Class", "The name of the IngressClass resource that should be used for additional configuration"),
            Column::new("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
            Column::new("Address", "Address is a list containing ingress points for the load-balancer"),
            Column::new("Ports", "Ports of TLS configurations that open"),
            Column::age(),
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            Column::name_column(),
            Column::new("Controller", "Controller that is responsible for handling this class"),
            Column::new("Parameters", "A reference to a resource with additional parameters"),
            Column::age(),
        ],
        ("networking.k8s.io", "IPAddress") => vec![Column::name_column(), Column::new("ParentRef", d::IP_ADDRESS_SPEC_PARENT_REF)],
        ("networking.k8s.io", "ServiceCIDR") => {
            vec![Column::name_column(), Column::new("CIDRs", d::SERVICE_CIDR_SPEC_CIDRS), Column::age()]
        }
        // kube-apiserver's default table for kinds without a printer.
        _ => vec![Column::name_column(), Column::new("Created At", d::OBJECT_META_CREATION_TIMESTAMP).typed("date")],
    }
}
