//! podium's exit codes, and how a command's outcome maps to one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything asked for succeeded (also: stdout was closed by its reader, e.g. `\| head`) |
//! | 1 | some part failed: a backbone without a champion, a failed benchmark, a config that does not validate, problems found by `verify-hashes` |
//! | 2 | an error that stopped the command: bad usage, an unreadable or invalid config, a store that refused a request |
//! | 3 | the tracking store could not be reached (after the configured retries) |
//! | 130 | interrupted (Ctrl-C / SIGTERM) after cleaning up |
//!
//! docs/USER_GUIDE.md carries the same table; the CLI tests check each code.

use std::any::Any;
use std::io::Write;
use std::process::ExitCode;

use crate::output::escape_controls;

/// An error stopped the command.
pub const ERROR: u8 = 2;
/// The tracking store is unreachable.
pub const STORE_UNREACHABLE: u8 = 3;
/// The reader of stdout went away: not a failure of podium.
pub const BROKEN_PIPE: u8 = 0;

/// Prints the error (control characters escaped) and returns its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let message = format!("{err:#}");
    // stderr may be closed too; there is nobody to tell then.
    let _ = writeln!(std::io::stderr(), "error: {}", escape_controls(&message));
    ExitCode::from(code_of(err))
}

/// The exit code of an error that stopped a command.
pub fn code_of(err: &anyhow::Error) -> u8 {
    let unreachable = err.chain().any(podium_project::is_store_unreachable);
    if unreachable || podium_project::store_unreachable_seen() {
        STORE_UNREACHABLE
    } else {
        ERROR
    }
}

/// The exit code of a command that finished with `code`: a failure (some backbones failed)
/// while the tracking server could not be reached is [`STORE_UNREACHABLE`], whatever the
/// command reported per backbone; success stays success (a fallback did the job).
pub fn refine(code: ExitCode) -> ExitCode {
    if code != ExitCode::SUCCESS && podium_project::store_unreachable_seen() {
        ExitCode::from(STORE_UNREACHABLE)
    } else {
        code
    }
}

/// Makes a write to a closed stdout end the command quietly: Rust's `println!` panics on
/// EPIPE ("failed printing to stdout: Broken pipe"); that panic prints nothing, unwinds (so
/// guards still clean up) and becomes exit code [`BROKEN_PIPE`] in `main`.
pub fn quiet_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default_hook(info);
        }
    }));
}

/// Whether a panic payload is the standard library's failure to print to a closed pipe.
pub fn is_broken_pipe(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_store_has_its_own_code() {
        let unreachable = anyhow::Error::new(podium_project::MlflowError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            endpoint: "runs/search".into(),
            attempts: 3,
            message: "connection failed".into(),
        })
        .context("selecting champions");
        assert_eq!(code_of(&unreachable), STORE_UNREACHABLE);
        assert_eq!(code_of(&anyhow::anyhow!("bad config")), ERROR);
    }

    #[test]
    fn only_print_failures_on_a_closed_pipe_count_as_broken_pipe() {
        let payload: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_string());
        assert!(is_broken_pipe(payload.as_ref()));
        let other: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert!(!is_broken_pipe(other.as_ref()));
    }
}
