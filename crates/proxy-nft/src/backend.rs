//! The only side effects of the data plane, behind two narrow traits (as knftables'
//! `Interface`): running an `nft` script, listing our table once at start, and deleting
//! conntrack entries. [`NftCli`] and [`ConntrackCli`] run the Debian tools, optionally inside a
//! named network namespace; [`Fake`] records what it was asked, for unit tests.

use crate::model::{nft_family, TABLE};
use crate::netlink::{NftNetlink, SendFailure};
use proxy_core::IpFamily;
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("running {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
}

/// nftables, as far as the proxier needs it.
pub trait Nft: Send {
    /// Runs `script` as one atomic transaction (`nft -f -`).
    fn apply(&mut self, script: &str) -> Result<(), BackendError>;
    /// `nft -j list table FAMILY switchboard`, or `None` when the table does not exist.
    fn list_table_json(&mut self, family: IpFamily) -> Result<Option<String>, BackendError>;
}

/// One conntrack deletion: UDP entries to `orig_dst` (any address when `None`) port
/// `orig_port_dst` that were DNATed to `dst_nat`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConntrackFilter {
    pub orig_dst: Option<IpAddr>,
    pub orig_port_dst: u16,
    pub dst_nat: IpAddr,
}

/// The conntrack table, as far as the proxier needs it.
pub trait Conntrack: Send {
    /// Deletes the matching UDP entries; none matching is not an error.
    fn delete_udp(&mut self, filter: &ConntrackFilter) -> Result<(), BackendError>;
}

