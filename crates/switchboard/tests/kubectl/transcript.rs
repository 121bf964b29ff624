//! Reference transcripts: parse the recordings in `reference/`, replay selected commands against a
//! [`Cluster`], and compare output and exit code after normalising what legitimately differs
//! between two runs of the same command.
//!
//! A transcript is `#` header lines, then blocks of `$ command` (a heredoc body belongs to the
//! command), its interleaved stdout+stderr, and `[exit code: N]` (or `[exit code: N; output had
//! no trailing newline]`).
//!
//! Outputs are compared as *canonical lines*: tables (a header of upper-case column names, as
//! kubectl prints them) are cut into cells at the header's column offsets, so that a value of a
//! different length, which moves every column after it, is not a difference; every other line is
//! compared exactly, indentation included. Normalisation replaces only values that must differ:
//! times, uids, resourceVersions, ages in AGE columns, allocated ClusterIPs (10.96/16 in the
//! reference, 10.43/16 here), the API port and generateName suffixes. `generation` is kept.

mod compare;

pub use compare::*;

use crate::Cluster;
use regex::Regex;
use std::path::PathBuf;
use std::sync::LazyLock;

/// One recorded command.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// 0-based position in the file; plans refer to commands by it.
    pub index: usize,
    /// 1-based line of the `$ ` line in the file.
    pub line: usize,
    /// The `#` lines right before the command (its explanation in the recording).
    pub comment: String,
    pub command: String,
    pub output: String,
    pub exit_code: i32,
}

/// A parsed reference file.
pub struct Transcript {
    pub name: String,
    pub commands: Vec<Recorded>,
}

static EXIT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[exit code: (-?\d+)(; output had no trailing newline)?\]$").unwrap()
});
static HEREDOC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"#).unwrap());
static BARE_ASSIGNMENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*=\$\([^()]*\)$").unwrap());
static SHELL_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(timeout|sleep|kubectl|curl|wait|echo|cat|jq)\b|^[A-Za-z_][A-Za-z0-9_]*=")
        .unwrap()
});

