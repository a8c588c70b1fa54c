//! The `forkless` binary: parses options, sets up logging, runs the server or a
//! maintenance subcommand.

use std::process::ExitCode;

use forkless::config::{self, Args, Config, SubCommand};

/// The allocator chosen at build time (src/alloc.rs).
#[global_allocator]
static GLOBAL: forkless::alloc::Global = forkless::alloc::GLOBAL;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Args = match forkless::cli::parse(&argv) {
        forkless::cli::Parsed::Run(args) => *args,
        forkless::cli::Parsed::Exit { output, code } => {
            forkless::cli::print(&output, code);
            return ExitCode::from(code);
        }
    };
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forkless: {e}");
            return ExitCode::from(1);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORKLESS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(config::tracing_filter(&config.loglevel))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();

    use forkless::persistence::redis_rdb;
    match &args.command {
        Some(SubCommand::CheckDump(check)) => {
            return forkless::persistence::check_dump_main(&check.file)
        }
        Some(SubCommand::ImportRdb(a)) => {
            return redis_rdb::import_main(&config, &a.input, &a.output)
        }
        Some(SubCommand::ExportRdb(a)) => {
            let dump = a.dump.clone().unwrap_or_else(|| config.dump_path());
            return redis_rdb::export_main(&config, &dump, &a.output);
        }
        None => {}
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forkless: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(forkless::run_server(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("forkless: {e}");
            ExitCode::from(1)
        }
    }
}
