//! The flags for running in the cluster: `--events` / `--no-events` and
//! `--metrics-addr`, each refused where it would do nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Mode;
use crate::cli::Cli;
use crate::error::{Error, Result};

/// Whether Events are recorded: on by default with `--watch`, never in a
/// dry run (nothing is deleted, so there is nothing to explain).
pub(super) fn events(cli: &Cli, watch: bool, mode: Mode) -> Result<bool> {
    if cli.events && mode.is_dry_run() {
        return Err(Error::usage(
            "--events has no effect in a dry run: no object is deleted, so no Event is recorded",
        ));
    }
    if cli.no_events && mode.is_dry_run() {
        return Err(Error::usage(
            "--no-events has no effect in a dry run: a dry run records no Events",
        ));
    }
    if cli.no_events && !watch {
        return Err(Error::usage(
            "--no-events has no effect without --watch: Events are recorded only with --watch or --events",
        ));
    }
    Ok(mode == Mode::Apply && (cli.events || (watch && !cli.no_events)))
}

/// `--metrics-addr HOST:PORT`: an IP address (or `localhost`, or nothing for
/// every address) and a port other than 0. Only `--watch` serves it.
pub(super) fn metrics_addr(cli: &Cli, watch: bool) -> Result<Option<SocketAddr>> {
    let Some(text) = cli.metrics_addr.as_deref() else {
        return Ok(None);
    };
    if !watch {
        return Err(Error::usage(
            "--metrics-addr needs --watch: a single run ends before anything could scrape it",
        ));
    }
    let bad = |why: &str| {
        Error::usage(format!(
            "--metrics-addr {text:?}: {why}; give HOST:PORT, e.g. 0.0.0.0:9090, 127.0.0.1:9090 or :9090"
        ))
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(bad("port 0 would listen on a port nobody knows"));
    }
    let ip: IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse()
            .map_err(|_| bad("the host must be an IP address or localhost"))?,
    };
    Ok(Some(SocketAddr::new(ip, port)))
}
