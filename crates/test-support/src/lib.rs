//! Test fixtures shared by Switchboard's integration tests: a real `switchboard server`
//! process on an ephemeral port in a temporary data directory, and the real kubectl against it;
//! and network-namespace labs (nodes, pods, clients, echo servers) for tests that need the
//! kernel. Start at [`TestServer::start`] and [`netlab::Lab::new`].

pub mod netlab;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `switchboard server` child process. Killed (SIGKILL) when dropped; its data directory is
/// removed with it unless [`TestServer::keep_dir`] was called.
pub struct TestServer {
    bin: PathBuf,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    child: Option<Child>,
    /// The address the server listens on (127.0.0.1, an ephemeral port on first start; restarts reuse it).
    pub addr: SocketAddr,
    /// `DATA_DIR/kubeconfig`, usable by kubectl and kube-rs as it is.
    pub kubeconfig: PathBuf,
    /// The admin bearer token.
    pub token: String,
}

impl TestServer {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_switchboard")`) with a fresh data directory.
    pub fn start(bin: &str) -> TestServer {
        Self::start_with(bin, &[])
    }

    /// Starts with extra command-line flags (after `server --data-dir D --listen A`).
    pub fn start_with(bin: &str, extra: &[&str]) -> TestServer {
        let mut s = TestServer::start_stopped(bin);
        s.spawn(extra);
        s
    }

    fn start_stopped(bin: &str) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-test-")
            .tempdir()
            .expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        TestServer {
            bin: PathBuf::from(bin),
            dir: Some(dir),
            data_dir: data_dir.clone(),
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            kubeconfig: data_dir.join("kubeconfig"),
            token: String::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Keeps the data directory after the test (for debugging).
    pub fn keep_dir(&mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            return d.keep();
        }
        self.data_dir.clone()
    }

    fn spawn(&mut self, extra: &[&str]) {
        let mut child = Command::new(&self.bin)
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(extra)
            .env("RUST_LOG", log_filter())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning switchboard");
        // The server logs `API server listening address=...` once it serves.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("API server listening") {
                    if let Some(addr) = line
                        .split("address=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                    {
                        let _ = tx.send(addr.to_string());
                        sent = true;
                    }
                }
                if std::env::var("SWITCHBOARD_TEST_LOG").is_ok() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("switchboard server did not start within 60 s");
            }
        };
        self.addr = addr.parse().expect("listen address");
        self.token = std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_string();
        self.child = Some(child);
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(st)) = c.try_wait() {
                    return st.success();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        false
    }

    /// Starts again on the same data directory and port (after `kill9` or `stop`).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn(&[]);
    }

    /// The PID of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A `kubectl` command with KUBECONFIG set and a private cache directory.
    pub fn kubectl_cmd(&self) -> Command {
        let mut c = Command::new(kubectl_path());
        c.env("KUBECONFIG", &self.kubeconfig);
        c.env("KUBECACHEDIR", self.data_dir.join("kubecache"));
        c
    }

    /// Runs kubectl with `args`; stdin empty.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl")
    }

    /// Runs kubectl with `stdin` piped in (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().expect("kubectl output")
    }

    /// A bash command with KUBECONFIG, TOKEN and API exported as in the reference transcripts.
    pub fn bash(&self, script: &str) -> Output {
        Command::new("bash")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(script)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.data_dir.join("kubecache"))
            .env("TOKEN", &self.token)
            .env("API", self.url())
            .stdin(Stdio::null())
            .output()
            .expect("running bash")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// kubectl: `$KUBECTL`, else /usr/bin/kubectl, else `kubectl` on PATH.
/// RUST_LOG for the processes tests start: `SWITCHBOARD_TEST_LOG` when it is a filter, `info`
/// when it is unset or only a switch (`1`, `true`, empty: a filter of `1` would silence the
/// process, and the server's "listening" line is how tests know it started).
pub fn log_filter() -> String {
    match std::env::var("SWITCHBOARD_TEST_LOG") {
        Ok(v) if !matches!(v.trim(), "" | "1" | "true" | "yes") => v,
        _ => "info".into(),
    }
}

pub fn kubectl_path() -> PathBuf {
    if let Ok(p) = std::env::var("KUBECTL") {
        return PathBuf::from(p);
    }
    let default = PathBuf::from("/usr/bin/kubectl");
    if default.exists() {
        default
    } else {
        PathBuf::from("kubectl")
    }
}

/// stdout and stderr of a command, as one string (stdout first).
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
