//! The `task-http` binary: parses the command line, sets up logging, opens the database and
//! runs the chosen command. Everything else lives in the libraries.

mod accounts;
mod cli;
mod database;
mod logging;
mod schedules;
mod serve;

use clap::Parser;

use crate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format)?;
    let database = database::open(&cli.db, cli.pg_schema.as_deref()).await?;
    match cli.command {
        None => serve::run(database, cli.serve).await,
        Some(Command::Serve(args)) => serve::run(database, *args).await,
        Some(Command::User(command)) => accounts::user(database.users.as_ref(), command).await,
        Some(Command::Token(command)) => accounts::token(database.users.as_ref(), command).await,
        Some(Command::Schedule(command)) => schedules::schedule(database, command).await,
    }
}
