//! `dispatch-monitor`: see the library crate for the pieces.

fn main() -> std::process::ExitCode {
    dispatch_monitor::cli::main()
}
