//! kube-proxy's configuration as the agent reads it: the `KubeProxyConfiguration` that kubeadm
//! writes into `data["config.conf"]` of the `kube-proxy` ConfigMap in `kube-system`, our
//! command-line flags, and how the two are merged into the settings the proxy runs with.
//!
//! Precedence: a flag given on the command line wins, then the ConfigMap, then kube-proxy's
//! defaults. (kube-proxy itself ignores most flags once `--config` is given, and restarts when
//! the file changes; the agent applies a ConfigMap edit live instead.) A ConfigMap that does not
//! parse or validate is rejected as a whole: the agent keeps running with what it had and logs
//! why, so a typo in `kubectl edit` never takes the data plane down.

use ipnet::IpNet;
use serde::Deserialize;
use std::time::Duration;

/// The kube-proxy defaults the agent keeps (nftables mode).
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(30);
pub const DEFAULT_MIN_SYNC_PERIOD: Duration = Duration::from_secs(1);
pub const DEFAULT_CONFIG_SYNC_PERIOD: Duration = Duration::from_secs(15 * 60);
/// k3s's pod CIDR, Switchboard's default (kube-proxy has none).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";

/// The data plane this agent programs. `/proxyMode` answers its name.
pub const DATA_PLANE: &str = "nftables";

/// The schedulers the nftables data plane provides, by their IPVS names.
pub const NFTABLES_SCHEDULERS: [&str; 4] = ["random", "rr", "sh", "mh"];

/// The data plane of `mode: userspace` (`--proxy-mode userspace`): the `proxy-userspace` crate.
pub const USERSPACE: &str = "userspace";

/// Why `lc` is refused in nftables mode: said the same way at start (flag), on a ConfigMap edit
/// and for a Service's annotation.
pub const LC_REFUSED: &str =
    "the lc scheduler is provided by the userspace data plane (--proxy-mode userspace); \
     the nftables data plane offers random, rr, sh, mh";

