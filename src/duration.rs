//! Durations as users write them: `90s`, `30m`, `2h`, `7d`, `1h30m`.

use std::time::Duration;

/// Parses a sequence of `<integer><unit>` pairs, units `ms`, `s`, `m`, `h`,
/// `d`, `w`. A bare `0` is accepted (as kubectl accepts it for timeouts).
pub(crate) fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration; use e.g. 90s, 30m, 2h, 7d or 1h30m".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("invalid duration {input:?}; use e.g. 90s, 30m, 2h, 7d or 1h30m");
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(millis_per)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {input:?} is too large"))?;
    }
    if total > MAX.as_millis() as u64 {
        return Err(format!(
            "duration {input:?} is too large: at most 3650d (ten years)"
        ));
    }
    Ok(Duration::from_millis(total))
}

/// The longest duration accepted: beyond it, ages and deadlines stop being
/// meaningful (and date arithmetic would overflow).
const MAX: Duration = Duration::from_secs(3650 * 86_400);

/// Compact human form used in tables: `45s`, `12m`, `3h`, `5d` (as kubectl's AGE).
pub(crate) fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7_199 => format!("{}m", s / 60),
        7_200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// clap value parser that also takes a bare number as seconds, as kubectl's
/// `--request-timeout` does.
pub(crate) fn clap_parse_seconds(input: &str) -> Result<Duration, String> {
    match input.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => clap_parse(input),
    }
}

/// clap value parser.
pub(crate) fn clap_parse(input: &str) -> Result<Duration, String> {
    parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1w2d").unwrap(), Duration::from_secs(9 * 86400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_malformed_input_with_an_example() {
        for bad in ["", "30", "m", "1x", "-5m", "1.5h", "h1", "5 m", "1h30"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("90s"), "{bad:?}: {err}");
        }
        assert!(parse("99999999999999999999d").is_err());
        assert!(parse("999999999999999w").unwrap_err().contains("too large"));
        assert!(parse("99999999999d").unwrap_err().contains("too large"));
        assert!(parse("3650d").is_ok());
        assert!(parse("3651d").unwrap_err().contains("too large"));
    }

    #[test]
    fn human_ages_look_like_kubectl() {
        assert_eq!(human(chrono::Duration::seconds(5)), "5s");
        assert_eq!(human(chrono::Duration::seconds(600)), "10m");
        assert_eq!(human(chrono::Duration::seconds(3 * 3600)), "3h");
        assert_eq!(human(chrono::Duration::seconds(5 * 86400)), "5d");
        assert_eq!(human(chrono::Duration::seconds(-3)), "0s");
    }
}
