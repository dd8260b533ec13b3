//! The `selfie-kiosk` command: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use selfie_kiosk::cli::{exit, FAILURE, OK, USAGE};
use selfie_kiosk::config::{Config, ConfigError};

/// What `--version` prints: the version, the commit and the build date (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SELFIE_KIOSK_COMMIT"),
    ", built ",
    env!("SELFIE_KIOSK_BUILD_DATE"),
    ")"
);

/// Where the configuration comes from and what it defaults to (end of `--help`).
const CONFIG_HELP: &str = "\
Configuration: environment variables, on top of the file given by --env-file (else ./.env
in the working directory, when it exists); a variable in the environment wins over the
file. With none at all, `serve` starts and is useful:
  KIOSK_LISTEN    127.0.0.1:8000   the API (a host name such as localhost:8000 is resolved at start)
  KIOSK_DATA_DIR  ./data           catalog, outbox, photos (packages: /var/lib/selfie-kiosk)
  ADMIN_API_KEY   generated into $KIOSK_DATA_DIR/admin_api_key; send it as the X-API-Key header
Every variable is in README.md and assets/selfie-kiosk.env.example; `selfie-kiosk
check-config` shows what would be used. Logs go to journald under systemd, else to stderr
(no colour when stderr is not a terminal or NO_COLOR is set).";

#[derive(Parser)]
#[command(
    name = "selfie-kiosk",
    version = VERSION,
    about = "Offline-first backend of a selfie kiosk (runs `serve` when no command is given)"
)]
struct Cli {
    /// Read variables from this file instead of ./.env (the environment still wins)
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default): the API on KIOSK_LISTEN (127.0.0.1:8000).
    Serve,
    /// Check the configuration: every problem at once, then every setting (secrets hidden).
    CheckConfig,
    /// Check the OVH SMS credentials, credits and sender, then send one test SMS.
    SmsTest {
        /// Phone number to text (French national or international format).
        phone: String,
        /// Check everything but send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Fleet status from the remote database: every kiosk's last heartbeat.
    Fleet {
        /// Print a JSON array instead of the table.
        #[arg(long)]
        json: bool,
        /// Seconds without a heartbeat after which a kiosk is shown STALE.
        #[arg(long, value_name = "SECS", default_value_t = selfie_kiosk::fleet::DEFAULT_STALE_AFTER_S)]
        stale_after: u64,
        /// Exit 2 when any kiosk is stale or down (for cron and monitoring).
        #[arg(long)]
        check: bool,
        #[command(subcommand)]
        action: Option<FleetAction>,
    },
    /// Write a diagnostics bundle (tar.gz and summary.txt) into DIR, e.g. onto a USB stick.
    Diag {
        /// Directory to write the bundle and summary.txt into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum FleetAction {
    /// Serve the read-only fleet page (for the VPS, behind its web server); needs
    /// FLEET_API_KEY and REMOTE_DATABASE_URL.
    Serve {
        /// Address to listen on (IP:PORT).
        #[arg(long, value_name = "ADDR", default_value = selfie_kiosk::fleet::serve::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
}

/// The command line; `--help` and `--version` exit 0, a usage error 64 (the exit-code
/// table is the same for every subcommand).
fn parse_cli() -> Result<Cli, ExitCode> {
    let after = format!("{CONFIG_HELP}\n\n{}", selfie_kiosk::cli::EXIT_CODES_HELP);
    let codes = selfie_kiosk::cli::EXIT_CODES_HELP;
    let command = Cli::command()
        .after_help(after)
        .mut_subcommands(|s| s.after_help(codes));
    let report = |e: clap::Error| {
        let _ = e.print();
        exit(if e.exit_code() == 0 { OK } else { USAGE })
    };
    let matches = command.try_get_matches().map_err(report)?;
    Cli::from_arg_matches(&matches).map_err(report)
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let (config, errors) = match Config::load_lenient(cli.env_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_errors(&[e]),
    };
    if let Command::CheckConfig = command {
        return selfie_kiosk::cli::check_config(&config, &errors);
    }
    if !errors.is_empty() {
        return config_errors(&errors);
    }
    match command {
        Command::CheckConfig => selfie_kiosk::cli::check_config(&config, &errors),
        Command::Serve => serve(config, cli.env_file),
        Command::Fleet {
            action: Some(FleetAction::Serve { listen }),
            ..
        } => selfie_kiosk::fleet::serve::cli(&config, listen),
        Command::Fleet {
            json,
            stale_after,
            check,
            action: None,
        } => selfie_kiosk::fleet::cli(&config, json, stale_after, check),
        Command::Diag { out } => selfie_kiosk::diag::cli(&config, &out),
        Command::SmsTest { phone, dry_run } => sms_test(&config, &phone, dry_run),
    }
}

/// One line per problem, each naming its variable; exit 64.
fn config_errors(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("selfie-kiosk: configuration error: {e}");
    }
    exit(USAGE)
}

fn sms_test(config: &Config, phone: &str, dry_run: bool) -> ExitCode {
    let ran = match selfie_kiosk::net::block_on(selfie_kiosk::sms::sms_test(config, phone, dry_run))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfie-kiosk: cannot start the runtime: {e}");
            return exit(FAILURE);
        }
    };
    match ran {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            exit(OK)
        }
        Err(e) => {
            eprintln!("sms-test: {e}");
            exit(e.exit_code())
        }
    }
}

