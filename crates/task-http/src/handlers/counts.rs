//! `GET /api/tasks/counts`: every task of the database by status and by type, for the
//! superuser dashboard's counters (see `crate::task_counts` for when the store counts).

use http::Response;

use super::Ctx;
use crate::body::Body;
use crate::response::ok;
use crate::ApiError;

/// `GET /api/tasks/counts` (superusers only).
///
/// # Errors
/// 401 when anonymous, 403 for a normal user, 503 when the store cannot count.
pub async fn task_counts(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    if !identity.is_superuser() {
        return Err(ApiError::forbidden(
            "only a superuser may read the counts of every task",
        ));
    }
    Ok(ok(&ctx.state.counts().get().await?))
}
