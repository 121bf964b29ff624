//! The real kubectl 1.32 (and curl) against `switchboard server`: replays of the kube-apiserver
//! 1.36 reference transcripts (`reference_*`), kubectl workflows with default flags
//! (`workflow_*`), and bad input that must get a 4xx `Status` and leave the server serving
//! (`bad_input`). Every test starts its own server, so tests run in parallel.
//!
//! Commands run through bash exactly as the reference recordings ran them
//! (`bash -o pipefail -c CMD 2>&1`, with KUBECONFIG, TOKEN and API exported), from a scratch
//! directory, under a timeout so a hung server fails a test instead of hanging it.
//!
//! Start at [`transcript`] for how recordings are compared, and at a `reference_*` module for
//! a plan: every recorded command is listed, compared, run as setup, or skipped with a reason.
//! Differences from kube-apiserver that are still open are in [`server_bugs`]. Two switches
//! help when the server changes:
//! - `TRANSCRIPT_TRY_SKIPPED=1` runs skipped commands too and prints which now match;
//! - `TRANSCRIPT_STRICT=1` fails on the known server bugs as well.
//!
//! `cargo test -p switchboard --test kubectl -- --ignored` runs the tests waiting on a server fix.

mod bad_input;
mod reference_01_discovery;
mod reference_02_clusterip_service;
mod reference_04_nodeport;
mod reference_05_externalname;
mod reference_06_loadbalancer_externalips;
mod reference_07_headless_and_clusterip;
mod reference_08_validation_errors;
mod reference_09_namespaces;
mod reference_10_patch_and_ssa;
mod reference_11_watch_and_paging;
mod seed_services;
mod server_bugs;
mod transcript;
mod workflow_apply_edit_patch;
mod workflow_discovery;
mod workflow_get;
mod workflow_namespaces;
mod workflow_objects;

use std::sync::atomic::{AtomicUsize, Ordering};
use test_support::TestServer;

/// Seconds any single shell step may take before it is killed (exit code 124).
const STEP_TIMEOUT_SECS: u32 = 90;

/// A running `switchboard server` plus a scratch directory for the files commands write.
pub struct Cluster {
    pub server: TestServer,
    work: std::path::PathBuf,
    scripts: AtomicUsize,
}

/// Interleaved stdout+stderr and the exit code of one shell step.
#[derive(Debug, Clone)]
pub struct Run {
    pub out: String,
    pub code: i32,
}

impl Run {
    /// Asserts success and returns the output.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed (exit {}):\n{}",
            self.code, self.out
        );
        &self.out
    }

    /// Asserts failure with exactly this exit code and returns the output.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}:\n{}",
            self.code, self.out
        );
        &self.out
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Starts a server with extra `switchboard server` flags.
    pub fn start_with(flags: &[&str]) -> Cluster {
        // The server colours its log even when stderr is a pipe, and test-support finds the
        // listen address by matching `address=` in that log; ANSI codes between `address` and
        // `=` hide it. NO_COLOR (honoured by tracing-subscriber) keeps the log plain. Set once,
        // before any server starts; std serialises env access with process spawning.
        static PLAIN_LOGS: std::sync::Once = std::sync::Once::new();
        PLAIN_LOGS.call_once(|| std::env::set_var("NO_COLOR", "1"));
        let server = TestServer::start_with(env!("CARGO_BIN_EXE_switchboard"), flags);
        let work = server.data_dir().join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        Cluster {
            server,
            work,
            scripts: AtomicUsize::new(0),
        }
    }

    /// The scratch directory commands run in.
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work
    }

    /// Runs `script` as `bash -o pipefail SCRIPT 2>&1` in the scratch directory.
    pub fn sh(&self, script: &str) -> Run {
        let n = self.scripts.fetch_add(1, Ordering::Relaxed);
        let file = self.work.join(format!("step-{n:03}.sh"));
        std::fs::write(&file, format!("{script}\n")).expect("writing script");
        let out = self.server.bash(&format!(
            "cd '{}' || exit 99\nexec timeout -k 5 {STEP_TIMEOUT_SECS} bash -o pipefail '{}' 2>&1",
            self.work.display(),
            file.display()
        ));
        Run {
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Runs the watch command `watch` (stopped by `timeout` after `secs`), and `changes` once the
    /// watch has printed its first output, so the changes cannot race the initial list; returns
    /// the watch's output and exit code (124 from the timeout).
    pub fn watch_while(&self, watch: &str, changes: &str, secs: u32) -> Run {
        let n = self.scripts.fetch_add(1, Ordering::Relaxed);
        self.sh(&format!(
            "timeout {secs} {watch} > ./watch-{n}.out 2>&1 & W=$!\n\
             for i in $(seq 200); do [ -s ./watch-{n}.out ] && break; sleep 0.1; done\n\
             {{\n{changes}\n}} >/dev/null\n\
             wait $W; rc=$?; cat ./watch-{n}.out; exit $rc"
        ))
    }

    /// `kubectl ARGS` (ARGS as shell words).
    pub fn kubectl(&self, args: &str) -> Run {
        self.sh(&format!("kubectl {args}"))
    }

    /// `kubectl ARGS -f -` with `manifest` on stdin (a quoted heredoc, so nothing is expanded).
    pub fn kubectl_with(&self, args: &str, manifest: &str) -> Run {
        let manifest = manifest.trim_end_matches('\n');
        self.sh(&format!(
            "kubectl {args} -f - <<'MANIFEST'\n{manifest}\nMANIFEST"
        ))
    }

    /// `kubectl apply -f -` of `manifest`, which must succeed.
    #[track_caller]
    pub fn apply(&self, manifest: &str) -> String {
        self.kubectl_with("apply", manifest).ok().to_string()
    }

    /// The server still serves: `kubectl get ns` lists `default`.
    #[track_caller]
    pub fn assert_still_serving(&self) {
        let run = self.kubectl("get ns default -o name");
        assert_eq!(
            (run.code, run.out.as_str()),
            (0, "namespace/default\n"),
            "server no longer serves"
        );
    }
}

/// Asserts that `run` printed `expected` and exited with `code`, comparing the way the
/// transcript replays do (tables by cell, ages, uids, times, resourceVersions normalised).
#[track_caller]
pub fn assert_output(run: &Run, code: i32, expected: &str) {
    if let Err(msg) = transcript::compare_texts(
        expected,
        transcript::Side::Switchboard,
        code,
        &run.out,
        run.code,
        &Vec::new(),
    ) {
        panic!("{msg}");
    }
}

/// Parses JSON output, with the text in the panic message when it is not JSON.
#[track_caller]
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
