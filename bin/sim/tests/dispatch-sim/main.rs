//! The `dispatch-sim` binary and the local stack script.

mod cli;
mod stack;
