//! Child servers that are always cleaned up: killed and their temporary data directory removed
//! on drop, and also when the benchmark is interrupted (SIGINT/SIGTERM).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;

/// (pid, data dir) of every live child, for the interrupt handler.
static LIVE: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

pub struct Server {
    child: Child,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Wraps an already spawned child that owns `dir`.
    pub fn new(child: Child, dir: tempfile::TempDir) -> Server {
        LIVE.lock()
            .unwrap()
            .push((child.id(), dir.path().to_path_buf()));
        Server {
            child,
            dir: Some(dir),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("data dir").path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        LIVE.lock().unwrap().retain(|(p, _)| *p != pid);
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

/// On SIGINT or SIGTERM: kill every child, remove their directories, exit 130.
pub fn clean_up_on_interrupt() {
    tokio::spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        for (pid, dir) in LIVE.lock().unwrap().drain(..) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("interrupted: servers killed, data directories removed");
        std::process::exit(130);
    });
}

/// A free TCP port on 127.0.0.1 (for etcd, which cannot be told to pick one and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// CPU time (user + system, all threads) that process `pid` (or this process, for `None`) has
/// used so far, in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // USER_HZ is 100 on Linux for every architecture we run on.
    (ticks(14) + ticks(15)) / 100.0
}

/// CPU seconds used by a server and by this (client) process over one phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub server: f64,
    pub client: f64,
}

pub struct CpuMeter {
    pid: u32,
    server: f64,
    client: f64,
}

impl CpuMeter {
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid,
            server: cpu_seconds(Some(pid)),
            client: cpu_seconds(None),
        }
    }

    pub fn stop(self) -> Cpu {
        Cpu {
            server: cpu_seconds(Some(self.pid)) - self.server,
            client: cpu_seconds(None) - self.client,
        }
    }
}
