//! `kubectl crucible-clean`: one inventory → select → plan → gate → execute →
//! report pipeline (see docs/architecture.md). Each stage is a module and
//! depends only on the stages before it and on the shared vocabulary;
//! `pipeline` wires them together and nothing imports it.

// The command line and the completion files, also used by the generator
// example and the tests.
pub mod cli;
pub mod completion;
pub mod error;
pub mod memory;

// Stages, in the order data flows through them.
mod archive;
mod client;
mod execute;
mod gate;
mod hooks;
mod inventory;
mod metrics;
mod pipeline;
mod plan;
mod planfile;
mod predelete;
mod report;
mod request;
mod select;

// Shared vocabulary, below every stage.
mod concurrency;
mod duration;
mod log;
mod model;
mod quantity;
mod quota;
mod retry;
mod selector;
mod stop;

pub use pipeline::run;