impl Transcript {
    /// Directory of the fixture copies (part of the repository, so CI needs nothing else).
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kubectl/reference")
    }

    pub fn load(name: &str) -> Transcript {
        let path = Self::dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Transcript::parse(name, &text)
    }

    pub fn parse(name: &str, text: &str) -> Transcript {
        let lines: Vec<&str> = text.split('\n').collect();
        let mut commands = Vec::new();
        let mut comment: Vec<&str> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if let Some(first) = line.strip_prefix("$ ") {
                let start = i + 1;
                let mut command = vec![first];
                if let Some(term) = HEREDOC.captures(first).map(|c| c.get(1).unwrap().as_str()) {
                    loop {
                        i += 1;
                        let l = *lines
                            .get(i)
                            .unwrap_or_else(|| panic!("{name}:{start}: heredoc {term} never ends"));
                        command.push(l);
                        if l == term {
                            break;
                        }
                    }
                } else if BARE_ASSIGNMENT.is_match(first) {
                    // One recording (11) has a multi-line script without a heredoc: `RV=$(...)`
                    // alone on the `$` line, then more shell lines. Its output never starts with
                    // a shell command word, so take lines while they look like shell.
                    while lines.get(i + 1).is_some_and(|l| SHELL_LINE.is_match(l)) {
                        i += 1;
                        command.push(lines[i]);
                    }
                }
                i += 1;
                let mut output: Vec<&str> = Vec::new();
                let (exit_code, trailing_newline) = loop {
                    let l = *lines
                        .get(i)
                        .unwrap_or_else(|| panic!("{name}:{start}: no [exit code] line"));
                    if let Some(c) = EXIT_LINE.captures(l) {
                        break (c[1].parse().unwrap(), c.get(2).is_none());
                    }
                    output.push(l);
                    i += 1;
                };
                let mut output = output.join("\n");
                if trailing_newline && !output.is_empty() {
                    output.push('\n');
                }
                commands.push(Recorded {
                    index: commands.len(),
                    line: start,
                    comment: comment.join("\n"),
                    command: command.join("\n"),
                    output,
                    exit_code,
                });
                comment.clear();
            } else if line.starts_with('#') {
                comment.push(line);
            } else if line.trim().is_empty() {
                comment.clear();
            } else {
                panic!(
                    "{name}:{}: unexpected line outside a command: {line:?}",
                    i + 1
                );
            }
            i += 1;
        }
        Transcript {
            name: name.to_string(),
            commands,
        }
    }

    /// The command at `index`, checking that it contains `needle` (so plans stay readable and
    /// notice when a fixture changes).
    pub fn get(&self, index: usize, needle: &str) -> &Recorded {
        let r = self
            .commands
            .get(index)
            .unwrap_or_else(|| panic!("{}: no command #{index}", self.name));
        assert!(
            r.command.contains(needle),
            "{}: command #{index} (line {}) does not contain {needle:?}:\n{}",
            self.name,
            r.line,
            r.command
        );
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Replay plans

#[derive(Debug, Clone)]
pub enum Action {
    /// Run it and compare output and exit code with the recording.
    Compare,
    /// Run it for the state it creates; only the exit code is checked.
    Setup,
    /// Not run, for the reason given.
    Skip(&'static str),
}

/// What to do with one recorded command.
pub struct Step {
    pub index: usize,
    pub needle: &'static str,
    pub action: Action,
    pub extra: Extra,
    /// A shell filter both outputs go through before comparing (e.g. a `jq` projection that keeps
    /// what does not depend on features still missing).
    pub filter: Option<String>,
    /// Differences known to be the server's fault (see [`Step::known_server_bug`]).
    pub known_bugs: Vec<&'static str>,
    /// Randomly allocated values to learn after the command ran (see [`Step::learn`]).
    pub learn: Option<Learn>,
    /// A Service whose Endpoints and EndpointSlices must exist before the command runs.
    pub endpoints_of: Option<&'static str>,
    /// YAML lists whose order is not part of the result (see [`Step::unordered`]).
    pub unordered: Vec<&'static str>,
}

/// Values both runs allocated at random (node ports), read from our server after a step with
/// `kubectl get svc SERVICE -o jsonpath=JSONPATH` and paired, in order, with the values the
/// recording shows at that point. Later comparisons replace each pair by one placeholder.
#[derive(Debug, Clone)]
pub struct Learn {
    pub service: &'static str,
    pub jsonpath: &'static str,
    pub recorded: &'static str,
}

fn plan(index: usize, needle: &'static str, action: Action) -> Step {
    Step {
        index,
        needle,
        action,
        extra: Vec::new(),
        filter: None,
        known_bugs: Vec::new(),
        learn: None,
        endpoints_of: None,
        unordered: Vec::new(),
    }
}

/// Run the command and compare output and exit code with the recording.
pub fn compare(index: usize, needle: &'static str) -> Step {
    plan(index, needle, Action::Compare)
}

/// Run the command for the state it creates, checking only its exit code.
pub fn setup(index: usize, needle: &'static str) -> Step {
    plan(index, needle, Action::Setup)
}

/// Do not run the command, for `reason`.
pub fn skip(index: usize, needle: &'static str, reason: &'static str) -> Step {
    plan(index, needle, Action::Skip(reason))
}

impl Step {
    /// Extra normalisation for this command only, on both sides.
    pub fn normalise(mut self, pattern: &str, replacement: &str) -> Step {
        self.extra
            .push((Regex::new(pattern).unwrap(), replacement.to_string()));
        self
    }

    /// Marks a difference as a known server bug: it is still compared and printed, but does not
    /// fail the test — until the command matches, which fails the test so that the marker is
    /// removed. `TRANSCRIPT_STRICT=1` fails on known bugs as well.
    pub fn known_server_bug(mut self, description: &'static str) -> Step {
        self.known_bugs.push(description);
        self
    }

    /// Waits (up to 30 s) until the controllers have written `service`'s Endpoints and an
    /// EndpointSlice before running the command, which shows them: in the recording they were
    /// there by then, and on a loaded machine our controllers may be a moment late.
    pub fn after_endpoints_of(mut self, service: &'static str) -> Step {
        self.endpoints_of = Some(service);
        self
    }

    /// Compares the items of every YAML list under a `key:` line as a set, on both sides: for
    /// lists whose order upstream takes from a Go map (an EndpointSlice's `endpoints`).
    pub fn unordered(mut self, key: &'static str) -> Step {
        self.unordered.push(key);
        self
    }

    /// After the command, learns the randomly allocated values `jsonpath` prints for `service`
    /// (space-separated) and pairs them with `recorded`, the values the recording shows (see
    /// [`Learn`]). Only values allocated at random are learned; fixed ones must match.
    pub fn learn(
        mut self,
        service: &'static str,
        jsonpath: &'static str,
        recorded: &'static str,
    ) -> Step {
        self.learn = Some(Learn {
            service,
            jsonpath,
            recorded,
        });
        self
    }

    /// Pipes both the recorded and our output (stdout+stderr) through `filter` (a shell command
    /// reading stdin) before comparing. The exit code compared is still the command's.
    pub fn through(mut self, filter: &str) -> Step {
        self.filter = Some(filter.to_string());
        self
    }
}

/// Replays a transcript against a cluster, step by step, collecting every mismatch; the test
/// fails at [`Replay::finish`] with all of them, so one run shows every difference. The cluster
/// is passed to each call (not held), so a test can restart the server between steps.
pub struct Replay {
    pub transcript: Transcript,
    covered: Vec<bool>,
    failures: Vec<String>,
    known: Vec<String>,
    compared: usize,
    skipped: Vec<(usize, &'static str)>,
    /// The ClusterIP range our server was started with, as a [`Side`]'s normalisation rules.
    our_ips: Side,
    /// Learned allocations, newest first (a value released and allocated again maps to its
    /// latest placeholder): (recorded value, placeholder) and (our value, placeholder).
    learned_reference: Vec<(Regex, String)>,
    learned_ours: Vec<(Regex, String)>,
}

impl Replay {
    pub fn new(file: &str) -> Replay {
        let transcript = Transcript::load(file);
        let covered = vec![false; transcript.commands.len()];
        Replay {
            transcript,
            covered,
            failures: Vec::new(),
            known: Vec::new(),
            compared: 0,
            skipped: Vec::new(),
            our_ips: Side::Switchboard,
            learned_reference: Vec::new(),
            learned_ours: Vec::new(),
        }
    }

    /// For a server started with the reference's `--service-cidr 10.96.0.0/16` (so recorded
    /// commands naming ClusterIPs run unchanged): our output is normalised with its rules.
    pub fn with_reference_service_cidr(mut self) -> Replay {
        self.our_ips = Side::Reference;
        self
    }

    fn normalisers<'a>(&'a self, extra: &'a Extra) -> (Normaliser<'a>, Normaliser<'a>) {
        (
            Normaliser {
                ips: Side::Reference,
                learned: &self.learned_reference,
                extra,
            },
            Normaliser {
                ips: self.our_ips,
                learned: &self.learned_ours,
                extra,
            },
        )
    }

    fn learn(&mut self, cluster: &Cluster, rec: &Recorded, learn: &Learn) {
        let run = cluster.kubectl(&format!(
            "get svc {} -o jsonpath='{}'",
            learn.service, learn.jsonpath
        ));
        let ours: Vec<&str> = run.out.split_whitespace().collect();
        let recorded: Vec<&str> = learn.recorded.split_whitespace().collect();
        if run.code != 0 || ours.len() != recorded.len() {
            self.failures.push(format!(
                "{}\nlearning {} of service {}: expected {} values like {:?}, got (exit {}):\n{}",
                self.describe(rec),
                learn.jsonpath,
                learn.service,
                recorded.len(),
                learn.recorded,
                run.code,
                indent(&run.out)
            ));
            return;
        }
        for (r, o) in recorded.iter().zip(&ours) {
            let placeholder = format!("<ALLOCATED-{}>", self.learned_reference.len() + 1);
            let word = |v: &str| Regex::new(&format!(r"\b{}\b", regex::escape(v))).unwrap();
            self.learned_reference
                .insert(0, (word(r), placeholder.clone()));
            self.learned_ours.insert(0, (word(o), placeholder));
        }
    }

    pub fn run(&mut self, cluster: &Cluster, steps: Vec<Step>) {
        for step in steps {
            self.step(cluster, step);
        }
    }

    /// The recorded command at `index` (checked to contain `needle`).
    pub fn recorded(&self, index: usize, needle: &str) -> Recorded {
        self.transcript.get(index, needle).clone()
    }

    fn cover(&mut self, index: usize) {
        assert!(
            !self.covered[index],
            "{}: command #{index} planned twice",
            self.transcript.name
        );
        self.covered[index] = true;
    }

    pub fn step(&mut self, cluster: &Cluster, step: Step) {
        let rec = self.recorded(step.index, step.needle);
        self.cover(step.index);
        if let Some(service) = step.endpoints_of {
            cluster.sh(&format!(
                "for i in $(seq 300); do \
                   kubectl get endpoints {service} -o name >/dev/null 2>&1 && \
                   [ -n \"$(kubectl get endpointslices -l kubernetes.io/service-name={service} -o name)\" ] && exit 0; \
                   sleep 0.1; done; exit 1"
            ));
        }
        match step.action {
            Action::Skip(reason) => {
                self.skipped.push((step.index, reason));
                if std::env::var_os("TRANSCRIPT_TRY_SKIPPED").is_some() {
                    self.try_skipped(cluster, &rec, &step.extra);
                }
            }
            Action::Setup => {
                let run = cluster.sh(&rec.command);
                if run.code != rec.exit_code {
                    self.failures.push(format!(
                        "{}\nsetup command: exit code {} (recorded {})\noutput:\n{}",
                        self.describe(&rec),
                        run.code,
                        rec.exit_code,
                        indent(&run.out)
                    ));
                }
            }
            Action::Compare => {
                self.compared += 1;
                let (expected, actual) = match &step.filter {
                    None => (rec.output.clone(), cluster.sh(&rec.command)),
                    Some(filter) => {
                        let recorded = cluster
                            .work_dir()
                            .join(format!("recorded-{}.out", rec.index));
                        std::fs::write(&recorded, &rec.output).unwrap();
                        let expected = cluster.sh(&format!("{filter} < '{}'", recorded.display()));
                        assert_eq!(
                            expected.code, 0,
                            "filter {filter:?} failed on the recording:\n{}",
                            expected.out
                        );
                        // The command's own stderr goes through the filter too, as it was
                        // interleaved in the recording; pipefail keeps the command's exit code.
                        let run = cluster.sh(&format!("{{\n{}\n}} 2>&1 | {filter}", rec.command));
                        (expected.out, run)
                    }
                };
                let (mut expected, mut actual) = (expected, actual);
                for key in &step.unordered {
                    expected = sort_yaml_lists(&expected, key);
                    actual.out = sort_yaml_lists(&actual.out, key);
                }
                let what = self.describe(&rec);
                let filtered = step
                    .filter
                    .as_deref()
                    .map(|f| format!("\n(both outputs filtered through: {f})"))
                    .unwrap_or_default();
                let (want, got) = self.normalisers(&step.extra);
                let result = compare_normalised(
                    &expected,
                    &want,
                    rec.exit_code,
                    &actual.out,
                    &got,
                    actual.code,
                )
                .map_err(|msg| format!("{what}{filtered}\n{msg}"));
                let known = (!step.known_bugs.is_empty()).then(|| step.known_bugs.join("; "));
                self.record(result, known, &what);
            }
        }
        if let Some(learn) = &step.learn {
            self.learn(cluster, &rec, learn);
        }
    }

    /// With `TRANSCRIPT_TRY_SKIPPED=1`, skipped commands run anyway and report (without failing
    /// the test) whether they now match, to find the ones a new feature lets us enable. They
    /// change state too, so later results in such a run are only indicative.
    fn try_skipped(&self, cluster: &Cluster, rec: &Recorded, extra: &Extra) {
        let run = cluster.sh(&rec.command);
        let (want, got) = self.normalisers(extra);
        match compare_normalised(&rec.output, &want, rec.exit_code, &run.out, &got, run.code) {
            Ok(()) => eprintln!(
                "[try-skipped] {} #{} now MATCHES",
                self.transcript.name, rec.index
            ),
            Err(msg) => eprintln!("[try-skipped] {}\n{msg}", self.describe(rec)),
        }
    }

    fn record(&mut self, result: Result<(), String>, known_bug: Option<String>, what: &str) {
        let strict = std::env::var_os("TRANSCRIPT_STRICT").is_some();
        match (result, known_bug) {
            (Ok(()), None) => {}
            (Err(msg), None) => self.failures.push(msg),
            (Err(msg), Some(bug)) if strict => self
                .failures
                .push(format!("[known server bug: {bug}]\n{msg}")),
            (Err(msg), Some(bug)) => self.known.push(format!("[known server bug: {bug}]\n{msg}")),
            (Ok(()), Some(bug)) => self.failures.push(format!(
                "{what}\nmatches the reference now: remove its known_server_bug marker ({bug})"
            )),
        }
    }

    /// Records the result of a custom check (for example a filtered comparison).
    pub fn check(&mut self, what: &str, result: Result<(), String>) {
        let what = format!("── {}: {what} ──", self.transcript.name);
        self.record(result.map_err(|msg| format!("{what}\n{msg}")), None, &what);
    }

    fn describe(&self, rec: &Recorded) -> String {
        format!(
            "── {} #{} (line {}) ──\n$ {}",
            self.transcript.name, rec.index, rec.line, rec.command
        )
    }

    /// Checks that every recorded command was planned (compared, set up or skipped with a
    /// reason), prints the coverage, and fails with every mismatch found.
    pub fn finish(self) {
        if let Some(failures) = self.report() {
            panic!("{failures}");
        }
    }

    /// [`Replay::finish`] for several replays of one run: every file reports, then the test
    /// fails with all their mismatches.
    pub fn finish_all(replays: Vec<Replay>) {
        let failures: Vec<String> = replays.into_iter().filter_map(Replay::report).collect();
        if !failures.is_empty() {
            panic!("{}", failures.join("\n\n"));
        }
    }

    /// Takes over the allocations `previous` learned (for a file that continues its run).
    pub fn learned_from(&mut self, previous: &Replay) {
        self.learned_reference = previous.learned_reference.clone();
        self.learned_ours = previous.learned_ours.clone();
    }

    /// Prints the coverage and known bugs; returns the mismatches, if any.
    fn report(self) -> Option<String> {
        let missing: Vec<usize> = self
            .covered
            .iter()
            .enumerate()
            .filter(|(_, c)| !**c)
            .map(|(i, _)| i)
            .collect();
        assert!(
            missing.is_empty(),
            "{}: commands not in the plan: {missing:?}",
            self.transcript.name
        );
        eprintln!(
            "{}: {} commands, {} compared, {} skipped, {} known server bugs",
            self.transcript.name,
            self.transcript.commands.len(),
            self.compared,
            self.skipped.len(),
            self.known.len()
        );
        for k in &self.known {
            eprintln!("{k}\n");
        }
        (!self.failures.is_empty()).then(|| {
            format!(
                "{}: {} differences from the reference:\n\n{}",
                self.transcript.name,
                self.failures.len(),
                self.failures.join("\n\n")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heredocs_missing_newlines_and_comments() {
        let t = Transcript::parse(
            "x",
            "# header\n\n$ kubectl get ns\nNAME   STATUS\n[exit code: 0]\n\n# make one\n$ kubectl apply -f - <<'EOF'\nkind: X\n[exit code: 9]\nEOF\ncreated\n[exit code: 1; output had no trailing newline]\n\n$ true\n[exit code: 0]\n",
        );
        assert_eq!(t.commands.len(), 3);
        assert_eq!(t.commands[0].output, "NAME   STATUS\n");
        assert_eq!(
            t.commands[1].command,
            "kubectl apply -f - <<'EOF'\nkind: X\n[exit code: 9]\nEOF"
        );
        assert_eq!(t.commands[1].output, "created");
        assert_eq!(t.commands[1].exit_code, 1);
        assert_eq!(t.commands[1].comment, "# make one");
        assert_eq!(t.commands[2].output, "");
    }

    #[test]
    fn tables_compare_by_cell_and_ages_and_ips_are_normalised() {
        let reference = "NAME         TYPE        CLUSTER-IP     AGE\nkubernetes   ClusterIP   10.96.0.1      8s\nweb          ClusterIP   10.96.17.252   2m46s\n";
        let ours = "NAME         TYPE        CLUSTER-IP    AGE\nkubernetes   ClusterIP   10.43.0.1     0s\nweb          ClusterIP   10.43.1.2     1d\n";
        assert_eq!(compare_output(reference, 0, ours, 0, &Vec::new()), Ok(()));
        // ...but a real difference still fails, and a 10.96 address is not ours.
        let wrong = "NAME         TYPE        CLUSTER-IP    AGE\nkubernetes   NodePort    10.43.0.1     0s\nweb          ClusterIP   10.96.1.2     1d\n";
        let err = compare_output(reference, 0, wrong, 0, &Vec::new()).unwrap_err();
        assert!(
            err.contains("NodePort") && err.contains("10.96.1.2"),
            "{err}"
        );
    }

    #[test]
    fn empty_cells_in_tables_keep_their_column() {
        let reference = "NAME       SHORTNAMES   APIVERSION\nbindings                v1\nconfigmaps cm           v1\n";
        let lines = canonical_lines(reference, Side::Reference, &Vec::new());
        assert_eq!(lines[1], "| bindings |  | v1 |");
    }

    #[test]
    fn uids_times_resource_versions_and_random_suffixes_are_normalised() {
        let a = "uid: 9d107a2b-a6a3-4adf-8237-fb63730f6c1a\nresourceVersion: \"63\"\n\"time\":\"2026-11-21T23:27:54Z\"\n{\\\"resourceVersion\\\":\\\"5\\\"}\nnginx-service-9c9v9\n";
        let b = "uid: 00000000-0000-4000-8000-000000000001\nresourceVersion: \"7\"\n\"time\":\"2027-01-01T00:00:00Z\"\n{\\\"resourceVersion\\\":\\\"123\\\"}\nnginx-service-xk2pq\n";
        assert_eq!(compare_output(a, 0, b, 0, &Vec::new()), Ok(()));
        // generation is not normalised
        assert!(compare_output("generation: 1\n", 0, "generation: 2\n", 0, &Vec::new()).is_err());
    }

    #[test]
    fn every_reference_fixture_parses() {
        let mut files: Vec<_> = std::fs::read_dir(Transcript::dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
        assert!(files.len() >= 6, "{files:?}");
        for f in files {
            let t = Transcript::load(f.file_name().unwrap().to_str().unwrap());
            assert!(!t.commands.is_empty(), "{}", t.name);
        }
        // The one multi-line script without a heredoc (11 #1) keeps all its lines.
        let t = Transcript::load("11-watch-and-list-paging.txt");
        let script = &t.commands[1];
        assert!(
            script.command.ends_with("echo \"curl processes done\""),
            "{}",
            script.command
        );
        assert!(
            script.output.starts_with("service/watch-demo created\n"),
            "{}",
            script.output
        );
    }

    #[test]
    fn unordered_yaml_lists_compare_as_sets() {
        let a = "items:\n- endpoints:\n  - addresses:\n    - 10.0.0.2\n    nodeName: n\n  - addresses:\n    - 10.0.0.1\n  kind: X\n";
        let b = "items:\n- endpoints:\n  - addresses:\n    - 10.0.0.1\n  - addresses:\n    - 10.0.0.2\n    nodeName: n\n  kind: X\n";
        assert_eq!(
            sort_yaml_lists(a, "endpoints"),
            sort_yaml_lists(b, "endpoints")
        );
        assert_ne!(a, b);
        // A different item is still a difference.
        let c = b.replace("10.0.0.1", "10.0.0.3");
        assert_ne!(
            sort_yaml_lists(a, "endpoints"),
            sort_yaml_lists(&c, "endpoints")
        );
    }

    #[test]
    fn describe_endpoints_compare_unordered_without_the_zero_more_quirk() {
        let reference =
            "Endpoints:                10.42.0.14:80,10.42.0.11:80,10.42.0.12:80 + 0 more...\n";
        let ours = "Endpoints:                10.42.0.11:80,10.42.0.12:80,10.42.0.14:80\n";
        assert_eq!(compare_output(reference, 0, ours, 0, &Vec::new()), Ok(()));
        let other = "Endpoints:                10.42.0.11:80,10.42.0.12:80,10.42.0.15:80\n";
        assert!(compare_output(reference, 0, other, 0, &Vec::new()).is_err());
    }

    #[test]
    fn missing_trailing_newline_is_a_difference() {
        assert!(compare_output("{}", 0, "{}\n", 0, &Vec::new()).is_err());
    }
}
