//! Fixtures: a server, the DNS server in this process on 127.0.0.1:0 watching it, a dnsmasq
//! upstream on loopback, kubectl and dig helpers.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use test_support::TestServer;

/// The tests take turns: each starts an API server on a 2-core machine.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// dnsmasq on a loopback port, answering names from a hosts file, as the "outside world".
pub struct Upstream {
    child: Child,
    pub addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Upstream {
    pub fn start(hosts: &str) -> Upstream {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "switchboard-dns-upstream-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        // A free port: bind, read, release (dnsmasq binds it a moment later).
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                "--log-facility=-",
            ])
            // Names of example.test not in the hosts file are NXDOMAIN (not REFUSED).
            .arg("--local=/example.test/")
            // dnsmasq gives hosts-file answers TTL 0 unless told; 0 would never be cached.
            .arg("--local-ttl=60")
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts_file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq-base)");
        let up = Upstream {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !dig_at(up.addr, &["+short", "localhost.invalid"]).contains("timed out") {
                return up;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dnsmasq did not start");
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn dig_at(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (Debian package bind9-dnsutils)");
    // One space between fields (dig aligns with tabs), so assertions can quote lines.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The API server, the DNS server watching it, and optionally an upstream.
pub struct DnsCluster {
    pub server: TestServer,
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
    pub registry: Registry,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Kept alive as long as the cluster (dropped with it).
    pub _upstream: Option<Upstream>,
}

impl DnsCluster {
    pub fn start(upstream: Option<Upstream>) -> DnsCluster {
        std::env::set_var("NO_COLOR", "1");
        let server = TestServer::start(env!("CARGO_BIN_EXE_switchboard"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut registry = Registry::default();
        let cfg = dns::DnsConfig {
            bind: vec!["127.0.0.1:0".parse().unwrap()],
            upstreams: Some(upstream.iter().map(|u| u.addr).collect()),
            ..Default::default()
        };
        let mut d = dns::Dns::new(cfg, &mut registry);
        let addr = d.bind().expect("bind DNS")[0];
        let kubeconfig = server.kubeconfig.clone();
        let client = rt.block_on(async move {
            let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
            let c = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            kube::Client::try_from(c).unwrap()
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = rt.spawn(d.run(Some(client), async move {
            let _ = rx.await;
        }));
        let c = DnsCluster {
            server,
            rt,
            addr,
            registry,
            stop: Some(tx),
            task: Some(task),
            _upstream: upstream,
        };
        // Ready once the first lists are in: the built-in `kubernetes` Service answers.
        c.wait_for(
            "kubernetes.default.svc.cluster.local",
            "A",
            |a| !a.is_empty(),
            Duration::from_secs(30),
        );
        c
    }

    pub fn dig(&self, args: &[&str]) -> String {
        dig_at(self.addr, args)
    }

    /// `dig +short`, lines sorted.
    pub fn short(&self, name: &str, qtype: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .dig(&["+short", name, qtype])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// The response code dig reports (`NOERROR`, `NXDOMAIN`, ...).
    pub fn status(&self, name: &str, qtype: &str) -> String {
        status_of(&self.dig(&[name, qtype]))
    }

    /// Polls `dig +short` until `ok` holds; returns how long it took. Panics after `limit`.
    pub fn wait_for(
        &self,
        name: &str,
        qtype: &str,
        ok: impl Fn(&[String]) -> bool,
        limit: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let a = self.short(name, qtype);
            if ok(&a) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "{name} {qtype}: still {a:?} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kubectl_apply(&self, yaml: &str) {
        let out = self.server.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            test_support::output_text(&out)
        );
    }

    pub fn kubectl(&self, args: &[&str]) {
        let out = self.server.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            test_support::output_text(&out)
        );
    }

    /// A Pod registered as a backend: the object, then the status a kubelet would write.
    pub fn pod(&self, ns: &str, name: &str, ip: &str, labels: &str, extra_spec: &str, ready: bool) {
        self.kubectl_apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
             spec: {{containers: [{{name: c, image: x}}]{extra_spec}}}\n"
        ));
        let r = if ready { "True" } else { "False" };
        let patch = format!(
            r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{r}"}}]}}}}"#
        );
        self.kubectl(&[
            "-n",
            ns,
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
    }

    pub fn metrics(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).unwrap();
        s
    }
}

impl Drop for DnsCluster {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), t).await });
        }
    }
}

pub fn status_of(dig_output: &str) -> String {
    dig_output
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string()
}

/// A metric's value from the text exposition (first sample whose line starts with `prefix`).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
