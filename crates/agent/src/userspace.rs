//! The agent's choice of data plane: nftables (`proxy-nft`, modes `""`, `nftables`, `iptables`,
//! `ipvs`) or user space (`proxy-userspace`, mode `userspace`, the one with `lc`). The mode is
//! read at every sync, so a ConfigMap edit switches data planes without a restart; switching
//! removes what the other one left: the `switchboard` nftables tables, or the service
//! addresses on `lo` and the listeners.

use crate::config;
use crate::http::ProxyMode;
use crate::proxy::{DataPlane, DataPlaneFactory};
use proxy_core::{IpFamily, ProxyConfig, Snapshot};
use proxy_nft::{Nft, NftCli, NftProxier, SyncReport, Table};
use proxy_userspace::{Metrics, UserspaceProxier};
use tokio::runtime::Handle;

/// The data plane that follows the mode: at most one of the two exists at a time.
pub struct Switching {
    cfg: ProxyConfig,
    mode: &'static str,
    handle: Handle,
    metrics: Metrics,
    /// What `/proxyMode` answers: the data plane of the last successful sync.
    proxy_mode: ProxyMode,
    nft: Option<NftProxier>,
    userspace: Option<UserspaceProxier>,
    /// The other data plane's leftovers (from this run or an earlier one) are gone.
    swept: Option<&'static str>,
}

/// The factory the agent runs with: sockets of the userspace data plane run on the runtime
/// the factory is called from (the agent's).
pub fn factory(metrics: Metrics, proxy_mode: ProxyMode) -> DataPlaneFactory {
    std::sync::Arc::new(move |cfg| {
        Ok(Box::new(Switching {
            cfg,
            mode: config::DATA_PLANE,
            handle: Handle::current(),
            metrics: metrics.clone(),
            proxy_mode: proxy_mode.clone(),
            nft: None,
            userspace: None,
            swept: None,
        }) as Box<dyn DataPlane>)
    })
}

/// Deletes the `switchboard` tables of both families, if present.
fn delete_nft_tables() -> anyhow::Result<()> {
    let mut script = String::new();
    for f in IpFamily::ALL {
        let t = Table::new(f).qualified();
        // "add" first so that "delete" never fails on a missing table.
        script.push_str(&format!("add table {t}\ndelete table {t}\n"));
    }
    NftCli::default().apply(&script)?;
    Ok(())
}

impl DataPlane for Switching {
    fn set_config(&mut self, cfg: ProxyConfig) {
        if let Some(n) = &mut self.nft {
            if *n.config() != cfg {
                n.set_config(cfg.clone());
            }
        }
        if let Some(u) = &mut self.userspace {
            u.set_config(cfg.clone());
        }
        self.cfg = cfg;
    }

    fn set_mode(&mut self, data_plane: &'static str) {
        if data_plane != self.mode {
            tracing::info!(from = self.mode, to = data_plane, "switching data planes");
            self.mode = data_plane;
        }
    }

    fn sync(&mut self, snap: &Snapshot) -> anyhow::Result<SyncReport> {
        let report = self.sync_mode(snap)?;
        *self.proxy_mode.write().unwrap_or_else(|e| e.into_inner()) = self.mode;
        Ok(report)
    }
}

impl Switching {
    fn sync_mode(&mut self, snap: &Snapshot) -> anyhow::Result<SyncReport> {
        if self.mode == config::USERSPACE {
            if let Some(mut n) = self.nft.take() {
                // The proxier deletes both tables itself: no second sweep after it.
                n.cleanup()?;
                self.swept = Some(config::USERSPACE);
            }
            if self.swept != Some(config::USERSPACE) {
                // User space is also for nodes without nftables: no `nft`, nothing to remove.
                if let Err(e) = delete_nft_tables() {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not remove the nftables tables"
                    );
                }
                self.swept = Some(config::USERSPACE);
            }
            let u = match &mut self.userspace {
                Some(u) => u,
                None => self.userspace.insert(UserspaceProxier::new(
                    self.cfg.clone(),
                    self.handle.clone(),
                    Some(self.metrics.clone()),
                )?),
            };
            let r = u.sync(snap)?;
            return Ok(SyncReport {
                full: r.full,
                unchanged: r.unchanged,
                duration: r.duration,
                service_ports: r.service_ports,
                endpoints: r.endpoints,
                ..SyncReport::default()
            });
        }
        if let Some(mut u) = self.userspace.take() {
            u.cleanup()?;
        }
        if self.swept != Some(config::DATA_PLANE) {
            // Addresses a userspace run of an earlier agent left on lo. Not worth failing the
            // nftables data plane for (a node without `ip` never ran user space).
            let left = proxy_userspace::addresses::LoAddresses::adopt()
                .and_then(|mut left| left.remove_except(&Default::default()));
            if let Err(e) = left {
                tracing::warn!(error = %e, "could not remove service addresses left on lo by the userspace data plane");
            }
            self.swept = Some(config::DATA_PLANE);
        }
        let n = match &mut self.nft {
            Some(n) => n,
            None => self.nft.insert(NftProxier::new(self.cfg.clone())?),
        };
        Ok(n.sync(snap)?)
    }
}