/// The subset of `kubeproxy.config.k8s.io` `KubeProxyConfiguration` (v1alpha1 as kubeadm
/// writes it, plus the v1alpha2 top-level fields) that the agent acts on. Unknown fields are
/// ignored, as everything else kube-proxy has (conntrack, oomScoreAdj, ...) is not ours.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub mode: Option<String>,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    pub node_port_addresses: Option<Vec<String>>,
    pub config_sync_period: Option<String>,
    pub iptables: Option<ModeSection>,
    pub ipvs: Option<IpvsSection>,
    pub nftables: Option<ModeSection>,
    /// v1alpha2
    pub sync_period: Option<String>,
    /// v1alpha2
    pub min_sync_period: Option<String>,
    /// v1alpha2
    pub linux: Option<LinuxSection>,
    /// v1alpha2
    pub detect_local: Option<DetectLocal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeSection {
    pub masquerade_all: Option<bool>,
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpvsSection {
    pub scheduler: Option<String>,
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxSection {
    pub masquerade_all: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectLocal {
    #[serde(rename = "clusterCIDRs")]
    pub cluster_cidrs: Option<Vec<String>>,
}

/// The agent's knobs, each either set by its source or left to the next one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// kube-proxy's `mode` as asked for (`""`, `nftables`, `iptables`, `ipvs`, `userspace`).
    pub mode: Option<String>,
    /// Scheduler name as IPVS spells it.
    pub scheduler: Option<String>,
    /// `Some(vec![])` means the node's primary addresses (`primary`, kube-proxy's default).
    pub nodeport_addresses: Option<Vec<IpNet>>,
    pub cluster_cidrs: Option<Vec<IpNet>>,
    pub masquerade_all: Option<bool>,
    pub sync_period: Option<Duration>,
    pub min_sync_period: Option<Duration>,
    pub config_sync_period: Option<Duration>,
}

impl Settings {
    /// Field by field: ours where set, else `lower`'s.
    pub fn over(&self, lower: &Settings) -> Settings {
        Settings {
            mode: self.mode.clone().or_else(|| lower.mode.clone()),
            scheduler: self.scheduler.clone().or_else(|| lower.scheduler.clone()),
            nodeport_addresses: self
                .nodeport_addresses
                .clone()
                .or_else(|| lower.nodeport_addresses.clone()),
            cluster_cidrs: self
                .cluster_cidrs
                .clone()
                .or_else(|| lower.cluster_cidrs.clone()),
            masquerade_all: self.masquerade_all.or(lower.masquerade_all),
            sync_period: self.sync_period.or(lower.sync_period),
            min_sync_period: self.min_sync_period.or(lower.min_sync_period),
            config_sync_period: self.config_sync_period.or(lower.config_sync_period),
        }
    }

    /// Human-readable names of the fields set in both, with different values (flag overrides).
    pub fn conflicts(&self, lower: &Settings) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! check {
            ($f:ident, $name:literal) => {
                if let (Some(a), Some(b)) = (&self.$f, &lower.$f) {
                    if a != b {
                        out.push(format!("{} (flag {:?}, ConfigMap {:?})", $name, a, b));
                    }
                }
            };
        }
        check!(mode, "mode");
        check!(scheduler, "scheduler");
        check!(nodeport_addresses, "nodePortAddresses");
        check!(cluster_cidrs, "clusterCIDR");
        check!(masquerade_all, "masqueradeAll");
        check!(sync_period, "syncPeriod");
        check!(min_sync_period, "minSyncPeriod");
        check!(config_sync_period, "configSyncPeriod");
        out
    }
}

/// What the proxy runs with, after merging and validating.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// The mode as asked for; the data plane is [`USERSPACE`] for `userspace`, else
    /// [`DATA_PLANE`] (see [`Effective::data_plane`]).
    pub requested_mode: String,
    pub scheduler: String,
    /// Empty: the node's addresses.
    pub nodeport_addresses: Vec<IpNet>,
    pub cluster_cidrs: Vec<IpNet>,
    pub masquerade_all: bool,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub config_sync_period: Duration,
}

impl Effective {
    /// The data plane that serves the requested mode: `"userspace"` or `"nftables"`.
    pub fn data_plane(&self) -> &'static str {
        if self.requested_mode == USERSPACE {
            USERSPACE
        } else {
            DATA_PLANE
        }
    }
}

/// Resolves merged settings into what the proxy runs with. `Ok` carries notes worth a log
/// line (a mode served by nftables); `Err` says why the settings cannot be run.
pub fn resolve(s: &Settings) -> Result<(Effective, Vec<String>), String> {
    let mut notes = Vec::new();
    let mode = s.mode.clone().unwrap_or_default();
    let scheduler = match (mode.as_str(), s.scheduler.as_deref()) {
        ("" | "nftables" | "iptables" | "ipvs" | USERSPACE, Some(sched)) if !sched.is_empty() => {
            sched.to_string()
        }
        // IPVS's own default is round robin; users who switch the mode to ipvs expect it. So
        // was kube-proxy's userspace mode (its LoadBalancerRR).
        ("ipvs" | USERSPACE, _) => "rr".to_string(),
        _ => "random".to_string(),
    };
    match mode.as_str() {
        "" | "nftables" | USERSPACE => {}
        "iptables" | "ipvs" => notes.push(format!(
            "mode {mode:?} is served by the nftables data plane (same Service semantics; \
             IPVS schedulers rr, sh and mh are provided by nftables, /proxyMode answers \"nftables\")"
        )),
        other => {
            return Err(format!(
                "mode {other:?} is not supported: modes \"\", nftables, iptables and ipvs are served by the nftables data plane, userspace by the userspace data plane"
            ))
        }
    }
    if mode == USERSPACE {
        check_userspace_scheduler(&scheduler)?;
    } else {
        check_scheduler(&scheduler)?;
    }
    let min_sync_period = s.min_sync_period.unwrap_or(DEFAULT_MIN_SYNC_PERIOD);
    let sync_period = s.sync_period.unwrap_or(DEFAULT_SYNC_PERIOD);
    if sync_period.is_zero() {
        return Err("syncPeriod must be greater than 0".into());
    }
    let config_sync_period = s.config_sync_period.unwrap_or(DEFAULT_CONFIG_SYNC_PERIOD);
    if config_sync_period.is_zero() {
        return Err("configSyncPeriod must be greater than 0".into());
    }
    Ok((
        Effective {
            requested_mode: mode,
            scheduler,
            nodeport_addresses: s.nodeport_addresses.clone().unwrap_or_default(),
            cluster_cidrs: s
                .cluster_cidrs
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_CLUSTER_CIDR.parse().expect("valid CIDR")]),
            masquerade_all: s.masquerade_all.unwrap_or(false),
            sync_period,
            min_sync_period,
            config_sync_period,
        },
        notes,
    ))
}

