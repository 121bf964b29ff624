//! Comparing a command's output with a recording: normalising what legitimately differs
//! between two runs (see the parent module's docs), cutting tables into cells, and a readable
//! line diff.

use regex::Regex;
use std::fmt::Write as _;
use std::sync::LazyLock;

/// Which run a text comes from: the reference allocated ClusterIPs from 10.96.0.0/16, we from
/// 10.43.0.0/16, and each side is only allowed its own range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Reference,
    Switchboard,
}

struct Rule {
    re: Regex,
    with: String,
}

fn rule(re: &str, with: &str) -> Rule {
    Rule {
        re: Regex::new(re).unwrap(),
        with: with.to_string(),
    }
}

static COMMON_RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // klog prefix of kubectl -v=N lines: I1121 23:27:51.627477   22047 loader.go:402]
        rule(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ ", "<KLOG> "),
        rule(r" in \d+ milliseconds", " in <N> milliseconds"),
        // RFC 3339 times (creationTimestamp, managedFields time, deletionTimestamp, ...)
        rule(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
            "<TIME>",
        ),
        // kubectl diff file headers
        rule(
            r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+ [+-]\d{4}",
            "<TIME>",
        ),
        rule(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<UID>",
        ),
        // resourceVersion in YAML, JSON and JSON inside a JSON string
        rule(
            r#"resourceVersion(\\?"?)(\s*:\s*)(\\?")\d+(\\?")"#,
            "resourceVersion${1}${2}${3}<RV>${4}",
        ),
        rule(r"127\.0\.0\.1:\d+", "127.0.0.1:<PORT>"),
        // generateName suffixes: 5 characters of the apiserver's alphabet (no vowels, no 0/1/3)
        rule(
            r"\b([a-z0-9][a-z0-9.]*-)[bcdfghjklmnpqrstvwxz2456789]{5}\b",
            "${1}<RAND>",
        ),
    ]
});

static REFERENCE_IPS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(r"\b10\.96\.0\.1\b", "<KUBERNETES-IP>"),
        rule(r"\b10\.96\.0\.0\b", "<SERVICE-NETWORK-IP>"),
        rule(r"\b10\.96\.\d{1,3}\.\d{1,3}\b", "<CLUSTER-IP>"),
    ]
});

static SWITCHBOARD_IPS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(r"\b10\.43\.0\.1\b", "<KUBERNETES-IP>"),
        rule(r"\b10\.43\.0\.0\b", "<SERVICE-NETWORK-IP>"),
        rule(r"\b10\.43\.\d{1,3}\.\d{1,3}\b", "<CLUSTER-IP>"),
    ]
});

static AGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:(?:\d+(?:ms|s|m|h|d|y))+|<invalid>|<unknown>)$").unwrap());
static TABLE_HEADER_CELL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z][A-Z0-9()/_.-]*(?: [A-Z][A-Z0-9()/_.-]*)*$").unwrap());
static TWO_SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s{2,}").unwrap());

/// Extra per-command normalisation: (pattern, replacement), applied after the common rules.
pub type Extra = Vec<(Regex, String)>;

/// How one side's text is normalised: the common rules, the ClusterIP range of `ips`, the values
/// this side allocated at random and that a replay learned (see [`Step::learn`]), then `extra`.
#[derive(Clone, Copy)]
pub struct Normaliser<'a> {
    pub ips: Side,
    pub learned: &'a [(Regex, String)],
    pub extra: &'a Extra,
}

fn normalise_text(s: &str, n: &Normaliser) -> String {
    let mut s = s.to_string();
    let ips = match n.ips {
        Side::Reference => &*REFERENCE_IPS,
        Side::Switchboard => &*SWITCHBOARD_IPS,
    };
    for r in COMMON_RULES.iter().chain(ips.iter()) {
        s = r.re.replace_all(&s, r.with.as_str()).into_owned();
    }
    for (re, with) in n.learned.iter().chain(n.extra) {
        s = re.replace_all(&s, with.as_str()).into_owned();
    }
    s
}

static DESCRIBE_ENDPOINTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(Endpoints:\s+)(\S.*?)(?: \+ (\d+) more\.\.\.)?$").unwrap());

