//! `cartograph`: parse the command line, load config, run until SIGINT/SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;

use cartograph::App;
use cartograph::cli::{Cli, Command, LoadgenArgs};
use cartograph::config::Config;

// Decoding OTLP allocates ~23 times per span; mimalloc roughly doubles decode throughput
// over the system allocator on this workload (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::ExampleConfig) => {
            print!("{}", Config::example_toml());
            Ok(())
        }
        Some(Command::Serve(_)) | None => serve(&cli),
        Some(Command::Loadgen(ref args)) => loadgen(args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cartograph")
        .build()
        .context("cannot start the async runtime")
}

fn loadgen(args: &LoadgenArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    if let Some(path) = &args.write_request {
        let body = cartograph::loadgen::RequestSource::new(settings.shape).request(0);
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    let report = runtime()?
        .block_on(cartograph::loadgen::run(settings))
        .map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn serve(cli: &Cli) -> anyhow::Result<()> {
    cartograph::telemetry::init_logging();
    let config = cli.load_config().context("invalid configuration")?;
    runtime()?.block_on(async {
        let app = App::build(config)
            .await
            .context("cannot start cartograph")?;
        wait_for_signal().await?;
        app.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("signal received");
    Ok(())
}