/// Whether the nftables data plane provides a scheduler, and if not, why.
pub fn check_scheduler(name: &str) -> Result<(), String> {
    if NFTABLES_SCHEDULERS.contains(&name) {
        Ok(())
    } else if name == "lc" {
        Err(LC_REFUSED.to_string())
    } else {
        Err(format!(
            "unknown scheduler {name:?}: the nftables data plane offers random, rr, sh, mh; the userspace data plane (--proxy-mode userspace) also lc"
        ))
    }
}

/// Whether the userspace data plane provides a scheduler: all of them.
pub fn check_userspace_scheduler(name: &str) -> Result<(), String> {
    name.parse::<proxy_core::Scheduler>()
        .map(|_| ())
        .map_err(|e| format!("{e} (the userspace data plane offers them all)"))
}

/// Reads `data["config.conf"]` into settings. Every problem is reported, not just the first.
pub fn parse_config_conf(yaml: &str) -> Result<Settings, Vec<String>> {
    let c: KubeProxyConfiguration = serde_saphyr::from_str(yaml)
        .map_err(|e| vec![format!("config.conf is not a KubeProxyConfiguration: {e}")])?;
    let mut errors = Vec::new();
    if let Some(kind) = c.kind.as_deref() {
        if kind != "KubeProxyConfiguration" {
            errors.push(format!("kind is {kind:?}, expected KubeProxyConfiguration"));
        }
    }
    if let Some(av) = c.api_version.as_deref() {
        if !av.starts_with("kubeproxy.config.k8s.io/") {
            errors.push(format!("apiVersion {av:?} is not kubeproxy.config.k8s.io"));
        }
    }
    let mode = c.mode.clone().filter(|m| !m.is_empty());
    // The section kube-proxy reads for this mode: "" means iptables on Linux.
    let section: Option<&ModeSection> = match mode.as_deref() {
        Some("nftables") => c.nftables.as_ref(),
        Some("ipvs") => None,
        _ => c.iptables.as_ref(),
    };
    let (sec_sync, sec_min) = match mode.as_deref() {
        Some("ipvs") => c
            .ipvs
            .as_ref()
            .map(|s| (s.sync_period.clone(), s.min_sync_period.clone()))
            .unwrap_or_default(),
        _ => section
            .map(|s| (s.sync_period.clone(), s.min_sync_period.clone()))
            .unwrap_or_default(),
    };
    let mut duration = |field: &str, v: Option<String>| -> Option<Duration> {
        let v = v?;
        match parse_go_duration(&v) {
            // 0s is how kubeadm writes "unset": kube-proxy's defaulting fills it in.
            Ok(d) if d.is_zero() => None,
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(format!("{field}: {e}"));
                None
            }
        }
    };
    let sync_period =
        duration("syncPeriod", c.sync_period.clone()).or_else(|| duration("syncPeriod", sec_sync));
    let min_sync_period = duration("minSyncPeriod", c.min_sync_period.clone())
        .or_else(|| duration("minSyncPeriod", sec_min));
    let config_sync_period = duration("configSyncPeriod", c.config_sync_period.clone());
    // In ipvs mode kube-proxy reads iptables.masqueradeAll.
    let masquerade_all = c
        .linux
        .as_ref()
        .and_then(|l| l.masquerade_all)
        .or_else(|| match mode.as_deref() {
            Some("nftables") => c.nftables.as_ref().and_then(|s| s.masquerade_all),
            _ => c.iptables.as_ref().and_then(|s| s.masquerade_all),
        })
        // `false` is what kubeadm writes for "not set"; only `true` is a choice.
        .filter(|m| *m);
    let scheduler = c
        .ipvs
        .as_ref()
        .and_then(|i| i.scheduler.clone())
        .filter(|s| !s.is_empty());
    let cidr_strings: Option<Vec<String>> = c
        .detect_local
        .as_ref()
        .and_then(|d| d.cluster_cidrs.clone())
        .filter(|v| !v.is_empty())
        .or_else(|| {
            c.cluster_cidr
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.split(',').map(|p| p.trim().to_string()).collect())
        });
    let cluster_cidrs = match cidr_strings {
        None => None,
        Some(list) => match parse_cidrs(&list) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(format!("clusterCIDR: {e}"));
                None
            }
        },
    };
    let nodeport_addresses = match c.node_port_addresses.as_deref() {
        None | Some([]) => None,
        Some(list) => match parse_nodeport_addresses(list) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(format!("nodePortAddresses{e}"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        mode,
        scheduler,
        nodeport_addresses,
        cluster_cidrs,
        masquerade_all,
        sync_period,
        min_sync_period,
        config_sync_period,
    })
}

