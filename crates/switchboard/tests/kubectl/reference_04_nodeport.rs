//! Replay of reference 04 (NodePort Services: a fixed nodePort and its conflicts, out-of-range
//! values, auto-allocation, TCP and UDP sharing one nodePort, PUT without nodePort, type changes
//! NodePort <-> ClusterIP, reuse after delete), and the one test that replays 04 to 08.
//!
//! References 04 to 08 were recorded in one sequential run: later files list the Services
//! earlier ones made, with the node ports they were given at random. So they replay in order on
//! one server, which starts where 02 and 03 left the recording (see [`state_from_02_and_03`]) and
//! uses the recording's `--service-cidr 10.96.0.0/16`, so that commands naming ClusterIPs (07)
//! run as recorded. Randomly allocated node ports are learned as they are made
//! ([`crate::transcript::Step::learn`]).

use crate::transcript::{compare, Replay, Step};
use crate::{reference_05_externalname, reference_06_loadbalancer_externalips};
use crate::{reference_07_headless_and_clusterip, reference_08_validation_errors, Cluster};

/// The recording's Service CIDR (its kube-apiserver's `--service-cluster-ip-range`).
const REFERENCE_SERVICE_CIDR: &str = "10.96.0.0/16";

/// `nginx-service` as reference 02 left it.
const NGINX_SERVICE: &str = "
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
  namespace: default
  labels:
    app: nginx
spec:
  selector:
    app: nginx
  ports:
    - name: nginx-port
      protocol: TCP
      port: 80
      targetPort: 80
";

/// The objects 02 and 03 leave behind that 04 to 07 show: `nginx-service` as 02 left it, the
/// pods of 03 (nginx-1 and nginx-2 Ready, nginx-3 not Ready, nginx-noport Ready without the
/// named port `http`) and `nginx-named`. The pods' status is written as the recording wrote it
/// (there is no kubelet in either run).
pub fn state_from_02_and_03(c: &Cluster) {
    c.apply(NGINX_SERVICE);
    let mut pods = String::new();
    for (name, port, port_name) in [
        ("nginx-1", 80, "http"),
        ("nginx-2", 80, "http"),
        ("nginx-3", 80, "http"),
        ("nginx-noport", 8080, "alt"),
    ] {
        pods.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: nginx\n\
             spec:\n  nodeName: node1\n  containers:\n    - name: container-nginx\n      \
             image: nginx:1.26.2\n      ports:\n        - containerPort: {port}\n          \
             name: {port_name}\n"
        ));
    }
    c.apply(&pods);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-named\n  labels:\n    app: nginx\n\
         spec:\n  selector:\n    app: nginx\n  ports:\n    - name: web\n      protocol: TCP\n      \
         port: 8080\n      targetPort: http\n",
    );
    for (pod, ip, ready) in [
        ("nginx-1", "10.42.0.11", "True"),
        ("nginx-2", "10.42.0.12", "True"),
        ("nginx-3", "10.42.0.13", "False"),
        ("nginx-noport", "10.42.0.14", "True"),
    ] {
        c.kubectl(&format!(
            "patch pod {pod} --subresource=status --type=merge -p \
             '{{\"status\":{{\"phase\":\"Running\",\"podIP\":\"{ip}\",\"podIPs\":[{{\"ip\":\"{ip}\"}}],\
             \"conditions\":[{{\"type\":\"Ready\",\"status\":\"{ready}\"}}]}}}}'"
        ))
        .ok();
    }
}

#[test]
fn reference_04_to_08_service_types_and_validation() {
    // The recording's stack had no LoadBalancer controller: status.loadBalancer is written by
    // hand (06) and nothing else may write it or post Events about it.
    let c = Cluster::start_with(&[
        "--service-cidr",
        REFERENCE_SERVICE_CIDR,
        "--load-balancer-mode",
        "off",
    ]);
    state_from_02_and_03(&c);
    let mut replays = Vec::new();
    for (file, plan) in [
        ("04-nodeport.txt", plan as fn() -> Vec<Step>),
        ("05-externalname.txt", reference_05_externalname::plan),
        (
            "06-loadbalancer-externalips.txt",
            reference_06_loadbalancer_externalips::plan,
        ),
        (
            "07-headless-and-clusterip.txt",
            reference_07_headless_and_clusterip::plan,
        ),
        (
            "08-validation-errors.txt",
            reference_08_validation_errors::plan,
        ),
    ] {
        let mut r = Replay::new(file).with_reference_service_cidr();
        // The node ports each file learned are still shown by the next ones.
        if let Some(previous) = replays.last() {
            r.learned_from(previous);
        }
        r.run(&c, plan());
        replays.push(r);
    }
    Replay::finish_all(replays);
}

/// Every command of 04, in order.
pub fn plan() -> Vec<Step> {
    vec![
        compare(0, "name: nginx-np\n"),
        compare(1, "get svc nginx-np -o wide"),
        compare(2, "get svc nginx-np -o yaml"),
        compare(3, "describe svc nginx-np").after_endpoints_of("nginx-np"),
        compare(4, "name: nginx-np-dup"),
        compare(5, "get svc nginx-np-dup"),
        compare(6, "name: nginx-np-80"),
        compare(7, "name: nginx-np-32768"),
        compare(8, "name: nginx-np-70000"),
        compare(9, "name: nginx-cip-with-np"),
        compare(10, "name: nginx-np-auto").learn(
            "nginx-np-auto",
            "{.spec.ports[0].nodePort}",
            "31224",
        ),
        compare(11, "kubectl get svc"),
        compare(12, "kubectl get svc -o wide"),
        compare(13, "get svc nginx-np-auto -o yaml"),
        compare(14, "get svc nginx-np-auto -o jsonpath"),
        compare(15, "name: dns-np").learn("dns-np", "{.spec.ports[2].nodePort}", "30225"),
        compare(16, "get svc dns-np -o wide"),
        compare(17, "get svc dns-np -o yaml"),
        compare(18, "describe svc dns-np").after_endpoints_of("dns-np"),
        compare(19, "name: np-self-dup"),
        compare(20, "get svc nginx-np-auto -o jsonpath").normalise(r"rv=\d+", "rv=<RV>"),
        compare(21, "kubectl replace -f -"),
        compare(22, "get svc nginx-np-auto -o jsonpath").normalise(r"rv=\d+", "rv=<RV>"),
        compare(23, r#"{"spec":{"type":"ClusterIP"}}"#),
        compare(24, "get svc nginx-np-auto -o yaml"),
        compare(25, "get svc nginx-np-auto -o wide"),
        compare(26, r#"{"spec":{"type":"NodePort"}}"#).learn(
            "nginx-np-auto",
            "{.spec.ports[0].nodePort}",
            "32604",
        ),
        compare(27, "get svc nginx-np-auto -o wide"),
        compare(28, "get svc nginx-np-auto -o jsonpath"),
        compare(29, "NP=$(kubectl get svc nginx-np-auto"),
        compare(30, r#""value":30081"#),
        compare(31, "get svc nginx-np -o wide"),
        compare(32, r#""value":30080"#),
        compare(33, "get svc nginx-np -o wide"),
        compare(34, "delete svc nginx-np-dup --ignore-not-found"),
        compare(35, "create service nodeport np-imperative "),
        compare(36, "get svc np-imperative -o wide"),
        compare(37, "delete svc np-imperative"),
        compare(38, "create service nodeport np-imperative2 "),
        compare(39, "get svc np-imperative2 -o wide"),
        compare(40, "delete svc np-imperative2"),
        compare(41, "kubectl get svc -o wide"),
    ]
}
