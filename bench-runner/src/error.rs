//! Errors and exit codes: bad input (exit 2: a file that cannot be read or
//! is not a report, an argument this build cannot honour, an output
//! directory that cannot be written) as opposed to a regression or a failed
//! run (exit 1). Every error is one line that names the bad input.

use std::process::ExitCode;

/// Bad input that no other error type describes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The exit code of a command that failed with `e`: 2 for bad input, 1
/// otherwise.
///
/// # Examples
///
/// ```
/// use bench_runner::error::{exit_code_of, BadInput};
///
/// let bad = anyhow::Error::new(BadInput("cannot read x.json".into()));
/// assert_eq!(exit_code_of(&bad), std::process::ExitCode::from(2));
/// assert_eq!(exit_code_of(&anyhow::anyhow!("a repeat failed")), std::process::ExitCode::from(1));
/// ```
pub fn exit_code_of(e: &anyhow::Error) -> ExitCode {
    let bad_input = e.is::<BadInput>() || e.is::<crate::report::ReadError>() || e.is::<crate::plan::PlanError>();
    ExitCode::from(if bad_input { 2 } else { 1 })
}
