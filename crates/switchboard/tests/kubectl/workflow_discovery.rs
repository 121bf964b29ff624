//! What kubectl learns from discovery and OpenAPI: api-resources, api-versions, explain.

use crate::{assert_output, Cluster};

#[test]
fn api_resources_lists_every_served_resource() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl("api-resources"),
        0,
        "NAME               SHORTNAMES   APIVERSION               NAMESPACED   KIND
configmaps         cm           v1                       true         ConfigMap
endpoints          ep           v1                       true         Endpoints
events             ev           v1                       true         Event
namespaces         ns           v1                       false        Namespace
nodes              no           v1                       false        Node
pods               po           v1                       true         Pod
secrets                         v1                       true         Secret
serviceaccounts    sa           v1                       true         ServiceAccount
services           svc          v1                       true         Service
leases                          coordination.k8s.io/v1   true         Lease
endpointslices                  discovery.k8s.io/v1      true         EndpointSlice
ipaddresspools                  metallb.io/v1beta1       true         IPAddressPool
l2advertisements                metallb.io/v1beta1       true         L2Advertisement
ingressclasses                  networking.k8s.io/v1     false        IngressClass
ingresses          ing          networking.k8s.io/v1     true         Ingress
ipaddresses        ip           networking.k8s.io/v1     false        IPAddress
servicecidrs                    networking.k8s.io/v1     false        ServiceCIDR
",
    );
    assert_output(
        &c.kubectl("api-resources --namespaced=false -o name"),
        0,
        "namespaces\nnodes\ningressclasses.networking.k8s.io\nipaddresses.networking.k8s.io\nservicecidrs.networking.k8s.io\n",
    );
    // Every resource kubectl lists can be listed.
    let listed = c.sh(
        "for r in $(kubectl api-resources --verbs=list -o name); do \
           kubectl get \"$r\" -A -o name >/dev/null 2>./err || { echo \"cannot list $r:\"; cat ./err; }; \
         done; echo done",
    );
    assert_output(&listed, 0, "done\n");
    // Short names resolve.
    assert_output(
        &c.kubectl("get ns default -o name"),
        0,
        "namespace/default\n",
    );
    assert_output(
        &c.kubectl("get svc,cm,ev,po,ing -n kube-public"),
        0,
        "No resources found in kube-public namespace.\n",
    );
}

#[test]
fn api_versions_lists_every_served_group_version() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl("api-versions"),
        0,
        "coordination.k8s.io/v1\ndiscovery.k8s.io/v1\nmetallb.io/v1beta1\nnetworking.k8s.io/v1\nv1\n",
    );
}

#[test]
fn explain_reads_the_openapi_schemas() {
    let c = Cluster::start();
    let ports = c.kubectl("explain service.spec.ports");
    let text = ports.ok();
    for line in [
        "KIND:       Service\n",
        "VERSION:    v1\n",
        "FIELD: ports <[]ServicePort>\n",
        "DESCRIPTION:\n",
        "FIELDS:\n",
        "  appProtocol\t<string>\n",
        "  name\t<string>\n",
        "  nodePort\t<integer>\n",
        "  port\t<integer> -required-\n",
        "  protocol\t<string>\n",
        "  targetPort\t<IntOrString>\n",
    ] {
        assert!(
            text.contains(line),
            "explain service.spec.ports lacks {line:?}:\n{text}"
        );
    }
    let pools = c.kubectl("explain ipaddresspools.spec --api-version=metallb.io/v1beta1");
    let text = pools.ok();
    for line in [
        "GROUP:      metallb.io\nKIND:       IPAddressPool\nVERSION:    v1beta1\n",
        "FIELD: spec <Object>\n",
        "  addresses\t<[]string> -required-\n",
        "  autoAssign\t<boolean>\n",
    ] {
        assert!(
            text.contains(line),
            "explain ipaddresspools.spec lacks {line:?}:\n{text}"
        );
    }
    assert_output(
        &c.kubectl("explain frobnicators"),
        1,
        "the server doesn't have a resource type \"frobnicators\"\n",
    );
}
