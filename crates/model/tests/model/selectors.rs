//! Label selectors: every operator, printing, matching, and kube-apiserver's parse errors.

use model::selector::{format_labels, Operator, Selector};
use serde_json::json;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(s: &str) -> String {
    Selector::parse(s).expect_err(s).to_string()
}

const KEY_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

#[test]
fn each_operator_parses_prints_and_matches() {
    let nginx = labels(&[("app", "nginx"), ("tier", "web"), ("replicas", "3")]);
    let none = labels(&[]);
    let cases: &[(&str, &str, Operator, bool, bool)] = &[
        // selector, canonical string, operator, matches `nginx`, matches no labels
        ("app=nginx", "app=nginx", Operator::Equals, true, false),
        (
            "app==nginx",
            "app==nginx",
            Operator::DoubleEquals,
            true,
            false,
        ),
        ("app!=nginx", "app!=nginx", Operator::NotEquals, false, true),
        ("app!=other", "app!=other", Operator::NotEquals, true, true),
        (
            "app in (nginx, httpd)",
            "app in (httpd,nginx)",
            Operator::In,
            true,
            false,
        ),
        (
            "app notin (nginx)",
            "app notin (nginx)",
            Operator::NotIn,
            false,
            true,
        ),
        (
            "app notin (x,y)",
            "app notin (x,y)",
            Operator::NotIn,
            true,
            true,
        ),
        ("app", "app", Operator::Exists, true, false),
        ("!app", "!app", Operator::DoesNotExist, false, true),
        (
            "replicas>2",
            "replicas>2",
            Operator::GreaterThan,
            true,
            false,
        ),
        ("replicas<3", "replicas<3", Operator::LessThan, false, false),
        ("tier>2", "tier>2", Operator::GreaterThan, false, false),
    ];
    for (s, canonical, op, on_nginx, on_none) in cases {
        let sel = parse(s);
        assert_eq!(sel.to_string(), *canonical, "{s}");
        assert_eq!(sel.requirements()[0].operator(), *op, "{s}");
        assert_eq!(sel.matches(&nginx), *on_nginx, "{s} on app=nginx");
        assert_eq!(sel.matches(&none), *on_none, "{s} on no labels");
        assert_eq!(parse(canonical), sel, "{s} round trip");
    }
}

#[test]
fn requirements_are_anded_and_sorted_by_key() {
    let sel = parse(" tier = web ,app in (a,b),  !legacy");
    assert_eq!(sel.to_string(), "app in (a,b),!legacy,tier=web");
    assert!(sel.matches(&labels(&[("app", "a"), ("tier", "web")])));
    assert!(!sel.matches(&labels(&[("app", "a"), ("tier", "web"), ("legacy", "")])));
    assert!(!sel.matches(&labels(&[("app", "c"), ("tier", "web")])));
}

#[test]
fn whitespace_tabs_and_newlines_separate_tokens() {
    assert_eq!(parse("\tapp\n=\r\nnginx ").to_string(), "app=nginx");
    assert_eq!(parse("env in(a)").to_string(), "env in (a)");
}

#[test]
fn empty_values_and_keywords_as_values() {
    assert_eq!(parse("a=").requirements()[0].values(), [""]);
    assert!(parse("a=").matches(&labels(&[("a", "")])));
    assert_eq!(parse("a in ()").requirements()[0].values(), [""]);
    assert_eq!(parse("a in (,b)").requirements()[0].values(), ["", "b"]);
    assert_eq!(
        parse("a in (b,,c)").requirements()[0].values(),
        ["", "b", "c"]
    );
    assert_eq!(parse("a in (b,)").requirements()[0].values(), ["", "b"]);
    assert_eq!(parse("a in (b, b)").requirements()[0].values(), ["b"]);
    // `in` and `notin` are values inside a list, and keys where a key is expected.
    assert_eq!(parse("x in (in,notin)").to_string(), "x in (in,notin)");
    assert_eq!(parse("in=notin").to_string(), "in=notin");
    assert_eq!(
        parse("example.com/app-name=v1.2_x").to_string(),
        "example.com/app-name=v1.2_x"
    );
}

#[test]
fn empty_selector_matches_everything() {
    for s in ["", "   "] {
        let sel = parse(s);
        assert!(sel.is_empty());
        assert!(sel.matches(&labels(&[])));
        assert_eq!(sel.to_string(), "");
    }
}

