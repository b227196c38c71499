//! One request from start to finish: route it, run its handler, turn any error into its JSON
//! answer, and record it in the access log and the metrics. Tokens, cookies, query strings
//! and ids never reach the log: it names the route template, not the path.

use std::net::IpAddr;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::handlers::{bulk, contract, ops, pages, questions, session, streams, tasks, Ctx};
use crate::router::{Route, UNMATCHED};
use crate::state::AppState;
use crate::ApiError;

/// Answers one request from `peer`.
pub async fn handle(state: AppState, request: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let route = Route::resolve(&parts.method, parts.uri.path());
    let route_name = route.as_ref().map_or(UNMATCHED, Route::name);
    let mut ctx = Ctx {
        state,
        parts,
        peer,
        user: None,
    };
    let result = match route {
        Ok(route) => dispatch(&mut ctx, route, body).await,
        Err(error) => Err(error),
    };
    let response = result.unwrap_or_else(ApiError::into_response);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    ctx.state
        .metrics()
        .observe_request(route_name, method.as_str(), status, elapsed);
    tracing::info!(
        method = %method,
        route = route_name,
        status,
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
        user = ctx.user.as_deref().unwrap_or("-"),
        "request"
    );
    response
}

async fn dispatch(ctx: &mut Ctx, route: Route, body: Incoming) -> Result<Response<Body>, ApiError> {
    match route {
        Route::GenerateAiQuestions => contract::generate_ai_questions(ctx, body).await,
        Route::GetBackgroundTasks => contract::get_background_tasks(ctx).await,
        Route::SubscribeToTask => streams::subscribe_to_task(ctx).await,
        Route::ValidateQuestions => questions::validate_questions(ctx, body).await,
        Route::RegenerateEmojis => questions::regenerate_emojis(ctx, body).await,
        Route::ListQuestions => questions::list_questions(ctx).await,
        Route::SubscribeToTasks => streams::subscribe_to_tasks(ctx).await,
        Route::ListTasks => tasks::list_tasks(ctx).await,
        Route::CreateTask => tasks::create_task(ctx, body).await,
        Route::GetTask(id) => tasks::get_task(ctx, &id).await,
        Route::CancelTask(id) => tasks::cancel_task(ctx, &id).await,
        Route::RetryTask(id) => tasks::retry_task(ctx, &id).await,
        Route::BulkTasks => bulk::bulk(ctx, body).await,
        Route::Login => session::login(ctx, body).await,
        Route::Logout => session::logout(ctx).await,
        Route::Me => session::me(ctx).await,
        Route::Healthz => Ok(ops::healthz()),
        Route::Readyz => Ok(ops::readyz(ctx).await),
        Route::Metrics => ops::metrics(ctx).await,
        Route::Root => Ok(pages::root()),
        Route::Page(page) => pages::page(ctx, page).await,
        Route::Asset => pages::asset(ctx),
    }
}