/// Files the daemon creates are for it and its group only (keys, catalog, photos).
fn tight_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o027));
}

fn serve(config: Config, env_file: Option<PathBuf>) -> ExitCode {
    tight_umask();
    let _log = selfie_kiosk::logging::init(&config.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("selfie-kiosk")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfie-kiosk: cannot start the runtime: {e}");
            return exit(FAILURE);
        }
    };
    let code = runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {} (KIOSK_LISTEN): {e}", config.listen);
                eprintln!(
                    "selfie-kiosk: KIOSK_LISTEN: cannot listen on {}: {e}",
                    config.listen
                );
                return exit(FAILURE);
            }
        };
        let health = match config.health_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("selfie-kiosk: HEALTH_LISTEN: cannot listen on {addr}: {e}");
                    return exit(FAILURE);
                }
            },
            None => None,
        };
        let admin = match config.admin_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("selfie-kiosk: ADMIN_LISTEN: cannot listen on {addr}: {e}");
                    return exit(FAILURE);
                }
            },
            None => None,
        };
        if let Some(w) = &config.kiosk_tz_warning {
            tracing::warn!("{w}");
        }
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        tokio::spawn(reload_log_level_on_sighup(env_file));
        match selfie_kiosk::run(config, listener, health, admin, shutdown).await {
            Ok(()) => exit(OK),
            Err(e) => {
                tracing::error!("cannot start: {e}");
                eprintln!("selfie-kiosk: cannot start: {e}");
                match e {
                    selfie_kiosk::StartError::Remote { .. } => exit(USAGE),
                    _ => exit(FAILURE),
                }
            }
        }
    });
    // Dropping a runtime waits for every task still on its blocking pool, and after
    // "stopped" some may remain that nobody waits for: a thumbnail the stopped worker
    // was making (a second or more for a big photo), a DNS lookup of an unreachable
    // remote. They matter no more (what must be durable is flushed), so they get a short
    // grace, not the time they would take (a process alive seconds after "stopped").
    runtime.shutdown_timeout(STOP_GRACE);
    code
}

/// How long a stop waits, after "stopped", for blocking work left running.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

/// SIGHUP: applies `KIOSK_LOG` (or `RUST_LOG`) again, without a restart. The env file
/// (`--env-file`, else `./.env`) wins over the process environment here: the environment
/// was fixed at start (under systemd it was itself loaded from that file), so only the
/// file can carry a change.
async fn reload_log_level_on_sighup(env_file: Option<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    while hup.recv().await.is_some() {
        let spec = log_spec_from_file(env_file.as_deref()).map_or_else(
            || {
                Config::load(env_file.as_deref())
                    .map(|c| c.log_filter)
                    .map_err(|e| e.to_string())
            },
            Ok,
        );
        match spec.and_then(|s| selfie_kiosk::logging::set_level(&s).map(|()| s)) {
            Ok(s) => tracing::info!(filter = %s, "SIGHUP: log filter reloaded"),
            Err(e) => tracing::warn!("SIGHUP: log filter not changed: {e}"),
        }
    }
}

fn log_spec_from_file(env_file: Option<&std::path::Path>) -> Option<String> {
    let path = env_file
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".env"));
    let vars: std::collections::HashMap<String, String> = dotenvy::from_path_iter(&path)
        .ok()?
        .filter_map(Result::ok)
        .collect();
    ["KIOSK_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| vars.get(*k).map(|v| v.trim().to_string()))
        .filter(|v| !v.is_empty())
}
