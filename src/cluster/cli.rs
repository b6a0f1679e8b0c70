//! `tollgate cluster ...`: operators' commands on the control database.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::schema;
use crate::config::Config;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Create or upgrade the control database's schema to this binary's
    /// version (idempotent; refuses a newer schema).
    Migrate {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
    },
}

pub fn run(cmd: ClusterCommand) -> ExitCode {
    match cmd {
        ClusterCommand::Migrate { config } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let Some(cluster) = config.cluster else {
                eprintln!("error: {}: no [cluster] table", config.path.display());
                return ExitCode::from(2);
            };
            match migrate(&cluster) {
                Ok((from, to)) if from == to => {
                    println!("control database schema already at version {to}");
                    ExitCode::SUCCESS
                }
                Ok((from, to)) => {
                    println!("control database schema migrated from version {from} to {to}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn migrate(cfg: &crate::config::cluster::ClusterConfig) -> Result<(i32, i32), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut conn = super::agent::connect_client(cfg).await?;
        schema::migrate(&mut conn).await.map_err(|e| e.to_string())
    })
}

/// The catalog rows `filter` selects, read straight from the control
/// database `[cluster]` names (auditors' commands: no running host needed).
pub fn read_catalog(
    cfg: &crate::config::cluster::ClusterConfig,
    filter: &crate::objstore::catalog::CatalogFilter,
) -> Result<Vec<crate::objstore::catalog::CatalogRow>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let conn = super::agent::connect_client(cfg).await?;
        schema::check(&conn).await.map_err(|e| e.to_string())?;
        // A full cross-check may read many rows: give it longer than one
        // agent query.
        super::catalog::list(
            &conn,
            cfg.query_timeout.max(Duration::from_secs(60)),
            filter,
        )
        .await
    })
}

/// `[cluster]` of the config file at `path`.
pub fn cluster_of(path: &std::path::Path) -> Result<crate::config::cluster::ClusterConfig, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    config
        .cluster
        .ok_or_else(|| format!("{}: no [cluster] table", path.display()))
}
