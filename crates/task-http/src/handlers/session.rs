//! Browser sessions and "who am I": `POST /api/login`, `POST /api/logout`, `GET /api/me`.

use http::header::SET_COOKIE;
use http::Response;
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;
use task_store::{Role, TokenKind};

use super::{now_millis, Ctx};
use crate::auth::{accounts, csrf, secret, session};
use crate::body::Body;
use crate::input::{read_json, Fields};
use crate::rate_limit::EffectiveLimits;
use crate::response::ok;
use crate::ApiError;

/// Who is logged in, as `/api/login` and `/api/me` report it.
#[derive(Serialize)]
struct Me<'a> {
    email: &'a str,
    role: Role,
    auth: &'a str,
    /// The limits that apply to the caller (issue #19); shown by `GET /api/me`, left out of
    /// the login answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<EffectiveLimits>,
}

/// `POST /api/login {"token":"tl_..."}`: exchanges an API token for a session cookie
/// (HttpOnly, SameSite=Strict), so `EventSource` — which cannot set headers — is authenticated.
pub async fn login(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    csrf::check_origin_if_present(&ctx.parts.headers)?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut fields = Fields::new(input)?;
    // A blank or malformed token is a wrong credential (401), like any other unknown token.
    let token = fields
        .string("token")?
        .ok_or_else(|| ApiError::invalid_field("token", "is required"))?;
    let now = now_millis();
    let users = ctx.state.users();
    let user = match ctx.state.authenticator().lookup(token.trim(), now).await? {
        Some((user, record)) if record.kind == TokenKind::Api => user,
        _ => return Err(ApiError::invalid_token()),
    };
    let config = ctx.state.config();
    let session =
        accounts::create_session(users.as_ref(), &user.email, config.session_ttl, now).await?;
    let cookie = session::set_cookie(session.secret(), config.session_ttl, config.secure_cookies)
        .ok_or_else(|| ApiError::internal("session cookie could not be encoded"))?;
    ctx.user = Some(user.email.clone());
    tracing::info!(user = %user.email, session_id = %session.record.id, "session started");
    let mut response = ok(&Me {
        email: &user.email,
        role: user.role,
        auth: "session",
        limits: None,
    });
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// `POST /api/logout`: ends the cookie's session (if any) and clears the cookie. Always 200, so
/// a page can log out without knowing whether its session is still valid.
pub async fn logout(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    if let Some(cookie) = session::read_cookie(&ctx.parts.headers) {
        csrf::check_same_origin(&ctx.parts.headers)?;
        ctx.state.authenticator().forget(cookie);
        ctx.state
            .users()
            .delete_token_by_hash(&secret::hash(cookie))
            .await?;
    }
    let mut response = ok(&json!({ "success": true }));
    response.headers_mut().insert(
        SET_COOKIE,
        session::clear_cookie(ctx.state.config().secure_cookies),
    );
    Ok(response)
}

/// `GET /api/me`: the caller's email, role, how they authenticated and the limits that apply
/// to them.
pub async fn me(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    Ok(ok(&Me {
        email: &identity.email,
        role: identity.role,
        auth: identity.method.as_str(),
        limits: Some(
            ctx.state
                .creator()
                .limits()
                .effective(&identity.email)
                .await?,
        ),
    }))
}
