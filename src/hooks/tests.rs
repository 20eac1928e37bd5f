use super::*;

fn sh(script: &str, timeout: u64) -> Hook {
    Hook {
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout: Duration::from_secs(timeout),
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
    let stat = format!("/proc/{}/stat", pid.trim());
    // Killed (gone, or a zombie until its reaper runs).
    let mut gone = false;
    for _ in 0..50 {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        if s.is_empty() || s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the hook's child {pid} still runs");
}

#[tokio::test]
async fn a_program_that_cannot_start_is_a_failure() {
    let hook = Hook {
        command: vec!["./no-such-hook".into()],
        timeout: Duration::from_secs(5),
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
