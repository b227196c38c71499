//! One request from start to finish: route it, run its handler, turn any error into its JSON
//! answer, and record it in the access log and the metrics. Tokens, cookies, query strings
//! and ids never reach the log: it names the route template, not the path.

use std::net::IpAddr;
use std::time::Instant;

use http::request::Parts;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::handlers::{
    analytics, bulk, contract, counts, ops, pages, providers, questions, schedules, session,
    streams, tasks, workflow_stream, workflows, ws, Ctx,
};
use crate::response::nosniff;
use crate::router::{Route, StreamRoute, UNMATCHED};
use crate::state::AppState;
use crate::ApiError;

/// The route name of `POST /api/logout`, the one POST that may succeed without writing.
const LOGOUT: &str = "/api/logout";

/// Answers one request from `peer`.
pub async fn handle(state: AppState, request: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let route = Route::resolve(&parts.method, parts.uri.path());
    let route_name = route.as_ref().map_or(UNMATCHED, Route::name);
    let mut exchange = Exchange::begin(state, parts, peer, route_name);
    let result = match route {
        Ok(route) => dispatch(&mut exchange.ctx, route, body).await,
        Err(error) => Err(error),
    };
    exchange.finish(result)
}

/// Answers a request for a live stream that arrived without a body (see
/// `crate::connection`): the same route, handler, log line and metrics as [`handle`].
pub(crate) async fn handle_stream(
    state: AppState,
    parts: Parts,
    peer: IpAddr,
    stream: StreamRoute,
) -> Response<Body> {
    let mut exchange = Exchange::begin(state, parts, peer, Route::from(stream.clone()).name());
    let result = match stream {
        StreamRoute::Task => streams::subscribe_to_task(&mut exchange.ctx).await,
        StreamRoute::Tasks => streams::subscribe_to_tasks(&mut exchange.ctx).await,
        StreamRoute::Workflow(id) => workflow_stream::workflow_events(&mut exchange.ctx, &id).await,
    };
    exchange.finish(result)
}

/// One request in flight: its context, and what the access log and metrics need at the end.
struct Exchange {
    ctx: Ctx,
    route_name: &'static str,
    method: Method,
    started: Instant,
}

impl Exchange {
    fn begin(state: AppState, parts: Parts, peer: IpAddr, route_name: &'static str) -> Self {
        let method = parts.method.clone();
        Self {
            ctx: Ctx {
                state,
                parts,
                peer,
                user: None,
            },
            route_name,
            method,
            started: Instant::now(),
        }
    }

    /// Turns the handler's result into the response, and logs and counts it.
    fn finish(self, result: Result<Response<Body>, ApiError>) -> Response<Body> {
        let health = self.ctx.state.storage_health();
        match &result {
            Err(error) if error.is_storage_down() => health.failed(),
            // Every successful POST wrote to the database, except a logout (which answers 200
            // with or without a session to end).
            Ok(response)
                if self.method == Method::POST
                    && self.route_name != LOGOUT
                    && response.status().is_success() =>
            {
                health.wrote();
            }
            _ => {}
        }
        let mut response = result.unwrap_or_else(ApiError::into_response);
        nosniff(&mut response);
        let elapsed = self.started.elapsed();
        let status = response.status().as_u16();
        self.ctx.state.metrics().observe_request(
            self.route_name,
            self.method.as_str(),
            status,
            elapsed,
        );
        tracing::info!(
            method = %self.method,
            route = self.route_name,
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            user = self.ctx.user.as_deref().unwrap_or("-"),
            "request"
        );
        response
    }
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
        Route::TaskCounts => counts::task_counts(ctx).await,
        Route::CreateTask => tasks::create_task(ctx, body).await,
        Route::GetTask(id) => tasks::get_task(ctx, &id).await,
        Route::CancelTask(id) => tasks::cancel_task(ctx, &id).await,
        Route::RetryTask(id) => tasks::retry_task(ctx, &id).await,
        Route::BulkTasks => bulk::bulk(ctx, body).await,
        Route::ListSchedules => schedules::list(ctx).await,
        Route::CreateSchedule => schedules::create(ctx, body).await,
        Route::GetSchedule(id) => schedules::get(ctx, &id).await,
        Route::UpdateSchedule(id) => schedules::update(ctx, &id, body).await,
        Route::DeleteSchedule(id) => schedules::delete(ctx, &id).await,
        Route::PauseSchedule(id, paused) => schedules::pause(ctx, &id, paused).await,
        Route::RunSchedule(id) => schedules::run_now(ctx, &id).await,
        Route::CreateWorkflow => workflows::create_workflow(ctx, body).await,
        Route::GetWorkflow(id) => workflows::get_workflow(ctx, &id).await,
        Route::CancelWorkflow(id) => workflows::cancel_workflow(ctx, &id).await,
        Route::WorkflowEvents(id) => workflow_stream::workflow_events(ctx, &id).await,
        Route::Login => session::login(ctx, body).await,
        Route::Logout => session::logout(ctx).await,
        Route::Me => session::me(ctx).await,
        Route::Analytics => analytics::analytics(ctx).await,
        Route::Providers => providers::providers(ctx).await,
        Route::WebSocket => ws::websocket(ctx).await,
        Route::Healthz => Ok(ops::healthz()),
        Route::Readyz => Ok(ops::readyz(ctx).await),
        Route::Metrics => ops::metrics(ctx).await,
        Route::Root => Ok(pages::root()),
        Route::Page(page) => pages::page(ctx, page).await,
        Route::Asset => pages::asset(ctx),
    }
}
