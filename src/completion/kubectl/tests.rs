use super::*;

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

fn want(s: &[&str]) -> Want {
    analyze(&command(), &words(s)).1
}

fn value(arg: &str, prefix: &str) -> Want {
    Want::Value {
        arg: arg.into(),
        prefix: prefix.into(),
    }
}

#[test]
fn the_word_under_the_cursor_decides() {
    assert_eq!(want(&[""]), Want::Nothing);
    assert_eq!(want(&[]), Want::Nothing);
    assert_eq!(want(&["--ca"]), Want::Flag("--ca".into()));
    assert_eq!(want(&["-"]), Want::Flag("-".into()));
    assert_eq!(want(&["--output", ""]), value("output", ""));
    assert_eq!(want(&["-o", "j"]), value("output", "j"));
    assert_eq!(want(&["--output=y"]), value("output", "y"));
    assert_eq!(want(&["-n", "cr"]), value("namespace", "cr"));
    assert_eq!(want(&["--context", ""]), value("context", ""));
    assert_eq!(want(&["--test-id", "r"]), value("test_id", "r"));
    assert_eq!(want(&["--eval-id="]), value("eval_id", ""));
    // A switch does not consume the next word.
    assert_eq!(want(&["--yes", ""]), Want::Nothing);
    // --dry-run's value must be attached with `=`.
    assert_eq!(want(&["--dry-run", ""]), Want::Nothing);
    assert_eq!(want(&["--dry-run="]), value("dry_run", ""));
    assert_eq!(want(&["--", "--o"]), Want::Nothing);
}

#[test]
fn connection_and_scope_flags_are_read_from_the_line() {
    let (line, _) = analyze(
        &command(),
        &words(&[
            "-n",
            "team-a",
            "--kubeconfig=/k",
            "--context",
            "ci",
            "-l",
            "app=x",
            "--all",
            "--test-id",
            "",
        ]),
    );
    assert_eq!(line.namespace.as_deref(), Some("team-a"));
    assert_eq!(line.kubeconfig, Some(PathBuf::from("/k")));
    assert_eq!(line.context.as_deref(), Some("ci"));
    assert_eq!(line.selector.as_deref(), Some("app=x"));
    assert!(line.given.contains("all"));
    let (line, _) = analyze(&command(), &words(&["-yA", "-nfoo", "--eval-id", ""]));
    assert!(line.all_namespaces && line.given.contains("yes"));
    assert_eq!(line.namespace.as_deref(), Some("foo"));
}

#[test]
fn flags_are_offered_by_prefix_without_hidden_or_given_ones() {
    let cmd = command();
    let names = |line: &Line, p: &str| -> Vec<String> {
        flag_candidates(&cmd, line, p)
            .into_iter()
            .map(|c| c.value)
            .collect()
    };
    assert_eq!(names(&Line::default(), "--cas"), ["--cascade"]);
    let all = names(&Line::default(), "--");
    assert!(all.contains(&"--namespace".to_string()) && all.contains(&"--help".to_string()));
    // A hidden flag (the definition has none today) is not offered.
    let with_hidden = command().arg(
        clap::Arg::new("internal")
            .long("internal")
            .hide(true)
            .action(clap::ArgAction::SetTrue),
    );
    let offered: Vec<String> = flag_candidates(&with_hidden, &Line::default(), "--")
        .into_iter()
        .map(|c| c.value)
        .collect();
    assert!(offered.contains(&"--namespace".to_string()));
    assert!(
        !offered.contains(&"--internal".to_string()),
        "hidden flags are not offered"
    );
    assert_eq!(names(&Line::default(), "-n"), ["-n"]);
    let (line, _) = analyze(
        &cmd,
        &words(&["--cascade", "orphan", "--test-id", "a", "--"]),
    );
    let after = names(&line, "--");
    assert!(
        !after.contains(&"--cascade".to_string()),
        "a flag given once is not offered again"
    );
    assert!(
        after.contains(&"--test-id".to_string()),
        "a repeatable flag is offered again"
    );
}

#[test]
fn fixed_values_come_from_the_definition() {
    let cmd = command();
    let fixed = |id: &str| match value_source(&cmd, id) {
        ValueSource::Fixed(v) => v.into_iter().map(|c| c.value).collect::<Vec<_>>(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(fixed("output"), ["table", "wide", "json", "yaml", "name"]);
    assert_eq!(fixed("level"), ["none", "pods", "jobs", "all"]);
    assert_eq!(fixed("cascade"), ["background", "foreground", "orphan"]);
    assert_eq!(fixed("age_from"), ["created", "finished"]);
    assert_eq!(fixed("dry_run"), ["client", "server"]);
    // The strategies' registry, not a list kept here.
    let strategies: Vec<&str> = crate::cli::Strategy::SELECTABLE
        .iter()
        .map(|s| s.name())
        .collect();
    assert_eq!(fixed("strategy"), strategies);
    assert_eq!(value_source(&cmd, "kubeconfig"), ValueSource::Files);
    assert_eq!(value_source(&cmd, "older_than"), ValueSource::Free);
}

#[test]
fn the_answer_ends_with_the_directive() {
    let a = Answer {
        candidates: vec![
            Suggestion::new("json", ""),
            Suggestion::new("--all", "Every\tfinished\nsecond line"),
        ],
        directive: directive::NO_FILE_COMP,
    };
    assert_eq!(a.render(), "json\n--all\tEvery finished\n:4\n");
}
