use super::*;
use clap::CommandFactory;

#[test]
fn definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn the_help_explains_level_none_and_what_watch_needs() {
    let help = Cli::command()
        .term_width(1000)
        .render_long_help()
        .to_string();
    assert!(
        help.contains(
            "- none: No object is selected or deleted: only the quota section is reported"
        ),
        "{help}"
    );
    assert!(
        help.contains("(needs --yes, or --dry-run to preview):"),
        "{help}"
    );
}

#[test]
fn bare_dry_run_means_client() {
    let cli = Cli::try_parse_from(["x", "--dry-run", "--all"]).unwrap();
    assert_eq!(cli.dry_run, Some(DryRun::Client));
    let cli = Cli::try_parse_from(["x", "--dry-run=server", "--all"]).unwrap();
    assert_eq!(cli.dry_run, Some(DryRun::Server));
    let cli = Cli::try_parse_from(["x", "--all"]).unwrap();
    assert_eq!(cli.dry_run, None);
}

#[test]
fn concurrency_is_auto_or_a_number_from_1_to_256() {
    for bad in ["0", "257", "-1", "fast", "Auto", ""] {
        assert!(Cli::try_parse_from(["x", "--concurrency", bad]).is_err());
    }
    let parsed = |a: &[&str]| {
        Cli::try_parse_from([&["x"], a].concat())
            .unwrap()
            .concurrency
    };
    assert_eq!(parsed(&[]), Concurrency::Auto);
    assert_eq!(parsed(&["--concurrency", "auto"]), Concurrency::Auto);
    assert_eq!(parsed(&["--concurrency", "256"]), Concurrency::Fixed(256));
}
