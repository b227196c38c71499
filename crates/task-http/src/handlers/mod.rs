//! The endpoint handlers, grouped by what they serve, and the per-request context they share.

pub mod analytics;
pub mod bulk;
pub mod contract;
pub mod counts;
pub mod ops;
pub mod pages;
pub mod providers;
pub mod questions;
pub mod schedules;
pub mod session;
pub mod streams;
pub mod task_spec;
pub mod tasks;
pub mod workflow_stream;
pub mod workflows;
pub mod ws;

use std::net::IpAddr;

use http::request::Parts;
use task_core::{Task, TaskId};

use crate::auth::{accounts, csrf, AuthMethod, Identity};
use crate::state::AppState;
use crate::ApiError;

/// One request's context: the shared state, the request head, the peer address, and who the
/// caller turned out to be (recorded for the access log).
pub struct Ctx {
    /// Shared server state.
    pub state: AppState,
    /// The request head.
    pub parts: Parts,
    /// The TCP peer's address.
    pub peer: IpAddr,
    /// The authenticated caller's email, once known.
    pub user: Option<String>,
}

impl Ctx {
    /// The caller, or `None` when anonymous.
    ///
    /// # Errors
    /// 401 for bad credentials; 503/500 when the user store fails.
    pub async fn identity(&mut self) -> Result<Option<Identity>, ApiError> {
        let identity = self
            .state
            .authenticator()
            .authenticate(&self.parts, self.peer, now_millis())
            .await?;
        if let Some(identity) = &identity {
            self.user = Some(identity.email.clone());
        }
        Ok(identity)
    }

    /// The caller of a reading request.
    ///
    /// # Errors
    /// 401 when anonymous.
    pub async fn require(&mut self) -> Result<Identity, ApiError> {
        self.identity().await?.ok_or_else(ApiError::unauthorized)
    }

    /// The caller of a state-changing request. Cookie-authenticated callers must also send an
    /// `Origin` matching this host (bearer tokens are never sent by browsers on their own, so
    /// they need no such check).
    ///
    /// # Errors
    /// 401 when anonymous, 403 when the cross-site check fails.
    pub async fn require_for_change(&mut self) -> Result<Identity, ApiError> {
        let identity = self.require().await?;
        if identity.method == AuthMethod::Session {
            csrf::check_same_origin(&self.parts.headers)?;
        }
        Ok(identity)
    }

    /// The task `raw_id` names, if the caller may see it.
    ///
    /// # Errors
    /// 404 when the id is malformed, unknown or someone else's; store errors otherwise.
    pub async fn visible_task(&self, identity: &Identity, raw_id: &str) -> Result<Task, ApiError> {
        let id: TaskId = raw_id.parse().map_err(|_| ApiError::task_not_found())?;
        let task = self.state.tasks().get(&id).await?;
        if identity.can_see(&task) {
            Ok(task)
        } else {
            Err(ApiError::task_not_found())
        }
    }
}

pub use task_core::now_millis;

/// The user whose `things` (tasks, questions) a listing shows: a normal user sees only their
/// own (naming anyone else is 403); a superuser sees everyone's, or one user's when named.
/// Any string names a user: one that no account can have (blank, control characters, too long)
/// names nobody, so a superuser gets an empty listing and a normal user a 403, as for any other
/// user's name.
///
/// # Errors
/// 403 when a normal user names another user.
pub fn listing_owner(
    identity: &Identity,
    requested: Option<&str>,
    things: &str,
) -> Result<Option<String>, ApiError> {
    let requested =
        requested.map(|raw| accounts::normalize_email(raw).unwrap_or_else(|_| raw.to_owned()));
    match (identity.is_superuser(), requested) {
        (true, requested) => Ok(requested),
        (false, Some(other)) if other != identity.email => Err(ApiError::forbidden(format!(
            "only a superuser may list another user's {things}"
        ))),
        (false, _) => Ok(Some(identity.email.clone())),
    }
}
