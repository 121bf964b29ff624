//! The Service manifests of the seed notes, applied with kubectl as the notes do and read back:
//! 001's ClusterIP (`clusterIP: ""`), NodePort 30080, ExternalName alias and LoadBalancer, the
//! headless variant its comment names (`clusterIP: None`), and 002's "fake LB" Services with
//! externalIPs. Each is applied, applied again (unchanged), listed with `-o wide` and read back
//! as YAML: the manifest's fields as written, plus kube-apiserver's defaults and allocations.
//! Like the notes' local cluster, the server runs no LoadBalancer controller (`<pending>`).

use crate::{assert_output, Cluster};

struct Seed {
    name: &'static str,
    /// The `metadata`-less rest of the manifest, from `spec:` on.
    spec: &'static str,
    /// What `kubectl apply` prints first time (warnings included).
    applied: &'static str,
    /// Whether applying it again sends a patch: kubectl's three-way merge sees the manifest's
    /// `clusterIP: ""` differ from the live address and sends it; the server keeps the address.
    reapply_patches: bool,
    /// `kubectl get svc NAME -o wide`, allocated NodePorts written as `<NODEPORT>`.
    wide: &'static str,
    /// `kubectl get svc NAME -o yaml`'s `spec:` block, the same way.
    spec_yaml: &'static str,
}

const SEEDS: &[Seed] = &[
    Seed {
        name: "nginx-service",
        spec: "spec:
  type: ClusterIP
  clusterIP: \"\"
  selector:
    app: nginx
  ports:
    - name: nginx-port
      protocol: TCP
      port: 80
      targetPort: 80
",
        applied: "service/nginx-service created\n",
        reapply_patches: true,
        wide: "NAME            TYPE        CLUSTER-IP    EXTERNAL-IP   PORT(S)   AGE   SELECTOR
nginx-service   ClusterIP   10.43.12.34   <none>        80/TCP    0s    app=nginx
",
        spec_yaml: "spec:
  clusterIP: 10.43.12.34
  clusterIPs:
  - 10.43.12.34
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: nginx-port
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: ClusterIP
",
    },
    Seed {
        name: "nginx-np",
        spec: "spec:
  type: NodePort
  selector:
    app: nginx
  ports:
    - name: nginx-port
      protocol: TCP
      port: 80
      targetPort: 80
      nodePort: 30080
",
        applied: "service/nginx-np created\n",
        reapply_patches: false,
        wide: "NAME       TYPE       CLUSTER-IP    EXTERNAL-IP   PORT(S)        AGE   SELECTOR
nginx-np   NodePort   10.43.12.34   <none>        80:30080/TCP   0s    app=nginx
",
        spec_yaml: "spec:
  clusterIP: 10.43.12.34
  clusterIPs:
  - 10.43.12.34
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: nginx-port
    nodePort: 30080
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: NodePort
",
    },
    Seed {
        name: "nginx-alias",
        spec: "spec:
  type: ExternalName
  externalName: nginx-service.ns2.svc.cluster.local
",
        applied: "service/nginx-alias created\n",
        reapply_patches: false,
        wide: "NAME          TYPE           CLUSTER-IP   EXTERNAL-IP                           PORT(S)   AGE   SELECTOR
nginx-alias   ExternalName   <none>       nginx-service.ns2.svc.cluster.local   <none>    0s    <none>
",
        spec_yaml: "spec:
  externalName: nginx-service.ns2.svc.cluster.local
  sessionAffinity: None
  type: ExternalName
",
    },
    Seed {
        name: "nginx-lb",
        spec: "spec:
  type: LoadBalancer
  selector:
    app: nginx
  ports:
    - port: 80
      targetPort: 80
",
        applied: "service/nginx-lb created\n",
        reapply_patches: false,
        wide: "NAME       TYPE           CLUSTER-IP    EXTERNAL-IP   PORT(S)             AGE   SELECTOR
nginx-lb   LoadBalancer   10.43.12.34   <pending>     80:<NODEPORT>/TCP   0s    app=nginx
",
        spec_yaml: "spec:
  allocateLoadBalancerNodePorts: true
  clusterIP: 10.43.12.34
  clusterIPs:
  - 10.43.12.34
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - nodePort: <NODEPORT>
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: LoadBalancer
",
    },
    Seed {
        name: "nginx-headless",
        spec: "spec:
  clusterIP: None
  selector:
    app: nginx
  ports:
    - name: nginx-port
      port: 80
      targetPort: 80
",
        applied: "service/nginx-headless created\n",
        reapply_patches: false,
        wide: "NAME             TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR
nginx-headless   ClusterIP   None         <none>        80/TCP    0s    app=nginx
",
        spec_yaml: "spec:
  clusterIP: None
  clusterIPs:
  - None
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: nginx-port
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: ClusterIP
",
    },
    Seed {
        name: "nginx-service-x",
        spec: "spec:
  type: ClusterIP
  selector:
    app: nginx
  externalIPs:
    - 192.168.150.41
  ports:
    - name: nginx-port
      protocol: TCP
      port: 82
      targetPort: 80
",
        applied: "Warning: spec.externalIPs is deprecated and may no longer be implemented in some clusters
service/nginx-service-x created
",
        reapply_patches: false,
        wide: "NAME              TYPE        CLUSTER-IP    EXTERNAL-IP      PORT(S)   AGE   SELECTOR
nginx-service-x   ClusterIP   10.43.12.34   192.168.150.41   82/TCP    0s    app=nginx
",
        spec_yaml: "spec:
  clusterIP: 10.43.12.34
  clusterIPs:
  - 10.43.12.34
  externalIPs:
  - 192.168.150.41
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: nginx-port
    port: 82
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: ClusterIP
",
    },
    Seed {
        name: "turbo-gateway-lb",
        spec: "spec:
  type: LoadBalancer
  selector:
    app: nginx
  externalIPs:
    - 192.168.150.41
  ports:
    - name: http
      protocol: TCP
      port: 58080
      targetPort: 80
",
        applied: "Warning: spec.externalIPs is deprecated and may no longer be implemented in some clusters
service/turbo-gateway-lb created
",
        reapply_patches: false,
        wide: "NAME               TYPE           CLUSTER-IP    EXTERNAL-IP      PORT(S)                AGE   SELECTOR
turbo-gateway-lb   LoadBalancer   10.43.12.34   192.168.150.41   58080:<NODEPORT>/TCP   0s    app=nginx
",
        spec_yaml: "spec:
  allocateLoadBalancerNodePorts: true
  clusterIP: 10.43.12.34
  clusterIPs:
  - 10.43.12.34
  externalIPs:
  - 192.168.150.41
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: http
    nodePort: <NODEPORT>
    port: 58080
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  sessionAffinity: None
  type: LoadBalancer
",
    },
];

