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
