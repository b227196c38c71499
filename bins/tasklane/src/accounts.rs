//! The `user` and `token` commands. New secrets are printed alone on the last line of stdout,
//! so scripts can take them with `tail -n 1`.

use anyhow::Context;
use task_http::auth::accounts;
use task_store::{Role, UserLimits, UserStore};

use crate::cli::{TokenCommand, UserCommand};

/// Runs a `user` command.
pub async fn user(users: &dyn UserStore, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { email, superuser } => {
            let role = if superuser {
                Role::Superuser
            } else {
                Role::User
            };
            let (user, token) = accounts::add_user(users, &email, role)
                .await
                .with_context(|| format!("cannot create user {email:?}"))?;
            println!(
                "Created {} {} with API token {} (shown once):",
                user.role.as_str(),
                user.email,
                token.record.id
            );
            println!("{}", token.secret());
        }
        UserCommand::Limits {
            email,
            rate,
            burst,
            max_running,
            max_queued,
        } => {
            let email = accounts::normalize_email(&email)?;
            let mut limits = users
                .get_user_limits(&email)
                .await
                .with_context(|| format!("cannot read the limits of {email:?}"))?;
            let given = UserLimits {
                rate,
                burst,
                max_running,
                max_queued: max_queued.map(u64::from),
            };
            if given != UserLimits::default() {
                limits = limits.merged(given);
                users
                    .set_user_limits(&email, limits)
                    .await
                    .with_context(|| format!("cannot set the limits of {email:?}"))?;
            }
            let show = |value: Option<String>| value.unwrap_or_else(|| "default".to_owned());
            println!(
                "{email}\trate={}\tburst={}\tmax-running={}\tmax-queued={}",
                show(limits.rate.map(|r| r.to_string())),
                show(limits.burst.map(|n| n.to_string())),
                show(limits.max_running.map(|n| n.to_string())),
                show(limits.max_queued.map(|n| n.to_string())),
            );
        }
        UserCommand::List => {
            for user in users.list_users().await.context("cannot list users")? {
                println!("{}\t{}", user.email, user.role.as_str());
            }
        }
    }
    Ok(())
}

/// Runs a `token` command.
pub async fn token(users: &dyn UserStore, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { email, label } => {
            let token = accounts::create_api_token(users, &email, label)
                .await
                .with_context(|| format!("cannot create a token for {email:?}"))?;
            println!(
                "Created API token {} for {} (shown once):",
                token.record.id, token.record.user_email
            );
            println!("{}", token.secret());
        }
        TokenCommand::Revoke { id } => {
            users
                .revoke_token(&id)
                .await
                .with_context(|| format!("cannot revoke token {id:?}"))?;
            println!("Revoked {id}");
        }
        TokenCommand::List { email } => {
            let email = accounts::normalize_email(&email)?;
            let tokens = users
                .list_tokens(&email)
                .await
                .with_context(|| format!("cannot list tokens of {email:?}"))?;
            println!("id\tkind\tlabel\tcreated_at\texpires_at");
            for token in tokens {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.kind.as_str(),
                    token.label.as_deref().unwrap_or("-"),
                    token.created_at,
                    token
                        .expires_at
                        .map_or_else(|| "never".to_owned(), |t| t.to_string())
                );
            }
        }
    }
    Ok(())
}
