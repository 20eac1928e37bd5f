use super::*;

fn err(text: &str) -> String {
    match parse("p.yaml", text, &Partial::default()) {
        Err(Error::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

const GOOD: &str = "\
apiVersion: crucible-clean/v1
kind: CleanupPolicy
priorities:
  high: 4
  low: 0.5
rules:
  - name: ci
    selector: test-id
    olderThan: 30m
    keepLast: 2
    keepFailedFor: 1d
  - name: rest
    selector: app=evaluation
    strategy: watermark
    highWatermark: 0.9
    lowWatermark: 0.6
    prefer: failed
";

#[test]
fn a_complete_file_parses_with_defaults_filled_in() {
    let p = parse("p.yaml", GOOD, &Partial::default()).unwrap();
    assert_eq!(p.priority_label, "crucible-clean/priority");
    assert_eq!(
        p.priorities,
        BTreeMap::from([("high".into(), 4.0), ("low".into(), 0.5)])
    );
    let ci = &p.rules[0].params;
    assert_eq!(ci.strategy, Strategy::Age, "olderThan implies age");
    assert_eq!(
        (ci.older_than, ci.keep_last, ci.keep_failed_for),
        (
            Some(Duration::from_secs(1800)),
            Some(2),
            Some(Duration::from_secs(86400))
        )
    );
    assert_eq!(
        (ci.high_watermark, ci.low_watermark, ci.threshold),
        (0.8, 0.5, 0.8)
    );
    let rest = &p.rules[1].params;
    assert_eq!(
        (
            rest.strategy,
            rest.high_watermark,
            rest.low_watermark,
            rest.prefer
        ),
        (Strategy::Watermark, 0.9, 0.6, Prefer::Failed)
    );
    assert_eq!(p.rules[1].selector.to_string(), "app=evaluation");
    let labels = BTreeMap::from([("crucible-clean/priority".to_string(), "high".to_string())]);
    assert_eq!(p.factor(&labels), 4.0);
    assert_eq!(p.factor(&BTreeMap::new()), 1.0);
}

#[test]
fn the_example_policy_parses() {
    let p = parse(
        "examples/policy.yaml",
        include_str!("../../../examples/policy.yaml"),
        &Partial::default(),
    )
    .unwrap();
    let names: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["test-runs", "quota-guard"]);
    assert_eq!(p.rules[1].params.strategy, Strategy::Watermark);
    assert_eq!(p.priorities.get("low"), Some(&0.5));
}

#[test]
fn the_example_with_hooks_parses_and_its_programs_are_beside_it() {
    let p = parse(
        "examples/policy-hooks.yaml",
        include_str!("../../../examples/policy-hooks.yaml"),
        &Partial::default(),
    )
    .unwrap();
    let pod = p.hooks.pod.as_ref().unwrap();
    assert_eq!(
        pod.command,
        ["examples/hooks/veto-annotated.py", "crucible-clean/hold"]
    );
    assert_eq!(pod.timeout, Duration::from_secs(10));
    let job = p.hooks.job.as_ref().unwrap();
    assert_eq!(job.command, ["examples/hooks/record.sh"]);
    assert_eq!(job.timeout, crate::request::predelete::DEFAULT_HOOK_TIMEOUT);
    for program in [&pod.command[0], &job.command[0]] {
        assert!(std::path::Path::new(program).is_file(), "{program}");
    }
}

#[test]
fn hooks_are_checked_where_they_are_written() {
    let with = |hooks: &str| format!("{GOOD}hooks:\n{hooks}");
    let p = parse(
        "dir/p.yaml",
        &with("  pod:\n    beforeDelete: [sh, -c, 'exit 0']\n"),
        &Partial::default(),
    )
    .unwrap();
    assert_eq!(
        p.hooks.pod.unwrap().command,
        ["sh", "-c", "exit 0"],
        "a bare name is looked up on PATH"
    );
    assert!(p.hooks.job.is_none());
    let here = with("  pod:\n    beforeDelete: [./h.sh]\n");
    let p = parse("p.yaml", &here, &Partial::default()).unwrap();
    assert_eq!(p.hooks.pod.unwrap().command, ["./h.sh"], "beside p.yaml");
    let p = parse("dir/p.yaml", &here, &Partial::default()).unwrap();
    assert_eq!(p.hooks.pod.unwrap().command, ["dir/h.sh"]);
    let p = parse(
        "dir/p.yaml",
        &with("  job:\n    beforeDelete: [/bin/x]\n"),
        &Partial::default(),
    )
    .unwrap();
    assert_eq!(p.hooks.job.unwrap().command, ["/bin/x"]);
    let m = err(&with("  pod:\n    beforeDelete: [x]\n    timeoutSecs: 3\n"));
    assert!(m.contains("line 21") && m.contains("timeoutSecs"), "{m}");
    let m = err(&with("  pods:\n    beforeDelete: [x]\n"));
    assert!(m.contains("line 19") && m.contains("pods"), "{m}");
    let m = err(&with("  pod:\n    timeoutSeconds: 3\n"));
    assert!(m.contains("beforeDelete"), "{m}");
    let m = err(&with("  pod:\n    beforeDelete: x\n"));
    assert!(m.contains("line 20"), "{m}");
    let m = err(&with(
        "  pod:\n    beforeDelete: [x]\n    timeoutSeconds: 3601\n",
    ));
    assert!(m.contains("line 21") && m.contains("timeoutSeconds"), "{m}");
    let p = parse(
        "p.yaml",
        &with("  pod:\n    beforeDelete: [x]\n    env: [SLACK_URL, _X1]\n"),
        &Partial::default(),
    )
    .unwrap();
    assert_eq!(p.hooks.pod.unwrap().env, ["SLACK_URL", "_X1"]);
    for bad in ["1X", "A-B", "''", "CRUCIBLE_NAME"] {
        let m = err(&with(&format!(
            "  pod:\n    beforeDelete: [x]\n    env: [OK, {bad}]\n"
        )));
        assert!(
            m.starts_with("policy file p.yaml, line 20") && m.contains("hooks.pod: env: "),
            "{bad}: {m}"
        );
    }
}

#[test]
fn flags_override_the_file() {
    let flags = Partial {
        older_than: Some(Duration::from_secs(60)),
        low_watermark: Some(0.3),
        ..Default::default()
    };
    let p = parse("p.yaml", GOOD, &flags).unwrap();
    assert_eq!(p.rules[0].params.older_than, Some(Duration::from_secs(60)));
    assert_eq!(p.rules[1].params.low_watermark, 0.3);
    assert_eq!(p.rules[1].params.high_watermark, 0.9);
    let flags = Partial {
        strategy: Some(Strategy::Pressure),
        ..Default::default()
    };
    assert!(parse("p.yaml", GOOD, &flags)
        .unwrap()
        .rules
        .iter()
        .all(|r| r.params.strategy == Strategy::Pressure));
    let m = match parse(
        "p.yaml",
        GOOD,
        &Partial {
            high_watermark: Some(0.55),
            ..Default::default()
        },
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("0.6 is not below 0.55"),
    };
    assert_eq!(m, "policy file p.yaml, line 12: rules[1] (rest): lowWatermark (0.6) must be below --high-watermark (0.55)");
}

#[test]
fn unknown_keys_and_bad_values_name_file_line_and_key() {
    let m = err("rules:\n  - name: a\n    selector: x=y\n    olderthan: 5m\n");
    assert!(
        m.starts_with("policy file p.yaml, line 4, column 5: rules[0]: unknown field `olderthan`"),
        "{m}"
    );
    let m = err("rules:\n  - name: a\n    selector: x=y\n    olderThan: 5 minutes\n");
    assert!(
        m.starts_with(
            "policy file p.yaml, line 4, column 16: rules[0].olderThan: invalid duration"
        ),
        "{m}"
    );
    let m = err("rules:\n  - name: a\n    selector: x=y\n    highWatermark: 1.5\n");
    assert!(
        m.starts_with(
            "policy file p.yaml, line 4, column 20: rules[0].highWatermark: must be a fraction"
        ),
        "{m}"
    );
    let m = err("priorities:\n  high: -1\nrules:\n  - name: a\n    selector: x=y\n");
    assert!(
        m.starts_with("policy file p.yaml, line 2, column 9: priorities.high:"),
        "{m}"
    );
    let m = err("rules:\n  - name: a\n    selector: 'x in (y'\n");
    assert!(
        m.starts_with("policy file p.yaml, line 3, column 15: rules[0].selector: invalid selector"),
        "{m}"
    );
    let m = err("rules:\n  - name: a\n    selector: x\n    strategy: fastest\n");
    assert!(
        m.contains("line 4") && m.contains("rules[0].strategy: unknown strategy \"fastest\""),
        "{m}"
    );
    let m = err("apiVersion: v2\nrules: []\n");
    assert!(m.contains("line 1") && m.contains("apiVersion"), "{m}");
    let m = err("rules: []\n");
    assert!(m.contains("no rules"), "{m}");
    let m = err("rule:\n  - name: a\n");
    assert!(
        m.contains("line 1, column 1") && m.contains("unknown field `rule`"),
        "{m}"
    );
}

#[test]
fn checks_across_keys_point_at_the_rule() {
    let m = err("rules:\n  - name: a\n    selector: x\n  - name: b\n    selector: y\n    highWatermark: 0.5\n    lowWatermark: 0.7\n");
    assert_eq!(m, "policy file p.yaml, line 4: rules[1] (b): lowWatermark (0.7) must be below highWatermark (0.5)");
    let m = err("rules:\n  - name: a\n    selector: x\n    strategy: age\n");
    assert!(
        m.contains("line 2") && m.contains("strategy age needs olderThan"),
        "{m}"
    );
    let m = err("rules:\n  - name: a\n    selector: x\n  - name: a\n    selector: y\n");
    assert!(m.contains("line 4") && m.contains("unique"), "{m}");
}

#[test]
fn flag_fractions_are_checked() {
    let p = |h: Option<f64>, l: Option<f64>| {
        validate_flags(&Partial {
            high_watermark: h,
            low_watermark: l,
            ..Default::default()
        })
    };
    assert_eq!(
        p(Some(0.8), Some(0.9)).unwrap_err().to_string(),
        "--low-watermark (0.9) must be below --high-watermark (0.8)"
    );
    assert_eq!(
        p(None, Some(0.8)).unwrap_err().to_string(),
        "--low-watermark (0.8) must be below --high-watermark (0.8)"
    );
    assert!(p(Some(1.2), None)
        .unwrap_err()
        .to_string()
        .starts_with("--high-watermark (1.2) must be a fraction"));
    assert!(p(None, Some(0.0)).is_err());
    assert!(p(Some(1.0), Some(0.1)).is_ok());
    assert!(validate_flags(&Partial {
        threshold: Some(0.0),
        ..Default::default()
    })
    .is_err());
}
