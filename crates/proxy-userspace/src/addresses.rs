//! Service addresses on the node's `lo`, as IPVS puts them on its dummy `kube-ipvs0`: a /32
//! (/128) per ClusterIP, external IP and load-balancer IP makes the kernel deliver their
//! traffic locally, where the listeners are. Only addresses this data plane added are ever
//! removed: IPv4 ones carry the label [`LABEL`] (so a restarted agent finds and adopts what a
//! previous run left), IPv6 ones (which have no labels) are remembered in memory.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The label of IPv4 addresses this data plane puts on `lo`.
pub const LABEL: &str = "lo:sbus";

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("running ip: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("ip {args}: {stderr}")]
    Failed { args: String, stderr: String },
}

fn ip(args: &[&str]) -> Result<String, AddressError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(AddressError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The addresses on `lo` (`ip -o addr show dev lo`), and which IPv4 ones carry [`LABEL`].
fn list_lo() -> Result<(BTreeSet<IpAddr>, BTreeSet<IpAddr>), AddressError> {
    let text = ip(&["-o", "addr", "show", "dev", "lo"])?;
    let mut all = BTreeSet::new();
    let mut labelled = BTreeSet::new();
    for line in text.lines() {
        // "1: lo    inet 10.43.0.5/32 scope global lo:sbus\ ..."
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "inet" || *w == "inet6") else {
            continue;
        };
        let Some(ip) = words
            .get(i + 1)
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse::<IpAddr>().ok())
        else {
            continue;
        };
        all.insert(ip);
        if words.iter().any(|w| w.trim_end_matches('\\') == LABEL) {
            labelled.insert(ip);
        }
    }
    Ok((all, labelled))
}

/// The service addresses this data plane owns on `lo`.
#[derive(Debug, Default)]
pub struct LoAddresses {
    ours: BTreeSet<IpAddr>,
}

impl LoAddresses {
    /// Adopts the labelled addresses a previous run left (the next [`LoAddresses::sync`] removes
    /// those no longer wanted).
    pub fn adopt() -> Result<LoAddresses, AddressError> {
        let (_, labelled) = list_lo()?;
        if !labelled.is_empty() {
            tracing::info!(addresses = ?labelled, "adopting service addresses left on lo by a previous run");
        }
        Ok(LoAddresses { ours: labelled })
    }

    pub fn owned(&self) -> &BTreeSet<IpAddr> {
        &self.ours
    }

    /// Adds the wanted addresses that `lo` lacks; returns how many were added. An address that
    /// is already there and not ours (someone else's) is used as it is and never removed.
    pub fn add(&mut self, want: &BTreeSet<IpAddr>) -> Result<usize, AddressError> {
        let missing: Vec<IpAddr> = want
            .iter()
            .filter(|a| !self.ours.contains(a))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let (present, _) = list_lo()?;
        let mut added = 0;
        let mut first_error = None;
        for a in missing {
            if present.contains(&a) {
                continue;
            }
            let addr = match a {
                IpAddr::V4(v4) => format!("{v4}/32"),
                IpAddr::V6(v6) => format!("{v6}/128"),
            };
            let result = match a {
                IpAddr::V4(_) => ip(&["-4", "addr", "add", &addr, "dev", "lo", "label", LABEL]),
                // nodad: the address is usable at once (no duplicate detection on lo anyway).
                IpAddr::V6(_) => ip(&["-6", "addr", "add", &addr, "dev", "lo", "nodad"]),
            };
            match result {
                Ok(_) => {
                    self.ours.insert(a);
                    added += 1;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(added),
        }
    }

    /// Removes our addresses that are not in `keep`; returns how many were removed.
    pub fn remove_except(&mut self, keep: &BTreeSet<IpAddr>) -> Result<usize, AddressError> {
        let gone: Vec<IpAddr> = self.ours.difference(keep).copied().collect();
        let mut removed = 0;
        let mut first_error = None;
        for a in gone {
            let addr = match a {
                IpAddr::V4(v4) => format!("{v4}/32"),
                IpAddr::V6(v6) => format!("{v6}/128"),
            };
            match ip(&["addr", "del", &addr, "dev", "lo"]) {
                Ok(_) => {
                    self.ours.remove(&a);
                    removed += 1;
                }
                // Already gone (removed by hand): nothing left to own.
                Err(AddressError::Failed { stderr, .. })
                    if stderr.contains("Cannot assign requested address") =>
                {
                    self.ours.remove(&a);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}
