//! The `selfie-kiosk` command: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use selfie_kiosk::config::{Config, ConfigError, Keys, Presence};

/// Exit code for a bad configuration (sysexits.h EX_CONFIG... EX_USAGE is 64).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "selfie-kiosk",
    version,
    about = "Offline-first backend of a selfie kiosk"
)]
struct Cli {
    /// Read variables from this file instead of ./.env
    #[arg(long, global = true)]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Serve,
    /// Validate the configuration and print it (secrets hidden).
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
    },
    /// Write a diagnostics bundle (tar.gz and summary.txt) into DIR, e.g. onto a USB stick.
    Diag {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.env_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(&config),
        Command::Serve => serve(config, cli.env_file),
        Command::Fleet { json, stale_after } => {
            selfie_kiosk::fleet::cli(&config, json, stale_after)
        }
        Command::Diag { out } => selfie_kiosk::diag::cli(&config, &out),
        Command::SmsTest { phone, dry_run } => sms_test(&config, &phone, dry_run),
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("selfie-kiosk: configuration error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn check_config(c: &Config) -> ExitCode {
    let view = selfie_kiosk::config::view(c, None, Keys::AsConfigured);
    let facts = &view.read_only;
    let key = |p: Presence| {
        if p.is_set() {
            "set"
        } else {
            "unset (generated at first start)"
        }
    };
    println!("configuration OK");
    println!("  KIOSK_LISTEN        {}", facts.listen);
    if let Some(h) = &facts.health_listen {
        println!("  HEALTH_LISTEN       {h}");
    }
    println!("  KIOSK_DATA_DIR      {}", facts.data_dir);
    println!("  UPLOADS_DIR         {}", facts.uploads_dir);
    println!("  KIOSK_ID            {}", facts.kiosk_id);
    println!("  ADMIN_API_KEY       {}", key(facts.secrets.admin_api_key));
    println!("  SECRET_KEY          {}", key(facts.secrets.secret_key));
    println!(
        "  REMOTE_DATABASE_URL {}",
        if facts.remote_database.configured {
            "set"
        } else {
            "unset: no remote metadata"
        }
    );
    println!(
        "  REMOTE_STORAGE_URL  {}",
        facts
            .remote_storage
            .url
            .as_deref()
            .unwrap_or("unset: no remote files")
    );
    println!(
        "  PUBLIC_BASE_URL     {}",
        facts
            .public_base_url
            .as_deref()
            .unwrap_or("unset: SMS disabled")
    );
    println!(
        "  SMS (OVH)           {}",
        if facts.secrets.ovh_app_key.is_set() {
            "configured"
        } else {
            "not configured"
        }
    );
    println!("  RETENTION_DAYS      {}", view.settings.retention_days);
    println!("  MAX_CAPTURE_BYTES   {}", facts.max_capture_bytes);
    println!("  KIOSK_DISK_RESERVE  {}", view.settings.kiosk_disk_reserve);
    ExitCode::SUCCESS
}

fn sms_test(config: &Config, phone: &str, dry_run: bool) -> ExitCode {
    let ran = match selfie_kiosk::net::block_on(selfie_kiosk::sms::sms_test(config, phone, dry_run))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfie-kiosk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match ran {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sms-test: {e}");
            ExitCode::FAILURE
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
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {} (KIOSK_LISTEN): {e}", config.listen);
                eprintln!(
                    "selfie-kiosk: KIOSK_LISTEN: cannot listen on {}: {e}",
                    config.listen
                );
                return ExitCode::FAILURE;
            }
        };
        let health = match config.health_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("selfie-kiosk: HEALTH_LISTEN: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        tokio::spawn(reload_log_level_on_sighup(env_file));
        match selfie_kiosk::run(config, listener, health, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                eprintln!("selfie-kiosk: cannot start: {e}");
                match e {
                    selfie_kiosk::StartError::Remote { .. } => ExitCode::from(EXIT_CONFIG),
                    _ => ExitCode::FAILURE,
                }
            }
        }
    })
}

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
