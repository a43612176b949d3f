use agentops_query_api::admin;
use agentops_runtime::keys::Scope;
use clap::{Parser, Subcommand, ValueEnum};

/// AgentOps query API and dashboard; `admin` subcommands manage orgs, keys and budgets.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (also AGENTOPS_CONFIG). Every key can be set as AGENTOPS_<KEY>.
    #[arg(long, global = true)]
    config: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and dashboard (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage orgs, API keys and budgets directly in the database.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Ingest,
    Read,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Read => Scope::Read,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an org with one ingest, one read and one admin key; prints
    /// `AGENTOPS_INGEST_KEY=`, `AGENTOPS_READ_KEY=`, `AGENTOPS_ADMIN_KEY=` lines.
    CreateOrg {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create one more key for an org (the secret is printed once).
    CreateKey {
        #[arg(long)]
        org: String,
        #[arg(long, value_enum)]
        scope: ScopeArg,
    },
    /// Revoke a key by id.
    RevokeKey {
        #[arg(long)]
        org: String,
        #[arg(long)]
        key_id: uuid::Uuid,
    },
    /// Add (or replace) a version of a model's prices in the global table,
    /// which every org uses unless it has its own row (USD per million tokens).
    SetPrice {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        model: String,
        /// Other names of the model (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        alias: Vec<String>,
        /// UTC date from which the prices apply (default: since always).
        #[arg(long)]
        effective_from: Option<String>,
        #[arg(long)]
        input: f64,
        #[arg(long)]
        output: f64,
        #[arg(long)]
        cache_read: Option<f64>,
        #[arg(long)]
        cache_write: Option<f64>,
        #[arg(long)]
        reasoning: Option<f64>,
    },
    /// Set an org's daily spend budget and its Slack-compatible webhook.
    SetBudget {
        #[arg(long)]
        org: String,
        #[arg(long)]
        daily_usd: f64,
        #[arg(long)]
        webhook_url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: agentops_query_api::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    match args.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let metrics = agentops_runtime::telemetry::init("query-api")?;
            let shutdown = agentops_runtime::shutdown::on_signal();
            agentops_query_api::run(config, metrics, shutdown).await?;
        }
        Command::Migrate => {
            let pool = admin::pool(&config).await?;
            println!("migrations applied to {}", redact(&config.database.url));
            drop(pool);
        }
        Command::Admin(cmd) => {
            let pool = admin::pool(&config).await?;
            match cmd {
                AdminCommand::CreateOrg { id, name } => {
                    let keys = admin::create_org_with_keys(
                        &pool,
                        &id,
                        name.as_deref().unwrap_or(&id),
                        "cli",
                    )
                    .await?;
                    println!("AGENTOPS_ORG_ID={id}");
                    for k in keys {
                        println!(
                            "AGENTOPS_{}_KEY={}",
                            k.scope.as_str().to_uppercase(),
                            k.secret
                        );
                    }
                }
                AdminCommand::CreateKey { org, scope } => {
                    let k = agentops_runtime::keys::create_key(&pool, &org, scope.into(), "cli")
                        .await?;
                    println!(
                        "key_id={} scope={} key={}",
                        k.key_id,
                        k.scope.as_str(),
                        k.secret
                    );
                }
                AdminCommand::RevokeKey { org, key_id } => {
                    if !agentops_runtime::keys::revoke_key(&pool, &org, key_id, "cli").await? {
                        anyhow::bail!("no live key {key_id} in org {org}");
                    }
                    println!("revoked {key_id}");
                }
                AdminCommand::SetPrice {
                    provider,
                    model,
                    alias,
                    effective_from,
                    input,
                    output,
                    cache_read,
                    cache_write,
                    reasoning,
                } => {
                    // The same validation as `POST /v1/admin/prices`.
                    let body = serde_json::json!({
                        "provider": provider, "model": model, "aliases": alias,
                        "effective_from": effective_from, "input": input, "output": output,
                        "cache_read": cache_read, "cache_write": cache_write, "reasoning": reasoning,
                    });
                    let p = agentops_query_api::prices::parse(&body)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    if let Some(other) =
                        agentops_query_api::prices::name_taken(&pool, None, &p).await?
                    {
                        anyhow::bail!(
                            "model {} or one of its aliases is already a name of model {other}",
                            p.model
                        );
                    }
                    let (id, new) =
                        agentops_query_api::prices::set_price(&pool, None, &p, "cli").await?;
                    println!(
                        "global price {} {} from {}: row {id} {}",
                        p.provider,
                        p.model,
                        p.effective_from,
                        if new { "added" } else { "replaced" }
                    );
                }
                AdminCommand::SetBudget {
                    org,
                    daily_usd,
                    webhook_url,
                } => {
                    admin::set_budget(&pool, &org, daily_usd, webhook_url.as_deref()).await?;
                    println!("budget for {org}: ${daily_usd}/day");
                }
            }
        }
    }
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
        _ => url.to_owned(),
    }
}