/// `text` with `port` (a NodePort allocated at random) written as `<NODEPORT>`.
fn mark_node_port(text: &str, port: &str) -> String {
    if port.is_empty() {
        return text.to_string();
    }
    regex::Regex::new(&format!(r"\b{port}\b"))
        .unwrap()
        .replace_all(text, "<NODEPORT>")
        .into_owned()
}

#[test]
fn seed_service_manifests_apply_and_read_back() {
    let c = Cluster::start_with(&["--load-balancer-mode", "off"]);
    for seed in SEEDS {
        let manifest = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {}\n  labels:\n    app: nginx\n{}",
            seed.name, seed.spec
        );
        assert_output(&c.kubectl_with("apply", &manifest), 0, seed.applied);
        let cluster_ip = format!("get svc {} -o jsonpath='{{.spec.clusterIPs}}'", seed.name);
        let before = c.kubectl(&cluster_ip).ok().to_string();
        let again = c.kubectl_with("apply", &manifest);
        let verb = if seed.reapply_patches {
            "configured"
        } else {
            "unchanged"
        };
        assert!(
            again
                .out
                .ends_with(&format!("service/{} {verb}\n", seed.name))
                && again.code == 0,
            "re-applying {}:\n{}",
            seed.name,
            again.out
        );
        assert_eq!(
            c.kubectl(&cluster_ip).ok(),
            before,
            "re-applying {} moved it",
            seed.name
        );
        // Only a NodePort the seed did not name is random.
        let random_port = if seed.spec.contains("nodePort:") {
            String::new()
        } else {
            c.kubectl(&format!(
                "get svc {} -o jsonpath='{{.spec.ports[0].nodePort}}'",
                seed.name
            ))
            .ok()
            .to_string()
        };
        let wide = c.kubectl(&format!("get svc {} -o wide", seed.name));
        let wide = crate::Run {
            out: mark_node_port(&wide.out, &random_port),
            ..wide
        };
        assert_output(&wide, 0, seed.wide);
        let yaml = c.kubectl(&format!(
            "get svc {} -o yaml | sed -n '/^spec:/,/^status:/p' | sed '$d'",
            seed.name
        ));
        let yaml = crate::Run {
            out: mark_node_port(&yaml.out, &random_port),
            ..yaml
        };
        assert_output(&yaml, 0, seed.spec_yaml);
    }
    // All of them side by side, as the notes list them.
    let all = c.kubectl("get svc -o name");
    assert_output(
        &all,
        0,
        "service/kubernetes\nservice/nginx-alias\nservice/nginx-headless\nservice/nginx-lb\n\
         service/nginx-np\nservice/nginx-service\nservice/nginx-service-x\nservice/turbo-gateway-lb\n",
    );
}