fn command(netns: &Option<String>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

/// The `nft` CLI (of the current network namespace, or of `netns`).
#[derive(Clone, Debug, Default)]
pub struct NftCli {
    pub netns: Option<String>,
}

impl NftCli {
    pub fn in_netns(name: impl Into<String>) -> Self {
        NftCli {
            netns: Some(name.into()),
        }
    }
}

impl Nft for NftCli {
    fn apply(&mut self, script: &str) -> Result<(), BackendError> {
        let cmd = "nft -f -".to_string();
        let mut child = command(&self.netns, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BackendError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = stdin.write_all(script.as_bytes());
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|source| BackendError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(BackendError::Failed {
                cmd,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        written.map_err(|source| BackendError::Spawn { cmd, source })
    }

    fn list_table_json(&mut self, family: IpFamily) -> Result<Option<String>, BackendError> {
        let fam = nft_family(family);
        let cmd = format!("nft -j list table {fam} {TABLE}");
        let out = command(&self.netns, "nft")
            .args(["-j", "list", "table", fam, TABLE])
            .output()
            .map_err(|source| BackendError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(BackendError::Failed { cmd, stderr })
        }
    }
}

/// The `conntrack` CLI (conntrack-tools).
#[derive(Clone, Debug, Default)]
pub struct ConntrackCli {
    pub netns: Option<String>,
}

impl ConntrackCli {
    pub fn in_netns(name: impl Into<String>) -> Self {
        ConntrackCli {
            netns: Some(name.into()),
        }
    }
}

impl Conntrack for ConntrackCli {
    fn delete_udp(&mut self, f: &ConntrackFilter) -> Result<(), BackendError> {
        let mut args = vec!["-D".to_string(), "-p".into(), "udp".into()];
        if f.dst_nat.is_ipv6() {
            args.extend(["-f".into(), "ipv6".into()]);
        }
        if let Some(d) = f.orig_dst {
            args.extend(["--orig-dst".into(), d.to_string()]);
        }
        args.extend(["--orig-port-dst".into(), f.orig_port_dst.to_string()]);
        args.extend(["--dst-nat".into(), f.dst_nat.to_string()]);
        let cmd = format!("conntrack {}", args.join(" "));
        let out = command(&self.netns, "conntrack")
            .args(&args)
            .output()
            .map_err(|source| BackendError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
        if out.status.success() || stderr.contains("0 flow entries") {
            Ok(())
        } else {
            Err(BackendError::Failed { cmd, stderr })
        }
    }
}

/// What a [`Fake`] was asked to do.
#[derive(Clone, Debug, Default)]
pub struct FakeLog {
    pub scripts: Vec<String>,
    pub conntrack: Vec<ConntrackFilter>,
    /// Listings to answer `list_table_json` with, per family (None: no table).
    pub tables: [Option<String>; 2],
    /// Fail the next this many `apply` calls.
    pub fail_next: usize,
}

/// An in-memory [`Nft`] + [`Conntrack`] that records scripts and filters (shared through an
/// `Arc` so a test keeps a handle after moving the fake into the proxier).
#[derive(Clone, Debug, Default)]
pub struct Fake(pub Arc<Mutex<FakeLog>>);

impl Nft for Fake {
    fn apply(&mut self, script: &str) -> Result<(), BackendError> {
        let mut log = self.0.lock().expect("fake lock");
        if log.fail_next > 0 {
            log.fail_next -= 1;
            return Err(BackendError::Failed {
                cmd: "nft -f -".into(),
                stderr: "fake failure".into(),
            });
        }
        log.scripts.push(script.to_string());
        Ok(())
    }

    fn list_table_json(&mut self, family: IpFamily) -> Result<Option<String>, BackendError> {
        let log = self.0.lock().expect("fake lock");
        Ok(log.tables[family as usize].clone())
    }
}

impl Conntrack for Fake {
    fn delete_udp(&mut self, filter: &ConntrackFilter) -> Result<(), BackendError> {
        self.0
            .lock()
            .expect("fake lock")
            .conntrack
            .push(filter.clone());
        Ok(())
    }
}

/// The default [`Nft`] backend: scripts go to the kernel through [`NftNetlink`] (one netlink
/// batch, no cache dump), and through the `nft` CLI when the encoder does not understand a
/// construct (logged once per construct) or when no netlink socket could be opened. Both
/// apply the same script text, atomically.
pub struct NftAuto {
    netlink: Option<NftNetlink>,
    cli: NftCli,
    /// Constructs already logged as falling back.
    logged: HashSet<String>,
    counts: Arc<AutoCounts>,
}

/// How many scripts an [`NftAuto`] sent through netlink and through the CLI (shared, so a
/// test or benchmark can read it after moving the backend into a proxier).
#[derive(Debug, Default)]
pub struct AutoCounts {
    netlink: AtomicUsize,
    cli: AtomicUsize,
}

impl AutoCounts {
    /// (scripts applied through netlink, scripts applied through the CLI)
    pub fn get(&self) -> (usize, usize) {
        (
            self.netlink.load(Ordering::Relaxed),
            self.cli.load(Ordering::Relaxed),
        )
    }
}

impl NftAuto {
    /// Netlink in the current network namespace, the CLI if the socket cannot be opened.
    pub fn new() -> Self {
        Self::with(NftNetlink::new(), NftCli::default())
    }

    /// The same for the named network namespace (`ip netns`).
    pub fn in_netns(name: impl Into<String>) -> Self {
        let name = name.into();
        Self::with(NftNetlink::in_netns(&name), NftCli::in_netns(name))
    }

    /// Only the CLI (what every sync used before the netlink encoder).
    pub fn cli_only(cli: NftCli) -> Self {
        Self::with(
            Err(BackendError::Failed {
                cmd: "netlink".into(),
                stderr: "disabled".into(),
            }),
            cli,
        )
    }

    fn with(netlink: Result<NftNetlink, BackendError>, cli: NftCli) -> Self {
        let netlink = match netlink {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "no nf_tables netlink socket; using the nft CLI");
                None
            }
        };
        NftAuto {
            netlink,
            cli,
            logged: HashSet::new(),
            counts: Arc::default(),
        }
    }

    /// The counts of scripts per path.
    pub fn counts(&self) -> Arc<AutoCounts> {
        self.counts.clone()
    }

    /// Whether scripts can go through netlink at all.
    pub fn has_netlink(&self) -> bool {
        self.netlink.is_some()
    }
}

impl Default for NftAuto {
    fn default() -> Self {
        Self::new()
    }
}

impl Nft for NftAuto {
    fn apply(&mut self, script: &str) -> Result<(), BackendError> {
        if let Some(nl) = &mut self.netlink {
            match nl.encode(script) {
                Ok(batch) => match nl.send_batch(batch, script) {
                    Ok(()) => {
                        self.counts.netlink.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(SendFailure::Failed(e)) => {
                        self.counts.netlink.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    // The kernel never saw it: the CLI can still apply it.
                    Err(SendFailure::NotSent(e)) => {
                        tracing::warn!(error = %e, "netlink socket refused the batch; using the nft CLI");
                        nl.forget_sets();
                    }
                },
                Err(u) => {
                    if self.logged.insert(u.construct().to_string()) {
                        tracing::debug!(construct = %u, "nft script not encodable as netlink; using the nft CLI");
                    }
                    // The CLI may change sets behind the encoder's back.
                    nl.forget_sets();
                }
            }
        }
        self.counts.cli.fetch_add(1, Ordering::Relaxed);
        self.cli.apply(script)
    }

    fn list_table_json(&mut self, family: IpFamily) -> Result<Option<String>, BackendError> {
        self.cli.list_table_json(family)
    }
}