/// `kubectl describe svc` lists a Service's endpoints in EndpointSlice order, which the
/// endpointslice controller takes from a Go map (so it differs between runs), and appends
/// " + 0 more..." when a not-ready endpoint comes right after the third ready one. The order and
/// that quirk are compared away; the addresses (and a real "+ N more") are not.
fn canonical_describe_endpoints(line: &str) -> String {
    let Some(c) = DESCRIBE_ENDPOINTS.captures(line) else {
        return line.to_string();
    };
    let mut items: Vec<&str> = c[2].split(',').collect();
    items.sort_unstable();
    let more = match c.get(3).map(|m| m.as_str()) {
        None | Some("0") => String::new(),
        Some(n) => format!(" + {n} more..."),
    };
    format!("{}{}{more}", &c[1], items.join(","))
}

/// A table header as kubectl's tabwriter prints it: column names at fixed character offsets.
struct Table {
    starts: Vec<usize>,
    age_columns: Vec<usize>,
}

impl Table {
    fn from_header(line: &str) -> Option<Table> {
        if line.starts_with(' ') {
            return None;
        }
        let cells = split_cells(line);
        if cells.len() < 2 || !cells.iter().all(|c| TABLE_HEADER_CELL.is_match(c)) {
            return None;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut starts = vec![0];
        for i in 2..chars.len() {
            if chars[i] != ' ' && chars[i - 1] == ' ' && chars[i - 2] == ' ' {
                starts.push(i);
            }
        }
        if starts.len() != cells.len() {
            return None;
        }
        let age_columns = cells
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.as_str(), "AGE" | "LAST SEEN"))
            .map(|(i, _)| i)
            .collect();
        Some(Table {
            starts,
            age_columns,
        })
    }

    /// Cells of a row: cut at the header's offsets when the row is aligned with it (it is, when
    /// both come from one tabwriter flush); else split at runs of 2+ spaces.
    fn cells(&self, row: &str) -> Vec<String> {
        let chars: Vec<char> = row.chars().collect();
        let aligned = self
            .starts
            .iter()
            .skip(1)
            .all(|&s| s >= chars.len() || (s > 0 && chars[s - 1] == ' '));
        let mut cells: Vec<String> = if aligned {
            let mut out = Vec::new();
            for (i, &s) in self.starts.iter().enumerate() {
                if s >= chars.len() {
                    out.push(String::new());
                    continue;
                }
                let end = self
                    .starts
                    .get(i + 1)
                    .copied()
                    .unwrap_or(chars.len())
                    .min(chars.len());
                out.push(chars[s..end].iter().collect::<String>().trim().to_string());
            }
            out
        } else {
            split_cells(row)
        };
        for &c in &self.age_columns {
            if let Some(cell) = cells.get_mut(c) {
                if AGE.is_match(cell) {
                    *cell = "<AGE>".to_string();
                }
            }
        }
        while cells.last().is_some_and(|c| c.is_empty()) {
            cells.pop();
        }
        cells
    }
}

fn split_cells(line: &str) -> Vec<String> {
    TWO_SPACES.split(line.trim()).map(str::to_string).collect()
}

/// The text as canonical lines (see the module docs). A missing final newline is a line of its own.
pub fn canonical_lines(text: &str, side: Side, extra: &Extra) -> Vec<String> {
    canonical_lines_with(
        text,
        &Normaliser {
            ips: side,
            learned: &[],
            extra,
        },
    )
}

/// [`canonical_lines`] with a full [`Normaliser`].
pub fn canonical_lines_with(text: &str, n: &Normaliser) -> Vec<String> {
    let mut out = Vec::new();
    let mut table: Option<Table> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            table = None;
            out.push(String::new());
            continue;
        }
        if let Some(t) = &table {
            let cells: Vec<String> = t.cells(line).iter().map(|c| normalise_text(c, n)).collect();
            out.push(format!("| {} |", cells.join(" | ")));
            continue;
        }
        if let Some(t) = Table::from_header(line) {
            out.push(format!("| {} |", split_cells(line).join(" | ")));
            table = Some(t);
            continue;
        }
        out.push(canonical_describe_endpoints(&normalise_text(line, n)));
    }
    if !text.is_empty() && !text.ends_with('\n') {
        out.push("<no trailing newline>".to_string());
    }
    out
}

