//! One network namespace: running commands and in-process code inside it, and the sweep of
//! namespaces that crashed test processes left behind.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every namespace a lab makes is named `sbl-<pid>-<lab>-<role>`; the sweep recognises the
/// family by this prefix and the pid.
pub(crate) const PREFIX: &str = "sbl-";

/// A named network namespace (`/run/netns/NAME`, the `ip netns` convention). Cheap to clone; the
/// [`Lab`](super::Lab) that made it removes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub(crate) fn create(name: String) -> Netns {
        run_ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The name `ip netns` knows it by (`ip netns exec NAME ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for tools that take a namespace path.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -n NAME ARGS...`; panics with ip's message when it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run_ip(&all);
    }

    /// Several `ip` commands in one process (`ip -n NAME -batch -`), one command per line
    /// without the leading `ip`. Panics naming the failing line.
    pub fn ip_batch(&self, lines: &[String]) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running ip (package iproute2)");
        let script = lines.join("\n") + "\n";
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ip -n {} -batch failed: {}\nscript:\n{script}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sets a sysctl of this namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) {
        let out = self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
        assert!(
            out.status.success(),
            "sysctl {key}={value} in {}: {}",
            self.name,
            crate::output_text(&out)
        );
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`; ip
    /// execs the program, so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args[0]` with the rest as arguments inside the namespace, stdin empty, and
    /// returns its output (whatever the exit status).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .expect("running ip netns exec")
    }

    /// Spawns `cmd` (made with [`Netns::command`]) with its output captured; the returned
    /// [`Process`] kills it when dropped, and the lab kills whatever is left in the namespace.
    pub fn spawn(&self, cmd: Command) -> Process {
        Process::spawn(cmd, self.name.clone())
    }

    /// Runs `f` on a new thread that entered this namespace and returns its result. Sockets
    /// created inside `f` stay in this namespace wherever they are used later, so a listener
    /// or connected stream can be handed back to the caller (or to a runtime in another
    /// namespace) and used from there.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let file = self.open();
        std::thread::spawn(move || {
            enter(&file);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Starts a thread inside this namespace running `f` (for long-lived work).
    pub fn thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::thread::JoinHandle<R> {
        let file = self.open();
        std::thread::spawn(move || {
            enter(&file);
            f()
        })
    }

    /// Runs `fut` to completion on a current-thread tokio runtime inside this namespace (a new
    /// thread, so it can be called from async code too: it blocks the caller meanwhile; wrap
    /// it in `spawn_blocking`/`block_in_place` there).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(fut)
        })
    }

    fn open(&self) -> File {
        File::open(self.path()).unwrap_or_else(|e| panic!("opening {}: {e}", self.path()))
    }

    /// Kills (SIGKILL) every process inside the namespace and deletes it.
    pub(crate) fn destroy(&self) {
        kill_all_in(&self.name);
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if let Ok(o) = out {
            if !o.status.success() && Path::new(&self.path()).exists() {
                eprintln!(
                    "netlab: ip netns del {}: {}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

fn enter(file: &File) {
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("setns into the lab namespace");
}

/// `ip ARGS`, panicking with ip's message on failure.
pub(crate) fn run_ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (package iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kill_all_in(name: &str) {
    // Processes are killed before the namespace goes: a process left inside keeps the
    // namespace (and its veths, addresses and nftables) alive after `ip netns del`.
    for _ in 0..50 {
        let pids = Command::new("ip").args(["netns", "pids", name]).output();
        let pids: Vec<i32> = match pids {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            Err(_) => return,
        };
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes namespaces of the `sbl-` family whose test process no longer runs (a test killed
/// by a timeout or SIGKILL never ran its drops).
pub(crate) fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        Netns { name }.destroy();
    }
}

/// A process started inside a namespace. Its stdout and stderr are kept (and echoed to the
/// test's stderr with a prefix when `SWITCHBOARD_TEST_LOG` is set). Killed when dropped.
pub struct Process {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    label: String,
}

impl Process {
    fn spawn(mut cmd: Command, netns: String) -> Process {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let label = format!(
            "{}@{netns}",
            cmd.get_args()
                .nth(3)
                .map(|a| Path::new(a)
                    .file_name()
                    .unwrap_or(a)
                    .to_string_lossy()
                    .to_string())
                .unwrap_or_default()
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let echo = std::env::var("SWITCHBOARD_TEST_LOG").is_ok();
        let out = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [out, err].into_iter().flatten() {
            let log = log.clone();
            let label = label.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[{label}] {line}");
                    }
                    let mut l = log.lock().unwrap();
                    // Keep memory bounded for long benchmarks; the tail is what a failure needs.
                    if l.len() >= 20_000 {
                        l.drain(..10_000);
                    }
                    l.push(line);
                }
            });
        }
        Process {
            child: Some(child),
            log,
            label,
        }
    }

    /// The process id (of the program itself; `ip netns exec` execs it).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything it printed so far (stdout and stderr lines as they came).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether a line printed so far contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Waits until a printed line contains `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether it is still running (false once it exited, or after kill/terminate).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; returns its exit status if
    /// it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// `program@namespace`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
