//! `cartograph`: parse the command line, load config, run until SIGINT/SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;

use cartograph::App;
use cartograph::cli::{Cli, Command, DemoArgs, LoadgenArgs, MigrateArgs, ServeArgs};
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
        Some(Command::Serve(ref args)) => serve(&cli, Some(args)),
        None => serve(&cli, None),
        Some(Command::Loadgen(ref args)) => loadgen(args),
        Some(Command::Demo(ref args)) => demo(args),
        Some(Command::Migrate(ref args)) => migrate(&cli, args),
    }
}

fn migrate(cli: &Cli, args: &MigrateArgs) -> anyhow::Result<()> {
    cartograph::telemetry::init_logging();
    let config = cli.load_config().context("invalid configuration")?;
    let options = config.clickhouse_options();
    if args.print {
        let layout = cartograph::store::clickhouse::Layout {
            database: options.database,
            cluster: options.cluster,
        };
        print!("{}", layout.full_ddl());
        return Ok(());
    }
    let applied = cartograph::store::clickhouse::run_migrations(&options)
        .with_context(|| format!("cannot migrate ClickHouse at {}", options.url))?;
    if applied.is_empty() {
        println!("{}: the schema is up to date", options.url);
    } else {
        println!("{}: applied migrations {applied:?}", options.url);
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cartograph")
        .build()
        .context("cannot start the async runtime")
}

fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    cartograph::telemetry::init_logging();
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => None,
    };
    let access = cartograph::demo::ExporterAccess {
        token: args.token.clone(),
        ca_pem,
        tls_domain: None,
    };
    let handle = cartograph::demo::spawn(args.shop.settings(args.endpoint.clone(), access))
        .context("cannot start the demo")?;
    let num_orders = if args.shop.duration.is_some() {
        handle.wait()
    } else {
        runtime()?.block_on(wait_for_signal())?;
        handle.stop()
    }
    .map_err(anyhow::Error::msg)?;
    println!("demo placed {num_orders} orders");
    Ok(())
}

fn loadgen(args: &LoadgenArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    if let Some(path) = &args.write_request {
        let body = cartograph::loadgen::RequestSource::new(settings.shape).request(0);
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    // Ctrl-C or SIGTERM ends the run early with the report so far.
    let report = runtime()?
        .block_on(async {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stopper = std::sync::Arc::clone(&stop);
            tokio::spawn(async move {
                if wait_for_signal().await.is_ok() {
                    stopper.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
            cartograph::loadgen::run_until(settings, stop).await
        })
        .map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

const DEMO_PAIRING_TTL_SECS: u64 = 5;

fn serve(cli: &Cli, args_opt: Option<&ServeArgs>) -> anyhow::Result<()> {
    cartograph::telemetry::init_logging();
    let mut config = cli.load_config().context("invalid configuration")?;
    if args_opt.is_some_and(|args| args.demo) {
        // The demo's payment provider is uninstrumented: its edge appears when the client
        // span's wait for a server span ends, so the demo waits less than production would.
        config.graph.pairing_ttl_secs = config.graph.pairing_ttl_secs.min(DEMO_PAIRING_TTL_SECS);
    }
    let demo_access = own_access(&config)?;
    runtime()?.block_on(async {
        let app = App::build(config)
            .await
            .context("cannot start cartograph")?;
        let demo_opt = match args_opt.filter(|args| args.demo) {
            Some(args) => {
                let scheme = if demo_access.ca_pem.is_some() {
                    "https"
                } else {
                    "http"
                };
                let endpoint = format!("{scheme}://{}", app.otlp_grpc_addr());
                Some(
                    cartograph::demo::spawn(args.shop.settings(endpoint, demo_access))
                        .context("cannot start the demo")?,
                )
            }
            None => None,
        };
        wait_for_signal().await?;
        if let Some(demo) = demo_opt {
            // Its last spans still reach the store: the app shuts down after.
            let stopped = tokio::task::spawn_blocking(move || demo.stop()).await;
            if let Ok(Err(err)) = stopped {
                tracing::warn!(error = %err, "demo ended with an error");
            }
        }
        app.shutdown().await;
        Ok(())
    })
}

/// How `serve --demo` reaches this instance's own OTLP/gRPC port: with its first ingest
/// token, and over TLS trusting its own certificate file (self-signed, or ending with its CA)
/// for the name `localhost`.
fn own_access(
    config: &cartograph::config::Config,
) -> anyhow::Result<cartograph::demo::ExporterAccess> {
    let security = &config.security;
    let token = security
        .ingest_tokens
        .first()
        .or_else(|| security.tenants.values().flatten().next())
        .cloned()
        .map(cartograph::auth::Secret);
    let tls = &config.tls;
    let ca_pem = if tls.otlp && !tls.cert_file.as_os_str().is_empty() {
        Some(
            std::fs::read(&tls.cert_file)
                .with_context(|| format!("cannot read {}", tls.cert_file.display()))?,
        )
    } else {
        None
    };
    Ok(cartograph::demo::ExporterAccess {
        token,
        tls_domain: ca_pem.as_ref().map(|_| "localhost".to_owned()),
        ca_pem,
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