/// A line diff (longest common subsequence) with 3 lines of context; `-` reference, `+` ours.
pub fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut ops: Vec<(char, &str)> = Vec::new();
    if n.saturating_mul(m) > 16_000_000 {
        ops.extend(expected.iter().map(|l| ('-', l.as_str())));
        ops.extend(actual.iter().map(|l| ('+', l.as_str())));
    } else {
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        let at = |i: usize, j: usize| i * (m + 1) + j;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[at(i, j)] = if expected[i] == actual[j] {
                    lcs[at(i + 1, j + 1)] + 1
                } else {
                    lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && expected[i] == actual[j] {
                ops.push((' ', &expected[i]));
                i += 1;
                j += 1;
            } else if j < m && (i == n || lcs[at(i, j + 1)] >= lcs[at(i + 1, j)]) {
                ops.push(('+', &actual[j]));
                j += 1;
            } else {
                ops.push(('-', &expected[i]));
                i += 1;
            }
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (c, _))| *c != ' ')
        .map(|(i, _)| i)
        .collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    let mut shown = 0;
    for (i, (c, l)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&k| k.abs_diff(i) <= 3);
        if !near {
            continue;
        }
        if last_shown.is_some_and(|p| p + 1 != i) || (last_shown.is_none() && i > 0) {
            out.push_str("   ...\n");
        }
        let _ = writeln!(out, "{c}  {l}");
        last_shown = Some(i);
        shown += 1;
        if shown > 300 {
            out.push_str("   ... (diff truncated)\n");
            break;
        }
    }
    out
}
/// Sorts the items of every block-style YAML list under a `KEY:` line (kubectl prints the
/// items at the key's indentation, each starting with `- `), keeping each item's lines together.
pub fn sort_yaml_lists(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = format!("{key}:");
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push_str(line);
        i += 1;
        let trimmed = line.trim_start();
        let key_line = trimmed.trim_start_matches("- ").trim_end() == header;
        if !key_line {
            continue;
        }
        let indent = line.len() - trimmed.len() + if trimmed.starts_with("- ") { 2 } else { 0 };
        let item_start = format!("{}- ", " ".repeat(indent));
        let mut items: Vec<String> = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            let l_indent = l.len() - l.trim_start().len();
            if l.starts_with(&item_start) {
                items.push(l.to_string());
            } else if l_indent > indent && !items.is_empty() {
                items.last_mut().unwrap().push_str(l);
            } else {
                break;
            }
            i += 1;
        }
        items.sort();
        out.extend(items);
    }
    out
}

/// Compares one command's output and exit code with a recording; `Err` holds a readable diff.
pub fn compare_output(
    expected: &str,
    expected_code: i32,
    actual: &str,
    actual_code: i32,
    extra: &Extra,
) -> Result<(), String> {
    compare_texts(
        expected,
        Side::Reference,
        expected_code,
        actual,
        actual_code,
        extra,
    )
}

/// [`compare_output`] with the expected text's side given (hand-written expectations use
/// Switchboard's 10.43.0.0/16 addresses).
pub fn compare_texts(
    expected: &str,
    expected_side: Side,
    expected_code: i32,
    actual: &str,
    actual_code: i32,
    extra: &Extra,
) -> Result<(), String> {
    compare_normalised(
        expected,
        &Normaliser {
            ips: expected_side,
            learned: &[],
            extra,
        },
        expected_code,
        actual,
        &Normaliser {
            ips: Side::Switchboard,
            learned: &[],
            extra,
        },
        actual_code,
    )
}

/// Compares two texts, each normalised its own way; `Err` holds a readable diff.
pub fn compare_normalised(
    expected: &str,
    want_normaliser: &Normaliser,
    expected_code: i32,
    actual: &str,
    got_normaliser: &Normaliser,
    actual_code: i32,
) -> Result<(), String> {
    let want = canonical_lines_with(expected, want_normaliser);
    let got = canonical_lines_with(actual, got_normaliser);
    let mut msg = String::new();
    if expected_code != actual_code {
        let _ = writeln!(
            msg,
            "exit code: expected {expected_code}, got {actual_code}"
        );
    }
    if want != got {
        let _ = writeln!(
            msg,
            "output differs (- reference, + switchboard; after normalisation):\n{}",
            diff(&want, &got)
        );
    }
    if msg.is_empty() {
        Ok(())
    } else {
        if want != got {
            let _ = write!(msg, "raw output:\n{}", indent(actual));
        }
        Err(msg)
    }
}

/// `s` indented by four spaces, line by line (for quoting outputs in messages).
pub fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
