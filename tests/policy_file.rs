//! Policy files and quota flags that are wrong: exit 2 with one line naming
//! the file, the line and the key, before any connection to a cluster.

mod support;

use support::commands::{code, repo_root, stderr, PluginCmd};

fn usage_error(args: &[&str]) -> String {
    // Its KUBECONFIG does not exist: these runs must fail before they ever need one.
    let out = PluginCmd::new().args(args).output();
    assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

fn policy(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap().to_string();
    (dir, p)
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let (_d, p) = policy(
        "rules:\n  - name: ci\n    selector: test-id\n    olderThan: 30m\n    keepLastt: 2\n",
    );
    let err = usage_error(&["--policy", &p]);
    assert!(err.starts_with(&format!("error: policy file {p}, line 5, column 5: rules[0]: unknown field `keepLastt`, expected one of")), "{err}");
}

#[test]
fn bad_values_name_file_line_and_key() {
    let (_d, p) = policy("priorities:\n  high: 4\nrules:\n  - name: ci\n    selector: test-id\n    olderThan: half an hour\n");
    let err = usage_error(&["--policy", &p]);
    assert!(err.starts_with(&format!("error: policy file {p}, line 6, column 16: rules[0].olderThan: invalid duration \"half an hour\"")), "{err}");

    let (_d, p) = policy("rules:\n  - name: q\n    selector: app=evaluation\n    strategy: watermark\n    lowWatermark: 1.5\n");
    let err = usage_error(&["--policy", &p]);
    assert!(
        err.starts_with(&format!(
            "error: policy file {p}, line 5, column 19: rules[0].lowWatermark: must be a fraction"
        )),
        "{err}"
    );

    let (_d, p) = policy("rules:\n  - name: q\n    selector: app=evaluation\n    highWatermark: 0.5\n    lowWatermark: 0.7\n");
    let err = usage_error(&["--policy", &p]);
    assert_eq!(err, format!("error: policy file {p}, line 2: rules[0] (q): lowWatermark (0.7) must be below highWatermark (0.5)\n"));
}

#[test]
fn a_missing_policy_file_is_a_usage_error() {
    let err = usage_error(&["--policy", "/nonexistent/policy.yaml"]);
    assert!(
        err.starts_with("error: cannot read policy file /nonexistent/policy.yaml:"),
        "{err}"
    );
}

#[test]
fn watermark_flags_are_checked() {
    assert_eq!(
        usage_error(&[
            "--strategy",
            "watermark",
            "--high-watermark",
            "0.8",
            "--low-watermark",
            "0.9"
        ]),
        "error: --low-watermark (0.9) must be below --high-watermark (0.8)\n"
    );
    assert_eq!(
        usage_error(&["--strategy", "watermark", "--high-watermark", "0.4"]),
        "error: --low-watermark (0.5) must be below --high-watermark (0.4)\n"
    );
    assert!(usage_error(&["--strategy", "pressure", "--threshold", "0"])
        .starts_with("error: --threshold (0) must be a fraction"));
}

#[test]
fn watch_needs_yes() {
    let err = usage_error(&["--all", "--watch"]);
    assert!(
        err.contains("--watch runs unattended") && err.contains("--yes"),
        "{err}"
    );
    assert!(usage_error(&["--all", "--interval", "1m"]).contains("--interval needs --watch"));
}

#[test]
fn the_example_policy_is_valid() {
    // It parses and validates; the run then stops only because there is no cluster.
    let example = repo_root().join("examples").join("policy.yaml");
    let out = PluginCmd::new()
        .args(["--policy", example.to_str().unwrap(), "--dry-run"])
        .output();
    let err = stderr(&out);
    assert!(!err.contains("policy file"), "{err}");
    assert_ne!(code(&out), Some(0));
}
