//! What the command-line tools share: one table of exit codes, applied by every
//! subcommand and printed by `--help`, the `check-config` report, and `serve`'s start
//! [`banner`].
//!
//! The codes follow sysexits.h where it has one (64, 69), and the Nagios convention for
//! "the thing checked is unhealthy" (2 = CRITICAL), so cron jobs and monitoring can act on
//! them without parsing the output.

pub mod banner;
mod check_config;

use std::process::ExitCode;

pub use check_config::check_config;

/// Done: the daemon stopped cleanly, the check passed, the bundle is written.
pub const OK: u8 = 0;
/// The command ran and failed: a port already taken, a store that cannot be opened, a
/// bundle that cannot be written, OVH refusing the credentials or the sender.
pub const FAILURE: u8 = 1;
/// What was checked is unhealthy: `diag` found the kiosk DOWN, `fleet --check` found a
/// kiosk stale or down.
pub const UNHEALTHY: u8 = 2;
/// Usage or configuration error (sysexits EX_USAGE): a bad argument, a bad or missing
/// variable (each named on stderr).
pub const USAGE: u8 = 64;
/// A remote could not be reached (sysexits EX_UNAVAILABLE): the remote database for
/// `fleet`, the OVH API for `sms-test`.
pub const UNAVAILABLE: u8 = 69;

/// The table `--help` ends with (README's "Exit codes" says the same).
pub const EXIT_CODES_HELP: &str = "\
Exit codes (every subcommand):
  0   success
  1   failure (e.g. the port is taken, OVH refused the credentials)
  2   unhealthy: `diag` found the kiosk DOWN, `fleet --check` a kiosk stale or down
  64  usage or configuration error (each bad variable named on stderr)
  69  a remote is unreachable (remote database for `fleet`, OVH API for `sms-test`)";

/// `code` as the process's exit status.
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}