#[test]
fn syntax_errors_name_the_token() {
    let ops = "in, notin, =, ==, !=, gt, lt";
    let cases: Vec<(&str, String)> = vec![
        (
            "a b",
            format!("unable to parse requirement: found 'b', expected: {ops}"),
        ),
        (
            "a in b",
            "unable to parse requirement: found 'b' expected: '('".into(),
        ),
        (
            "a in (b c)",
            "unable to parse requirement: found 'c', expected: ',' or ')'".into(),
        ),
        (
            "a in (b",
            "unable to parse requirement: found '', expected: ',' or ')'".into(),
        ),
        (
            "a in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier".into(),
        ),
        (
            "a in (b,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier".into(),
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier".into(),
        ),
        (
            "!=a",
            "found '!=', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "a=(b)",
            "unable to parse requirement: found '(', expected: identifier".into(),
        ),
        (
            "a!==b",
            "unable to parse requirement: found '=', expected: identifier".into(),
        ),
        ("a,", "found '', expected: identifier after ','".into()),
        ("a,,b", "found ',', expected: identifier after ','".into()),
        (
            ",a",
            "found ',', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "a=b c",
            "found 'c', expected: ',' or 'end of string'".into(),
        ),
        (
            "a=b=c",
            "found '=', expected: ',' or 'end of string'".into(),
        ),
        ("!a=b", "found '=', expected: ',' or 'end of string'".into()),
        (
            "(a)",
            "found '(', expected: !, identifier, or 'end of string'".into(),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(parse_err(s), want, "{s:?}");
    }
}

#[test]
fn invalid_keys_and_values_use_validation_messages() {
    assert_eq!(
        parse_err("a$b=c"),
        format!("unable to parse requirement: <nil>: Invalid value: \"a$b\": {KEY_REGEX}")
    );
    assert_eq!(
        parse_err("a=b$"),
        format!("unable to parse requirement: values[0][a]: Invalid value: \"b$\": {VALUE_REGEX}")
    );
    assert_eq!(
        parse_err("a in (b$, c$)"),
        format!(
            "unable to parse requirement: [values[0][a]: Invalid value: \"b$\": {VALUE_REGEX}, values[1][a]: Invalid value: \"c$\": {VALUE_REGEX}]"
        )
    );
    let long = "v".repeat(64);
    assert_eq!(
        parse_err(&format!("a={long}")),
        format!("unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters")
    );
    assert_eq!(
        parse_err("Example.com/a"),
        "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(
        parse_err("/a"),
        "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
    );
    assert_eq!(
        parse_err("a/"),
        format!("unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; {KEY_REGEX}")
    );
    assert_eq!(
        parse_err("a>b"),
        "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        parse_err("a<"),
        "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
}

#[test]
fn parse_errors_are_bad_requests() {
    let e: model::ApiError = Selector::parse("a b").unwrap_err().into();
    assert_eq!(e.code, 400);
    assert_eq!(e.reason, "BadRequest");
    assert!(e
        .message
        .starts_with("unable to parse requirement: found 'b'"));
}

#[test]
fn label_selector_objects() {
    let sel = Selector::from_label_selector(&json!({
        "matchLabels": {"app": "nginx"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"key": "zone", "operator": "Exists"}]
    }))
    .unwrap();
    assert_eq!(
        sel.to_string(),
        "app=nginx,!canary,env in (dev,prod),tier notin (db),zone"
    );
    assert!(sel.matches(&labels(&[("app", "nginx"), ("env", "dev"), ("zone", "a")])));
    assert!(!sel.matches(&labels(&[("app", "nginx"), ("env", "dev")])));
    assert!(!sel.matches(&labels(&[
        ("app", "nginx"),
        ("env", "dev"),
        ("zone", "a"),
        ("tier", "db")
    ])));
}

#[test]
fn null_label_selector_matches_nothing_and_empty_matches_everything() {
    let nothing = Selector::from_label_selector(&serde_json::Value::Null).unwrap();
    assert!(nothing.matches_nothing());
    assert!(!nothing.is_empty());
    assert!(!nothing.matches(&labels(&[])));
    let everything = Selector::from_label_selector(&json!({})).unwrap();
    assert!(everything.is_empty());
    assert!(everything.matches(&labels(&[("a", "b")])));
    let empty_lists =
        Selector::from_label_selector(&json!({"matchLabels": {}, "matchExpressions": []})).unwrap();
    assert!(empty_lists.is_empty());
}

#[test]
fn invalid_label_selector_objects() {
    let err = |v| Selector::from_label_selector(&v).unwrap_err().to_string();
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})),
        "\"Foo\" is not a valid label selector operator"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
        "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
        "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        err(json!({"matchLabels": {"a b": "c"}})),
        format!("key: Invalid value: \"a b\": {KEY_REGEX}")
    );
}

#[test]
fn service_selector_maps() {
    let sel = Selector::from_map_value(&json!({"app": "nginx", "tier": "web"}));
    assert_eq!(sel.to_string(), "app=nginx,tier=web");
    assert_eq!(sel.requires_exact_match("app"), Some("nginx"));
    assert_eq!(sel.requires_exact_match("other"), None);
    assert!(sel.matches_object(
        &json!({"metadata": {"labels": {"app": "nginx", "tier": "web", "x": "y"}}})
    ));
    assert!(!sel.matches_object(&json!({"metadata": {"labels": {"app": "nginx"}}})));
    assert_eq!(format_labels(&labels(&[("b", "2"), ("a", "1")])), "a=1,b=2");
    assert_eq!(format_labels(&labels(&[])), "<none>");
}

/// A tiny deterministic generator, so the round-trip tests need no extra crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Arbitrary token soup never panics the parser, and whatever parses prints back to a string
/// that parses to the same selector (the fuzz target of a parser, run deterministically).
#[test]
fn parse_print_parse_round_trip_on_token_soup() {
    const TOKENS: &[&str] = &[
        "a",
        "b",
        "app",
        "in",
        "notin",
        "example.com/k",
        "x_y",
        "1",
        "-",
        "=",
        "==",
        "!=",
        "!",
        ">",
        "<",
        "(",
        ")",
        ",",
        " ",
        "\t",
        "é",
        "$",
        "",
        "\0",
    ];
    let mut rng = Lcg(7);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let len = rng.next(9);
        let s: String = (0..len).map(|_| TOKENS[rng.next(TOKENS.len())]).collect();
        if let Ok(sel) = Selector::parse(&s) {
            parsed += 1;
            let printed = sel.to_string();
            assert_eq!(
                Selector::parse(&printed).as_ref(),
                Ok(&sel),
                "{s:?} printed as {printed:?}"
            );
        }
    }
    assert!(parsed > 1000, "only {parsed} inputs parsed");
}
