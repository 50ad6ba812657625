//! podium's exit codes, and how a command's outcome maps to one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything asked for succeeded (also: stdout was closed by its reader, e.g. `\| head`) |
//! | 1 | some part failed: a backbone without a champion, a failed benchmark, a config that does not validate, problems found by `verify-hashes` |
//! | 2 | an error that stopped the command: bad usage, an unreadable or invalid config, a store that refused a request, output that could not be written (a full disk) |
//! | 3 | the tracking store could not be reached (after the configured retries) |
//! | 130 | interrupted (Ctrl-C / SIGTERM) after cleaning up |
//!
//! docs/USER_GUIDE.md carries the same table; the CLI tests check each code.

use std::any::Any;
use std::io::Write;
use std::process::ExitCode;

use crate::output::escape_line;

/// An error stopped the command.
pub const ERROR: u8 = 2;
/// The tracking store is unreachable.
pub const STORE_UNREACHABLE: u8 = 3;
/// The reader of stdout went away: not a failure of podium.
pub const BROKEN_PIPE: u8 = 0;

/// Prints the error (control characters and line breaks escaped: one line) and returns its
/// exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let message = chain_text(err);
    // stderr may be closed too; there is nobody to tell then.
    let _ = writeln!(std::io::stderr(), "error: {}", escape_line(&message));
    ExitCode::from(code_of(err))
}

/// The error and its causes, `outer: cause: …`, each cause said once: an error whose own
/// message already ends with its cause's (`{context}: {source}`) does not repeat it.
pub fn chain_text(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
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

/// Makes a failed write to stdout end the command without a panic message: Rust's `println!`
/// panics when it cannot print ("failed printing to stdout: Broken pipe", "…: No space left on
/// device"); that panic prints nothing, unwinds (so guards still clean up) and becomes, in
/// `main`, exit code [`BROKEN_PIPE`] for a reader that went away, or [`ERROR`] with a message
/// for anything else (a full disk, a device error): the output is incomplete.
pub fn quiet_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if print_failure(info.payload()).is_none() {
            default_hook(info);
        }
    }));
}

/// The standard library's message when a panic payload is its failure to print to stdout or
/// stderr (`failed printing to stdout: …`), else `None`.
pub fn print_failure(payload: &(dyn Any + Send)) -> Option<&str> {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    message
        .starts_with("failed printing to std")
        .then_some(message)
}

/// The exit code of a command whose output could not be written (`message`, from
/// [`print_failure`] or a failed flush): 0 when the reader went away (EPIPE), else an error
/// saying why on stderr (stdout on a full disk: "No space left on device").
pub fn output_failed(message: &str) -> ExitCode {
    let code = output_failure_code(message);
    if code != BROKEN_PIPE {
        let _ = writeln!(
            std::io::stderr(),
            "error: the output is incomplete: {}",
            escape_line(message)
        );
    }
    ExitCode::from(code)
}

/// [`output_failed`]'s exit code: [`BROKEN_PIPE`] when the reader went away, else [`ERROR`].
fn output_failure_code(message: &str) -> u8 {
    if message.contains("Broken pipe") {
        BROKEN_PIPE
    } else {
        ERROR
    }
}

#[cfg(test)]
mod tests {
    use podium_project::MlflowError;

    use super::*;

    #[test]
    fn unreachable_store_has_its_own_code() {
        let unreachable = anyhow::Error::new(MlflowError::Unreachable {
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
    fn each_cause_is_said_once() {
        let inner = std::io::Error::other("an empty file: not an MLflow tracking database");
        let err = anyhow::Error::new(std::io::Error::other(format!("opening the store: {inner}")))
            .context("selecting");
        assert_eq!(
            chain_text(&err),
            "selecting: opening the store: an empty file: not an MLflow tracking database"
        );
        let plain = anyhow::anyhow!("cause").context("outer");
        assert_eq!(chain_text(&plain), "outer: cause");
    }

    #[test]
    fn print_failures_are_told_from_other_panics_and_a_closed_pipe_from_a_full_disk() {
        let payload: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_string());
        assert!(print_failure(payload.as_ref()).is_some());
        assert_eq!(
            output_failure_code("failed printing to stdout: Broken pipe (os error 32)"),
            BROKEN_PIPE
        );
        assert_eq!(
            output_failure_code("failed printing to stdout: No space left on device (os error 28)"),
            ERROR
        );
        let other: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert!(print_failure(other.as_ref()).is_none());
    }
}
