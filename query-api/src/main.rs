mod cli;

use agentops_query_api::{admin, grafana};
use agentops_runtime::keys::{self, Scope};
use clap::{Parser, Subcommand, ValueEnum};

/// AgentOps query API and dashboard; `admin` subcommands manage orgs, keys and budgets.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (also AGENTOPS_CONFIG). Every key can be set as AGENTOPS_<KEY>.
    #[arg(long, global = true)]
    config: Option<String>,
    /// Print the effective configuration (each setting's value and where it
    /// came from: default, file or variable; credentials masked), check it,
    /// and exit.
    #[arg(long, global = true)]
    print_config: bool,
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
    /// Create an org (unless it exists) with one ingest, one read and one admin
    /// key; prints `AGENTOPS_INGEST_KEY=`, `AGENTOPS_READ_KEY=`, `AGENTOPS_ADMIN_KEY=` lines.
    CreateOrg {
        /// 1 to 63 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// A platform org: its admin keys manage every org (also marks an existing org).
        #[arg(long)]
        platform: bool,
    },
    /// List every org with its ingest limits and number of live keys.
    ListOrgs {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List an org's keys, revoked ones included (never a secret).
    ListKeys {
        #[arg(long)]
        org: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create one more key for an org (the secret is printed once).
    CreateKey {
        #[arg(long)]
        org: String,
        /// Repeat or comma-separate for several scopes.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        scope: Vec<ScopeArg>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a user (unless the email has one) and make them a member of
    /// the org with a role, audited with actor `cli`. The password comes
    /// from the environment variable named by `--password-env`, or is
    /// generated and printed once (`AGENTOPS_USER_PASSWORD=`). An existing
    /// user keeps their password; an existing member keeps their role.
    CreateUser {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// owner, admin, member or viewer.
        #[arg(long, default_value = "owner")]
        role: String,
        /// The name of an environment variable holding the password (at
        /// least 12 characters).
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Revoke a key by id.
    RevokeKey {
        #[arg(long)]
        org: String,
        #[arg(long)]
        key_id: uuid::Uuid,
    },
    /// Set an org's ingest rate limit (events per second, burst; the burst
    /// defaults to the rate), or `--clear` it back to the gateway's default.
    SetOrgLimits {
        #[arg(long)]
        org: String,
        #[arg(long, required_unless_present = "clear")]
        events_per_sec: Option<f64>,
        #[arg(long, requires = "events_per_sec")]
        burst: Option<f64>,
        #[arg(long, conflicts_with_all = ["events_per_sec", "burst"])]
        clear: bool,
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
    /// Re-seal every channel's URL and secret with the current secrets key
    /// (the first of `secrets.key` / `secrets.key_file`): after a rotation,
    /// and for rows written in clear before encryption. Keep the old keys
    /// configured until it reports no row left.
    ReencryptSecrets,
    /// Give a PostgreSQL login role read-only access to one org's rows for
    /// Grafana (docs/grafana.md): (re)creates the views of schema `grafana`,
    /// creates the role unless it exists, maps it to the org and grants it
    /// those views only. Prints `AGENTOPS_GRAFANA_PG_USER=`, and
    /// `AGENTOPS_GRAFANA_PG_PASSWORD=` when it generated the password of a
    /// new role. Idempotent; run again after `projections rebuild`.
    GrafanaRole {
        #[arg(long)]
        org: String,
        /// 1 to 63 characters of a-z, 0-9, `_`.
        #[arg(long)]
        role: String,
        /// The name of an environment variable holding the role's password
        /// (at least 12 characters; set on every run).
        #[arg(long)]
        password_env: Option<String>,
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
    if args.print_config {
        let text = agentops_runtime::config::describe::<agentops_query_api::Config>(
            args.config.as_deref(),
        )?;
        let config: agentops_query_api::Config =
            agentops_runtime::config::load(args.config.as_deref())?;
        config.validate()?;
        print!("{text}");
        return Ok(());
    }
    let config: agentops_query_api::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    config.validate()?;
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
                AdminCommand::CreateOrg { id, name, platform } => {
                    if !keys::valid_org_id(&id) {
                        anyhow::bail!(
                            "--id {id:?}: expected 1 to 63 characters of a-z, 0-9, `.`, `_`, `-`, \
                             starting with a letter or digit"
                        );
                    }
                    let name = name.as_deref().unwrap_or(&id);
                    let keys = admin::provision_org(&pool, &id, name, platform, "cli").await?;
                    println!("AGENTOPS_ORG_ID={id}");
                    for k in keys {
                        println!(
                            "AGENTOPS_{}_KEY={}",
                            k.scope_names().join("_").to_uppercase(),
                            k.secret
                        );
                    }
                }
                AdminCommand::ListOrgs { json } => cli::list_orgs(&pool, json).await?,
                AdminCommand::ListKeys { org, json } => cli::list_keys(&pool, &org, json).await?,
                AdminCommand::CreateKey { org, scope, name } => {
                    let scopes: Vec<Scope> = scope.into_iter().map(Scope::from).collect();
                    cli::create_key(&pool, &org, &scopes, name.as_deref()).await?;
                }
                AdminCommand::CreateUser {
                    org,
                    email,
                    name,
                    role,
                    password_env,
                } => {
                    let user = cli::NewUser {
                        org: &org,
                        email: &email,
                        name: &name,
                        role: &role,
                        password_env: password_env.as_deref(),
                    };
                    cli::create_user(&pool, &user).await?;
                }
                AdminCommand::RevokeKey { org, key_id } => {
                    cli::revoke_key(&pool, &org, key_id).await?;
                }
                AdminCommand::SetOrgLimits {
                    org,
                    events_per_sec,
                    burst,
                    clear: _,
                } => cli::set_org_limits(&pool, &org, events_per_sec, burst).await?,
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
                AdminCommand::ReencryptSecrets => {
                    let keys = admin::install_secrets(&config)?;
                    cli::reencrypt_secrets(&pool, &keys).await?;
                }
                AdminCommand::GrafanaRole {
                    org,
                    role,
                    password_env,
                } => {
                    // The relations the views read exist once storage is set up.
                    agentops_runtime::db::prepare(&pool, &config.database).await?;
                    let storage = &config.database.storage;
                    let pw = password_env.as_deref();
                    grafana::grafana_role_cli(&pool, storage, &org, &role, pw).await?;
                }
                AdminCommand::SetBudget {
                    org,
                    daily_usd,
                    webhook_url,
                } => {
                    admin::install_secrets(&config)?;
                    admin::install_guard(&config)?;
                    admin::set_budget(&pool, &config, &org, daily_usd, webhook_url.as_deref())
                        .await?;
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
