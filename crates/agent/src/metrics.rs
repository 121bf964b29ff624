//! kube-proxy's metrics (`kubeproxy_*`, same names, labels, help and buckets) in the agent's one
//! `prometheus_client` Registry, and the text served on `/metrics`.
//!
//! `prometheus-client` writes OpenMetrics; kube-proxy (client_golang) answers a plain scrape in
//! the Prometheus text format 0.0.4. [`render`] gives OpenMetrics to a scraper that asks for it
//! (`Accept: application/openmetrics-text`) and otherwise the 0.0.4 text as kube-proxy prints it
//! (counter families named with `_total`, no `# EOF`, families sorted by name, numbers as Go
//! formats them), so `curl 127.0.0.1:10249/metrics | grep ^kubeproxy_` reads the same.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `ip_family="IPv4"` / `"IPv6"`, as kube-proxy labels per-family proxier metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IpFamilyLabel {
    pub ip_family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficPolicyLabels {
    pub ip_family: String,
    pub traffic_policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

type HistogramFamily = Family<IpFamilyLabel, Histogram, fn() -> Histogram>;
type TimestampFamily = Family<IpFamilyLabel, Gauge<f64, AtomicU64>>;

/// kube-proxy's `SyncProxyRulesLatency` buckets: `ExponentialBuckets(0.001, 2, 15)`.
fn sync_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// kube-proxy's `NetworkProgrammingLatency` buckets: 0, 0.25, 0.5, then 1..59 s by 1, 60..115 s
/// by 5, 120..300 s by 30 (as its transcript shows).
pub fn network_programming_buckets() -> Vec<f64> {
    let mut b = vec![0.0, 0.25, 0.5];
    b.extend((1..=59).map(f64::from));
    b.extend((0..12).map(|i| 60.0 + 5.0 * f64::from(i)));
    b.extend((0..7).map(|i| 120.0 + 30.0 * f64::from(i)));
    b
}

fn network_programming_histogram() -> Histogram {
    Histogram::new(network_programming_buckets())
}

/// The proxy's metrics; cheap to clone (every metric is shared).
#[derive(Clone)]
pub struct ProxyMetrics {
    pub sync_proxy_rules_duration: HistogramFamily,
    pub sync_full_proxy_rules_duration: HistogramFamily,
    pub sync_partial_proxy_rules_duration: HistogramFamily,
    pub network_programming_duration: HistogramFamily,
    pub endpoint_changes_pending: Gauge,
    pub endpoint_changes_total: Counter,
    pub service_changes_pending: Gauge,
    pub service_changes_total: Counter,
    pub last_queued_timestamp: TimestampFamily,
    pub last_timestamp: TimestampFamily,
    pub no_local_endpoints: Family<TrafficPolicyLabels, Gauge>,
    pub nftables_sync_failures: Family<IpFamilyLabel, Counter>,
    pub healthz_total: Family<CodeLabel, Counter>,
    pub livez_total: Family<CodeLabel, Counter>,
}

impl ProxyMetrics {
    /// Creates the metrics and registers them under `kubeproxy_`.
    pub fn register(registry: &mut Registry) -> ProxyMetrics {
        let hist = || HistogramFamily::new_with_constructor(sync_histogram as fn() -> Histogram);
        let m = ProxyMetrics {
            sync_proxy_rules_duration: hist(),
            sync_full_proxy_rules_duration: hist(),
            sync_partial_proxy_rules_duration: hist(),
            network_programming_duration: HistogramFamily::new_with_constructor(
                network_programming_histogram as fn() -> Histogram,
            ),
            endpoint_changes_pending: Gauge::default(),
            endpoint_changes_total: Counter::default(),
            service_changes_pending: Gauge::default(),
            service_changes_total: Counter::default(),
            last_queued_timestamp: TimestampFamily::default(),
            last_timestamp: TimestampFamily::default(),
            no_local_endpoints: Family::default(),
            nftables_sync_failures: Family::default(),
            healthz_total: Family::default(),
            livez_total: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("kubeproxy");
        // Help texts are kube-proxy's; prometheus-client appends a period, which `render`
        // removes again for the 0.0.4 text.
        r.register(
            "sync_proxy_rules_duration_seconds",
            "[ALPHA] SyncProxyRules latency in seconds",
            m.sync_proxy_rules_duration.clone(),
        );
        r.register(
            "sync_full_proxy_rules_duration_seconds",
            "[ALPHA] SyncProxyRules latency in seconds for full resyncs",
            m.sync_full_proxy_rules_duration.clone(),
        );
        r.register(
            "sync_partial_proxy_rules_duration_seconds",
            "[ALPHA] SyncProxyRules latency in seconds for partial resyncs",
            m.sync_partial_proxy_rules_duration.clone(),
        );
        r.register(
            "network_programming_duration_seconds",
            "[ALPHA] In Cluster Network Programming Latency in seconds",
            m.network_programming_duration.clone(),
        );
        r.register(
            "sync_proxy_rules_endpoint_changes_pending",
            "[ALPHA] Pending proxy rules Endpoint changes",
            m.endpoint_changes_pending.clone(),
        );
        r.register(
            "sync_proxy_rules_endpoint_changes",
            "[ALPHA] Cumulative proxy rules Endpoint changes",
            m.endpoint_changes_total.clone(),
        );
        r.register(
            "sync_proxy_rules_service_changes_pending",
            "[ALPHA] Pending proxy rules Service changes",
            m.service_changes_pending.clone(),
        );
        r.register(
            "sync_proxy_rules_service_changes",
            "[ALPHA] Cumulative proxy rules Service changes",
            m.service_changes_total.clone(),
        );
        r.register(
            "sync_proxy_rules_last_queued_timestamp_seconds",
            "[ALPHA] The last time a sync of proxy rules was queued",
            m.last_queued_timestamp.clone(),
        );
        r.register(
            "sync_proxy_rules_last_timestamp_seconds",
            "[ALPHA] The last time proxy rules were successfully synced",
            m.last_timestamp.clone(),
        );
        r.register(
            "sync_proxy_rules_no_local_endpoints_total",
            "[ALPHA] Number of services with a Local traffic policy and no endpoints",
            m.no_local_endpoints.clone(),
        );
        r.register(
            "sync_proxy_rules_nftables_sync_failures",
            "[ALPHA] Cumulative proxy nftables sync failures",
            m.nftables_sync_failures.clone(),
        );
        r.register(
            "proxy_healthz",
            "[ALPHA] Cumulative proxy healthz HTTP status",
            m.healthz_total.clone(),
        );
        r.register(
            "proxy_livez",
            "[ALPHA] Cumulative proxy livez HTTP status",
            m.livez_total.clone(),
        );
        m
    }

    pub fn family(ip_family: &str) -> IpFamilyLabel {
        IpFamilyLabel {
            ip_family: ip_family.to_string(),
        }
    }
}

/// OpenMetrics' content type, and the Prometheus text format's.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry as text: OpenMetrics if asked for, else the Prometheus 0.0.4 text.
/// Returns the content type with it.
pub fn render(registry: &Registry, openmetrics: bool) -> (String, &'static str) {
    let mut om = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut om, registry);
    if openmetrics {
        (om, OPENMETRICS_CONTENT_TYPE)
    } else {
        (openmetrics_to_prometheus(&om), PROMETHEUS_CONTENT_TYPE)
    }
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Rewrites prometheus-client's OpenMetrics text into the Prometheus 0.0.4 text client_golang
/// writes: families sorted by name, a counter family named with its `_total`, help without the
/// period prometheus-client appended, no `# UNIT`/`# EOF`, and numbers formatted as Go does.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    struct Block {
        name: String,
        help: Option<String>,
        kind: String,
        samples: Vec<String>,
    }
    let mut blocks: Vec<Block> = Vec::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            blocks.push(Block {
                name: name.to_string(),
                help: Some(help.strip_suffix('.').unwrap_or(help).to_string()),
                kind: "untyped".into(),
                samples: vec![],
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            match blocks.last_mut() {
                Some(b) if b.name == name => b.kind = kind.to_string(),
                _ => blocks.push(Block {
                    name: name.to_string(),
                    help: None,
                    kind: kind.to_string(),
                    samples: vec![],
                }),
            }
        } else if line.starts_with('#') || line.is_empty() {
            // `# UNIT`, `# EOF`.
        } else if let Some(b) = blocks.last_mut() {
            b.samples.push(go_sample(line));
        }
    }
    for b in &mut blocks {
        match b.kind.as_str() {
            "counter" => b.name.push_str("_total"),
            "info" => {
                b.name.push_str("_info");
                b.kind = "gauge".into();
            }
            "gauge" | "histogram" | "summary" => {}
            _ => b.kind = "untyped".into(),
        }
    }
    blocks.sort_by(|a, b| a.name.cmp(&b.name));
    for b in &mut blocks {
        // client_golang: series in label order; a histogram series' buckets, then its _sum and
        // _count. prometheus-client writes series in hash order, _sum and _count first. The sort
        // is stable, so buckets keep their order.
        b.samples.sort_by_cached_key(|s| series_key(s));
    }
    let mut out = String::with_capacity(om.len());
    for b in blocks {
        if let Some(h) = &b.help {
            out.push_str(&format!("# HELP {} {}\n", b.name, h));
        }
        out.push_str(&format!("# TYPE {} {}\n", b.name, b.kind));
        for s in b.samples {
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}

/// Sort key of a sample line: its labels without `le`, then bucket / sum / count.
fn series_key(line: &str) -> (String, u8) {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    let labels = match (line.find('{'), line.rfind('}')) {
        (Some(a), Some(b)) if a < b => split_labels(&line[a + 1..b])
            .into_iter()
            .filter(|p| !p.starts_with("le="))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let rank = if name.ends_with("_bucket") {
        0
    } else if name.ends_with("_sum") {
        1
    } else {
        2
    };
    (labels, rank)
}

/// One sample line with its value (and `le` label) in Go's number format, `le` last among the
/// labels as client_golang writes it.
fn go_sample(line: &str) -> String {
    // Exemplars (` # {...}`) are left as they are.
    if line.contains(" # ") {
        return line.to_string();
    }
    let Some((series, value)) = line.rsplit_once(' ') else {
        return line.to_string();
    };
    let value = value
        .parse::<f64>()
        .map(go_float)
        .unwrap_or_else(|_| value.to_string());
    let (Some(open), Some(body)) = (series.find('{'), series.strip_suffix('}')) else {
        return format!("{series} {value}");
    };
    let mut labels: Vec<String> = Vec::new();
    let mut le = None;
    for pair in split_labels(&body[open + 1..]) {
        match pair.strip_prefix("le=\"").and_then(|v| v.strip_suffix('"')) {
            Some(v) => {
                le = Some(
                    v.parse::<f64>()
                        .map(go_float)
                        .unwrap_or_else(|_| v.to_string()),
                )
            }
            None => labels.push(pair.to_string()),
        }
    }
    if let Some(le) = le {
        labels.push(format!("le=\"{le}\""));
    }
    format!("{}{{{}}} {value}", &series[..open], labels.join(","))
}

/// `a="x",b="y,z"` into its pairs (commas inside quoted values, and escapes, respected).
fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `strconv.FormatFloat(v, 'g', -1, 64)`, as client_golang writes numbers: the shortest digits
/// that round-trip, in exponent form when the decimal exponent is below -4 or at least 6 (Go
/// uses precision 6 for that decision when the precision is "shortest"): so
/// `1.7953037679536476e+09` but `35.972000949000005`, `300` but `1e+06`.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_format_as_in_the_kube_proxy_transcript() {
        assert_eq!(go_float(1.7953037679536476e9), "1.7953037679536476e+09");
        assert_eq!(go_float(35.972000949000005), "35.972000949000005");
        assert_eq!(go_float(31.0), "31");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(0.001), "0.001");
        assert_eq!(go_float(16.384), "16.384");
        assert_eq!(go_float(300.0), "300");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn names_types_and_help_match_kube_proxy() {
        let mut registry = Registry::default();
        let m = ProxyMetrics::register(&mut registry);
        m.sync_proxy_rules_duration
            .get_or_create(&ProxyMetrics::family("IPv4"))
            .observe(0.02);
        m.network_programming_duration
            .get_or_create(&ProxyMetrics::family("IPv4"))
            .observe(0.3);
        m.endpoint_changes_total.inc_by(103);
        m.no_local_endpoints
            .get_or_create(&TrafficPolicyLabels {
                ip_family: "IPv4".into(),
                traffic_policy: "external".into(),
            })
            .set(0);
        m.last_queued_timestamp
            .get_or_create(&ProxyMetrics::family("IPv4"))
            .set(1.7953037669802094e9);
        m.last_timestamp
            .get_or_create(&ProxyMetrics::family("IPv4"))
            .set(1.7953037679536476e9);
        let (text, ct) = render(&registry, false);
        assert_eq!(ct, PROMETHEUS_CONTENT_TYPE);
        // Lines copied from 14-kube-proxy.txt.
        for want in [
            "# HELP kubeproxy_sync_proxy_rules_duration_seconds [ALPHA] SyncProxyRules latency in seconds",
            "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
            "# HELP kubeproxy_network_programming_duration_seconds [ALPHA] In Cluster Network Programming Latency in seconds",
            "# HELP kubeproxy_sync_proxy_rules_endpoint_changes_total [ALPHA] Cumulative proxy rules Endpoint changes",
            "# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter",
            "# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_pending gauge",
            "# HELP kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds [ALPHA] The last time a sync of proxy rules was queued",
            "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds [ALPHA] The last time proxy rules were successfully synced",
            "# HELP kubeproxy_sync_proxy_rules_no_local_endpoints_total [ALPHA] Number of services with a Local traffic policy and no endpoints",
            "# TYPE kubeproxy_sync_proxy_rules_no_local_endpoints_total gauge",
            "# HELP kubeproxy_sync_proxy_rules_service_changes_total [ALPHA] Cumulative proxy rules Service changes",
            "kubeproxy_sync_proxy_rules_endpoint_changes_total 103",
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"external\"} 0",
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending 0",
            "kubeproxy_sync_proxy_rules_service_changes_pending 0",
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"} 1.7953037679536476e+09",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0\"} 0",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.25\"} 0",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.5\"} 1",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"270\"} 1",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"300\"} 1",
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 1",
            "kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"} 1",
            "kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.001\"} 0",
            "kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.032\"} 1",
            "kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"16.384\"} 1",
            "kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 0.02",
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        // Unused label families show no samples, as client_golang's vectors.
        assert!(!text.contains("kubeproxy_sync_proxy_rules_nftables_sync_failures_total{"));
        // Sorted by family name, as client_golang writes them.
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // The buckets of the programming histogram, in order, as in the transcript.
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kubeproxy_network_programming_duration_seconds_bucket"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(&les[..5], ["0", "0.25", "0.5", "1", "2"]);
        assert_eq!(les.len(), 82);
        assert!(les.windows(3).any(|w| w == ["59", "60", "65"]));
        assert!(les.windows(3).any(|w| w == ["115", "120", "150"]));
    }

    #[test]
    fn histogram_series_are_grouped_and_ordered_as_client_golang() {
        let mut registry = Registry::default();
        let m = ProxyMetrics::register(&mut registry);
        for f in ["IPv6", "IPv4"] {
            m.sync_proxy_rules_duration
                .get_or_create(&ProxyMetrics::family(f))
                .observe(0.5);
        }
        let (text, _) = render(&registry, false);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kubeproxy_sync_proxy_rules_duration_seconds"))
            .collect();
        assert_eq!(lines.len(), 2 * 18);
        assert!(lines[0].starts_with(
            "kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.001\"}"
        ));
        assert!(lines[16]
            .starts_with("kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"}"));
        assert!(lines[17]
            .starts_with("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}"));
        assert!(lines[18].contains("ip_family=\"IPv6\""));
    }

    #[test]
    fn label_values_with_commas_and_quotes_survive() {
        assert_eq!(
            go_sample(r#"x_bucket{le="1.0",path="/a,\"b\""} 2.0"#),
            r#"x_bucket{path="/a,\"b\"",le="1"} 2"#
        );
        assert_eq!(go_sample("x_total 3"), "x_total 3");
    }

    #[test]
    fn openmetrics_when_asked() {
        let mut registry = Registry::default();
        let m = ProxyMetrics::register(&mut registry);
        m.service_changes_total.inc();
        let (text, ct) = render(&registry, true);
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# TYPE kubeproxy_sync_proxy_rules_service_changes counter\n"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_service_changes_total 1\n"));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
    }
}