/// CIDRs as kube-proxy takes them; a bare address is not a CIDR.
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| format!("{s:?} is not a valid CIDR"))
        })
        .collect()
}

/// `nodePortAddresses` (and `--nodeport-addresses`): CIDRs, or `primary` alone, kube-proxy
/// 1.29+'s name for its default, the node's primary addresses (returned as an empty list).
/// Validated as kube-proxy's `validateKubeProxyNodePortAddress`: every bad item is named with
/// its index, `primary` next to CIDRs is refused (and ends the check, as there), a bare address
/// is not a CIDR.
pub fn parse_nodeport_addresses(list: &[String]) -> Result<Vec<IpNet>, String> {
    let items: Vec<&str> = list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let mut nets = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if *item == NODEPORT_ADDRESSES_PRIMARY {
            if i != 0 || items.len() != 1 {
                errors.push(format!(
                    "[{i}]: Invalid value: {item:?}: can't use both 'primary' and CIDRs"
                ));
            }
            break;
        }
        match item.parse::<IpNet>() {
            Ok(n) => nets.push(n.trunc()),
            Err(_) => errors.push(format!(
                "[{i}]: Invalid value: {item:?}: must be a valid CIDR{}",
                if item.parse::<std::net::IpAddr>().is_ok() {
                    " (a single address is written ADDRESS/32 or ADDRESS/128)"
                } else {
                    ""
                }
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(nets)
}

/// The `nodePortAddresses` value that means the node's primary addresses.
pub const NODEPORT_ADDRESSES_PRIMARY: &str = "primary";

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `15m0s`, `0`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let orig = s;
    let bad = || format!("invalid duration {orig:?}");
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("negative duration {orig:?}"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kubeadm init` writes (1.3x), trimmed of sections the agent ignores.
    const KUBEADM_DEFAULT: &str = r#"
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  networkName: ""
"#;

    #[test]
    fn kubeadm_default_sets_only_the_cluster_cidr() {
        let s = parse_config_conf(KUBEADM_DEFAULT).unwrap();
        assert_eq!(
            s,
            Settings {
                cluster_cidrs: Some(vec!["10.244.0.0/16".parse().unwrap()]),
                ..Settings::default()
            }
        );
        let (e, notes) = resolve(&s).unwrap();
        assert_eq!(e.scheduler, "random");
        assert_eq!(e.sync_period, DEFAULT_SYNC_PERIOD);
        assert_eq!(e.min_sync_period, DEFAULT_MIN_SYNC_PERIOD);
        assert!(notes.is_empty());
    }

    #[test]
    fn seed_edit_scheduler_sh_in_ipvs_mode() {
        // Seed 001: `kubectl edit cm kube-proxy -n kube-system`, mode "" -> "ipvs", scheduler "" -> "sh".
        let edited = KUBEADM_DEFAULT
            .replace("mode: \"\"", "mode: \"ipvs\"")
            .replace("scheduler: \"\"", "scheduler: \"sh\"");
        let s = parse_config_conf(&edited).unwrap();
        assert_eq!(s.mode.as_deref(), Some("ipvs"));
        assert_eq!(s.scheduler.as_deref(), Some("sh"));
        let (e, notes) = resolve(&s).unwrap();
        assert_eq!(e.scheduler, "sh");
        assert_eq!(
            notes.len(),
            1,
            "ipvs served by nftables is said once: {notes:?}"
        );
    }

    #[test]
    fn ipvs_mode_without_scheduler_is_round_robin_as_ipvs_defaults() {
        let edited = KUBEADM_DEFAULT.replace("mode: \"\"", "mode: ipvs");
        let (e, _) = resolve(&parse_config_conf(&edited).unwrap()).unwrap();
        assert_eq!(e.scheduler, "rr");
    }

    #[test]
    fn scheduler_without_ipvs_mode_still_applies() {
        // The acceptance edit: only ipvs.scheduler from random to rr.
        let edited = KUBEADM_DEFAULT.replace("scheduler: \"\"", "scheduler: rr");
        let (e, _) = resolve(&parse_config_conf(&edited).unwrap()).unwrap();
        assert_eq!(e.scheduler, "rr");
        assert_eq!(e.requested_mode, "");
    }

    #[test]
    fn lc_is_refused_naming_the_userspace_data_plane() {
        let edited = KUBEADM_DEFAULT.replace("scheduler: \"\"", "scheduler: lc");
        let err = resolve(&parse_config_conf(&edited).unwrap()).unwrap_err();
        assert_eq!(err, LC_REFUSED);
        assert!(
            err.contains("provided by the userspace data plane (--proxy-mode userspace)"),
            "{err}"
        );
        assert!(resolve(&Settings {
            scheduler: Some("wlc".into()),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn userspace_mode_takes_every_scheduler_and_defaults_to_rr() {
        for sched in ["random", "rr", "sh", "mh", "lc"] {
            let (e, notes) = resolve(&Settings {
                mode: Some("userspace".into()),
                scheduler: Some(sched.into()),
                ..Default::default()
            })
            .unwrap();
            assert_eq!((e.scheduler.as_str(), e.data_plane()), (sched, "userspace"));
            assert!(notes.is_empty(), "{notes:?}");
        }
        let edited = KUBEADM_DEFAULT
            .replace("mode: \"\"", "mode: userspace")
            .replace("scheduler: \"\"", "scheduler: lc");
        let (e, _) = resolve(&parse_config_conf(&edited).unwrap()).unwrap();
        assert_eq!((e.scheduler.as_str(), e.data_plane()), ("lc", "userspace"));
        let (e, _) = resolve(&Settings {
            mode: Some("userspace".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(e.scheduler, "rr");
        let (e, _) = resolve(&Settings::default()).unwrap();
        assert_eq!(e.data_plane(), "nftables");
    }

    #[test]
    fn unsupported_mode_is_refused() {
        let err = resolve(&Settings {
            mode: Some("kernelspace".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("kernelspace"), "{err}");
    }

    #[test]
    fn nftables_section_and_masquerade_all() {
        let yaml = "kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nmode: nftables\n\
                    nftables:\n  masqueradeAll: true\n  syncPeriod: 1m30s\n  minSyncPeriod: 250ms\n\
                    iptables:\n  syncPeriod: 5s\n\
                    nodePortAddresses: [192.168.1.0/24, \"fd00::/64\"]\nclusterCIDR: 10.42.0.0/16,fd42::/48\n";
        let s = parse_config_conf(yaml).unwrap();
        assert_eq!(s.masquerade_all, Some(true));
        assert_eq!(s.sync_period, Some(Duration::from_secs(90)));
        assert_eq!(s.min_sync_period, Some(Duration::from_millis(250)));
        assert_eq!(
            s.nodeport_addresses,
            Some(vec![
                "192.168.1.0/24".parse().unwrap(),
                "fd00::/64".parse().unwrap()
            ])
        );
        assert_eq!(s.cluster_cidrs.as_ref().map(|v| v.len()), Some(2));
    }

    #[test]
    fn v1alpha2_top_level_fields_win_over_sections() {
        let yaml = "apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n\
                    syncPeriod: 10s\nminSyncPeriod: 100ms\nlinux:\n  masqueradeAll: true\n\
                    iptables:\n  syncPeriod: 5s\ndetectLocal:\n  clusterCIDRs: [10.1.0.0/16]\n";
        let s = parse_config_conf(yaml).unwrap();
        assert_eq!(s.sync_period, Some(Duration::from_secs(10)));
        assert_eq!(s.min_sync_period, Some(Duration::from_millis(100)));
        assert_eq!(s.masquerade_all, Some(true));
        assert_eq!(s.cluster_cidrs, Some(vec!["10.1.0.0/16".parse().unwrap()]));
    }

    #[test]
    fn primary_node_port_addresses_mean_the_node_addresses() {
        let s = parse_config_conf("nodePortAddresses: [primary]\n").unwrap();
        assert_eq!(s.nodeport_addresses, Some(vec![]));
        let (e, _) = resolve(&s).unwrap();
        assert!(e.nodeport_addresses.is_empty());
        assert_eq!(
            parse_config_conf("nodePortAddresses: [primary, 10.0.0.0/8]\n").unwrap_err(),
            vec!["nodePortAddresses[0]: Invalid value: \"primary\": can't use both 'primary' and CIDRs"]
        );
        // ConfigMap `primary` and flag CIDRs: the flag wins, as any flag does.
        let flag = Settings {
            nodeport_addresses: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            ..Default::default()
        };
        assert_eq!(flag.over(&s).nodeport_addresses, flag.nodeport_addresses);
    }

    /// The flag takes the same values: `--nodeport-addresses primary` and CIDRs.
    #[test]
    fn nodeport_addresses_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            agent: crate::AgentArgs,
        }
        let settings = |args: &[&str]| {
            let mut argv = vec!["agent"];
            argv.extend(args);
            Cli::try_parse_from(argv).unwrap().agent.settings()
        };
        let primary = settings(&["--nodeport-addresses", "primary"]).unwrap();
        assert_eq!(primary.nodeport_addresses, Some(vec![]));
        let cidrs = settings(&["--nodeport-addresses", "192.168.1.0/24,fd00::/64"]).unwrap();
        assert_eq!(cidrs.nodeport_addresses.map(|v| v.len()), Some(2));
        assert_eq!(
            settings(&["--nodeport-addresses", "10.0.0.1"])
                .unwrap_err()
                .to_string(),
            "--nodeport-addresses: [0]: Invalid value: \"10.0.0.1\": must be a valid CIDR (a single \
             address is written ADDRESS/32 or ADDRESS/128)"
        );
        assert!(settings(&["--nodeport-addresses", "10.0.0.0/8,primary"]).is_err());
        assert_eq!(settings(&[]).unwrap().nodeport_addresses, None);
    }

    /// kube-proxy's `TestValidateKubeProxyNodePortAddress` cases.
    #[test]
    fn node_port_addresses_are_validated_as_kube_proxy_does() {
        let p = |v: &[&str]| {
            parse_nodeport_addresses(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        for ok in [
            &["127.0.0.0/8"][..],
            &["0.0.0.0/0"],
            &["::/0"],
            &["127.0.0.1/32", "1.2.3.0/24"],
            &["127.0.0.1/32"],
            &["::1/128"],
            &["3.4.5.0/24", "2001:db8::/32"],
            &["primary"],
        ] {
            assert!(p(ok).is_ok(), "{ok:?}: {:?}", p(ok));
        }
        assert_eq!(p(&["primary"]).unwrap(), vec![]);
        assert_eq!(
            p(&["10.1.2.3/24"]).unwrap(),
            vec!["10.1.2.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            p(&["foo"]).unwrap_err(),
            "[0]: Invalid value: \"foo\": must be a valid CIDR"
        );
        assert_eq!(
            p(&["127.0.0.1/32", "10.20.30.40", "1.2.3.0/24"]).unwrap_err(),
            "[1]: Invalid value: \"10.20.30.40\": must be a valid CIDR (a single address is \
             written ADDRESS/32 or ADDRESS/128)"
        );
        // Every bad item is named.
        let e = p(&["::0", "::1", "2001:db8::/32"]).unwrap_err();
        assert!(
            e.contains("[0]: Invalid value: \"::0\"") && e.contains("[1]: Invalid value: \"::1\""),
            "{e}"
        );
        assert!(p(&["::1/128", "2001:db8::/32", "2001:db8:xyz/64"])
            .unwrap_err()
            .starts_with("[2]: Invalid value: \"2001:db8:xyz/64\": must be a valid CIDR"));
        assert_eq!(
            p(&["primary", "127.0.0.1/32"]).unwrap_err(),
            "[0]: Invalid value: \"primary\": can't use both 'primary' and CIDRs"
        );
        assert_eq!(
            p(&["127.0.0.1/32", "primary"]).unwrap_err(),
            "[1]: Invalid value: \"primary\": can't use both 'primary' and CIDRs"
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let yaml =
            "clusterCIDR: 10.0.0.300/8\nnodePortAddresses: [nope]\nconfigSyncPeriod: 5 minutes\n";
        let errs = parse_config_conf(yaml).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(parse_config_conf("kind: [").is_err());
        assert!(parse_config_conf("kind: KubeletConfiguration\n").is_err());
    }

    #[test]
    fn flags_win_and_conflicts_are_named() {
        let flags = Settings {
            scheduler: Some("sh".into()),
            ..Default::default()
        };
        let cm = Settings {
            scheduler: Some("rr".into()),
            masquerade_all: Some(true),
            ..Default::default()
        };
        let merged = flags.over(&cm);
        assert_eq!(merged.scheduler.as_deref(), Some("sh"));
        assert_eq!(merged.masquerade_all, Some(true));
        assert_eq!(flags.conflicts(&cm).len(), 1);
    }

    #[test]
    fn go_durations() {
        let ms = |v| Duration::from_millis(v);
        for (s, d) in [
            ("0", ms(0)),
            ("0s", ms(0)),
            ("1s", ms(1000)),
            ("15m0s", ms(900_000)),
            ("1h2m3.5s", ms(3_723_500)),
            ("300ms", ms(300)),
            ("1.5h", ms(5_400_000)),
            ("100us", Duration::from_micros(100)),
        ] {
            assert_eq!(parse_go_duration(s), Ok(d), "{s}");
        }
        for s in ["", "5", "1x", "s", "-1s", "1.2.3s"] {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
    }
}
