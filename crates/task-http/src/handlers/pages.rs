//! The browser pages and their files (built by `crate::assets`): `/` sends the browser to its
//! task page, pages need a session (anonymous visitors go to `/login`), and the superuser page
//! is refused to everyone else.

use http::header::LOCATION;
use http::{HeaderValue, Response, StatusCode};

use super::Ctx;
use crate::assets::{self, Page};
use crate::body::{self, Body};
use crate::ApiError;

/// `GET /login`, `GET /tasks`, `GET /superuser/tasks`, `GET /superuser/analytics`.
pub async fn page(ctx: &mut Ctx, page: Page) -> Result<Response<Body>, ApiError> {
    if page == Page::Login {
        return Ok(assets::page(page));
    }
    let identity = match ctx.identity().await {
        Ok(Some(identity)) => identity,
        Ok(None) => return Ok(redirect("/login")),
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => return Ok(redirect("/login")),
        Err(error) => return Err(error),
    };
    if page.superuser_only() && !identity.is_superuser() {
        return Err(ApiError::forbidden("this page is for superusers"));
    }
    Ok(assets::page(page))
}

/// `GET /`: to the caller's task page.
pub fn root() -> Response<Body> {
    redirect("/tasks")
}

/// `GET /assets/...` and `GET /client/...`: an embedded file, or 404.
pub fn asset(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    assets::static_asset_conditional(ctx.parts.uri.path(), &ctx.parts.headers)
        .ok_or_else(ApiError::no_route)
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    response
}
