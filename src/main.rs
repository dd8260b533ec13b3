//! The `selfie-kiosk` command: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use selfie_kiosk::config::{Config, ConfigError};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.env_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(&config),
        Command::Serve => serve(config),
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("selfie-kiosk: configuration error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn check_config(c: &Config) -> ExitCode {
    println!("configuration OK");
    println!("  KIOSK_LISTEN        {}", c.listen);
    if let Some(h) = c.health_listen {
        println!("  HEALTH_LISTEN       {h}");
    }
    println!("  KIOSK_DATA_DIR      {}", c.data_dir.display());
    println!("  UPLOADS_DIR         {}", c.uploads_dir.display());
    println!("  KIOSK_ID            {}", c.kiosk_id);
    println!(
        "  ADMIN_API_KEY       {}",
        if c.admin_api_key.is_some() {
            "set"
        } else {
            "unset (generated at first start)"
        }
    );
    println!(
        "  SECRET_KEY          {}",
        if c.secret_key.is_some() {
            "set"
        } else {
            "unset (generated at first start)"
        }
    );
    println!(
        "  REMOTE_DATABASE_URL {}",
        if c.remote_database_url.is_some() {
            "set"
        } else {
            "unset: no remote metadata"
        }
    );
    println!(
        "  REMOTE_STORAGE_URL  {}",
        c.remote_storage
            .as_ref()
            .map(|r| r.display_url().to_string())
            .unwrap_or_else(|| "unset: no remote files".into())
    );
    println!(
        "  PUBLIC_BASE_URL     {}",
        c.public_base_url
            .clone()
            .unwrap_or_else(|| "unset: SMS disabled".into())
    );
    println!(
        "  SMS (OVH)           {}",
        if c.ovh.is_some() {
            "configured"
        } else {
            "not configured"
        }
    );
    println!("  RETENTION_DAYS      {}", c.retention_days);
    println!("  MAX_CAPTURE_BYTES   {}", c.max_capture_bytes);
    println!("  KIOSK_DISK_RESERVE  {}", c.disk_reserve_bytes);
    ExitCode::SUCCESS
}

fn serve(config: Config) -> ExitCode {
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
