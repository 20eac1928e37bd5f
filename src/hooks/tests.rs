use super::*;
use std::path::Path;

fn sh(script: &str, timeout: u64) -> Hook {
    Hook {
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout: Duration::from_secs(timeout),
        env: vec![],
    }
}

async fn answer(script: &str) -> Answer {
    run(&sh(script, 10), &[], b"{}".to_vec()).await
}

#[tokio::test]
async fn exit_codes_decide() {
    assert_eq!(answer("exit 0").await, Answer::Proceed);
    assert_eq!(
        answer("echo '' >&2; echo 'under review' >&2; echo more >&2; exit 1").await,
        Answer::Veto("under review".into())
    );
    match answer("exit 1").await {
        Answer::Veto(m) => assert!(m.contains("without a message"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        answer("echo boom >&2; exit 3").await,
        Answer::Failed("hook sh exited 3: boom".into())
    );
    match answer("kill -SEGV $$").await {
        Answer::Failed(m) => assert!(m.contains("killed by signal 11"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stdin_and_environment_reach_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "cat > {0}.in; echo \"$CRUCIBLE_NAME\" > {0}.env",
        out.display()
    );
    let env = [("CRUCIBLE_NAME".to_string(), "pod-a".to_string())];
    let a = run(&sh(&script, 10), &env, br#"{"kind":"Pod"}"#.to_vec()).await;
    assert_eq!(a, Answer::Proceed);
    let stdin = std::fs::read_to_string(dir.path().join("out.in")).unwrap();
    assert_eq!(stdin, r#"{"kind":"Pod"}"#);
    let name = std::fs::read_to_string(dir.path().join("out.env")).unwrap();
    assert_eq!(name.trim(), "pod-a");
}

#[tokio::test]
async fn a_hook_that_does_not_read_stdin_is_fine() {
    let big = vec![b'x'; 1 << 20];
    assert_eq!(run(&sh("exit 0", 10), &[], big).await, Answer::Proceed);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    // The hook leaves a child that would outlive it.
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let t0 = std::time::Instant::now();
    match run(&sh(&script, 1), &[], vec![]).await {
        Answer::Failed(m) => assert!(m.contains("timed out after 1s"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    // Killed (gone, or a zombie until its reaper runs).
    let mut ok = false;
    for _ in 0..50 {
        if dead(pid.trim()) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the hook's child {pid} still runs");
}

/// The names of the variables a hook saw.
async fn env_seen(hook_env: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let mut hook = sh(&format!("env > {}", out.display()), 10);
    hook.env = hook_env.iter().map(|s| s.to_string()).collect();
    let ours = [("CRUCIBLE_NAME".to_string(), "pod-a".to_string())];
    assert_eq!(run(&hook, &ours, vec![]).await, Answer::Proceed);
    let mut names: Vec<String> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        // What sh itself adds.
        .filter(|k| !["PWD", "OLDPWD", "SHLVL", "_"].contains(&k.as_str()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_hook_gets_a_cleared_environment_and_what_the_policy_lists() {
    // Every variable of this process but the inherited ones, e.g. a token.
    let secrets: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| !INHERITED.contains(&k.as_str()) && !k.starts_with("CRUCIBLE_"))
        .collect();
    let secret = secrets
        .first()
        .expect("some variable in the test's environment");
    let mut expected: Vec<String> = INHERITED
        .iter()
        .filter(|k| std::env::var_os(k).is_some())
        .map(|k| k.to_string())
        .chain(["CRUCIBLE_NAME".to_string()])
        .collect();
    expected.sort();
    assert_eq!(env_seen(&[]).await, expected);
    let mut listed = expected.clone();
    listed.push(secret.clone());
    listed.sort();
    // A listed variable the cleaner lacks is left out.
    assert_eq!(
        env_seen(&[secret.as_str(), "CRUCIBLE_TEST_NOT_SET_ANYWHERE"]).await,
        listed
    );
}

/// Whether process `pid` is gone (not even a zombie).
#[cfg(target_os = "linux")]
fn gone(pid: &str) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` is gone or a zombie.
fn dead(pid: &str) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.is_empty() || s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn what_a_hook_leaves_running_is_killed_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = format!(
        "sleep 30 & echo $! > {}; echo done >&2; exit 0",
        pidfile.display()
    );
    let t0 = std::time::Instant::now();
    assert_eq!(run(&sh(&script, 60), &[], vec![]).await, Answer::Proceed);
    // Not the STDERR_AFTER_EXIT wait for a pipe its child held.
    assert!(t0.elapsed() < Duration::from_secs(20));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let mut ok = false;
    for _ in 0..50 {
        if dead(pid) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the hook's child {pid} still runs");
}

/// As PID 1 of a container, the cleaner is the parent of every orphan; a
/// subreaper is too, so this test makes itself one (Linux) and checks that
/// a hook's left-behind children are reaped, not left as zombies, while
/// hooks running at the same time each get their own exit status (no
/// blanket `waitpid(-1)` takes it from them).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hooks_orphans_are_reaped_and_other_hooks_keep_their_status() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes who adopts this
    // process's orphans.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let dir = tempfile::tempdir().unwrap();
    let runs = (0..8).map(|i| {
        let pidfile = dir.path().join(format!("{i}.pid"));
        // A grandchild (the subshell's sleep) as well as a child.
        let script = format!(
            "sleep 30 & (sleep 30 & echo $! > {0}.2; wait) & echo $! > {0}; sleep 0.{i}; echo 'code {i}' >&2; exit {1}",
            pidfile.display(),
            if i % 2 == 0 { 0 } else { 1 }
        );
        async move { (i, pidfile, run(&sh(&script, 60), &[], vec![]).await) }
    });
    for (i, pidfile, answer) in futures::future::join_all(runs).await {
        if i % 2 == 0 {
            assert_eq!(answer, Answer::Proceed, "hook {i}");
        } else {
            assert_eq!(answer, Answer::Veto(format!("code {i}")), "hook {i}");
        }
        for f in [pidfile.clone(), pidfile.with_extension("pid.2")] {
            let pid = std::fs::read_to_string(&f).unwrap();
            let pid = pid.trim();
            assert!(gone(pid), "hook {i}: {pid} is left (a zombie or running)");
        }
    }
}

#[tokio::test]
async fn a_program_that_cannot_start_is_a_failure() {
    let hook = Hook {
        command: vec!["./no-such-hook".into()],
        timeout: Duration::from_secs(5),
        env: vec![],
    };
    match run(&hook, &[], vec![]).await {
        Answer::Failed(m) => assert!(m.contains("could not start"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_first_line_is_trimmed_and_capped() {
    assert_eq!(first_line(b"\n  why  \nmore"), Some("why".into()));
    assert_eq!(first_line(b"   \n"), None);
    let long = "x".repeat(1000);
    assert_eq!(
        first_line(long.as_bytes()).unwrap().chars().count(),
        REASON_CHARS + 1
    );
}
