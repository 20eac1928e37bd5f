//! Test support for the integration tests, one module per concern:
//!
//! * [`commands`]: the plugin binary. [`PluginCmd`](commands::PluginCmd) is the one
//!   way to run it: a temp HOME and no cluster unless asked for, so tests of the pure
//!   CLI need none. Processes in the background to signal
//!   ([`Running`](commands::Running)), and reading what they printed.
//! * [`cluster`]: the control plane. One per test binary, started lazily by the first
//!   call to [`cluster()`](cluster::cluster) (which runs `tests/cluster/up` on a fresh
//!   temp dir and arranges `tests/cluster/down` to run once the test process has
//!   exited), or an already running one named by the environment variable
//!   `CRUCIBLE_TEST_CLUSTER=DIR` (a DIR started with `tests/cluster/up DIR`). If the
//!   cluster cannot be started every test that needs it fails with the log tail;
//!   nothing is skipped. Also private clusters
//!   ([`PrivateCluster`](cluster::PrivateCluster)), kubeconfigs, clients, kubectl.
//! * [`objects`]: every test works in its own namespace
//!   ([`TestNamespace`](objects::TestNamespace)), so tests can run in parallel without
//!   seeing each other's objects. Pods of Jobs ([`EvalJob`](objects::EvalJob)) are
//!   driven by kwok (see `tests/cluster/kwok.yaml`): Pending -> Running -> Succeeded
//!   about 1-1.5 s after they are scheduled, or Failed when the pod carries
//!   `KWOK_FAIL_LABEL`, or still Running for as long as
//!   `KWOK_COMPLETE_DELAY_ANNOTATION` says. Bare pods in a finished phase
//!   ([`BarePod`](objects::BarePod)) are created deterministically on `STATIC_NODE`, a
//!   node name nobody manages, with their status written through the status
//!   subresource.
//! * [`audit`]: the API server's audit log, to tell who sent which request.
//! * [`terminal`]: the plugin on a pseudo-terminal
//!   ([`on_a_terminal_until`](terminal::on_a_terminal_until)), for the prompt and `-i`'s list.
//! * [`logs`]: container logs served by the fake nodes (kwok `Logs` objects), pods on
//!   the fake nodes that fail, and Events, for the tests of `--archive`.
//! * [`metrics`]: `--metrics-addr` from the outside: HTTP GETs, `/readyz`, a
//!   family's sum from `/metrics`.
//! * [`wait`]: [`poll_until`](wait::poll_until) and the `wait_*` helpers.
//! * [`krew`]: krew and its manifest validator, built once from the Go module proxy,
//!   and a krew installation of its own ([`Krew`](krew::Krew)), for the release archive.
//!
//! Use from an integration test file with `mod support;` and a `use` of the modules
//! it needs, e.g. `use support::{commands::*, objects::*};` (an unused one warns).
//!
//! Every test binary compiles all of these modules but uses only part of them, and
//! rustc judges dead code per binary: `audit`, `cluster`, `commands`, `krew`, `logs`, `metrics`,
//! `objects` and `terminal` therefore allow dead code at their top. `wait` needs no such allowance
//! (all of it is reachable from `objects`).

pub mod audit;
pub mod cluster;
pub mod commands;
pub mod krew;
pub mod logs;
pub mod metrics;
pub mod objects;
pub mod terminal;
pub mod wait;
