//! Maps a method and path to an endpoint. A known path with the wrong method is a 405 that
//! lists the methods the path accepts; an unknown path is a 404.

use http::Method;

use crate::assets::Page;
use crate::ApiError;

/// One endpoint, with the task id from the path where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/generateAIQuestions` (contract).
    GenerateAiQuestions,
    /// `GET /api/subscribeToTask?taskId=` (contract, SSE).
    SubscribeToTask,
    /// `POST /api/validateQuestions`.
    ValidateQuestions,
    /// `POST /api/regenerateEmojis`.
    RegenerateEmojis,
    /// `GET /api/questions`.
    ListQuestions,
    /// `GET /api/getBackgroundTasks` (contract).
    GetBackgroundTasks,
    /// `GET /api/subscribeToTasks` (SSE of every visible task).
    SubscribeToTasks,
    /// `GET /api/tasks`.
    ListTasks,
    /// `POST /api/tasks`.
    CreateTask,
    /// `POST /api/tasks/bulk`.
    BulkTasks,
    /// `GET /api/tasks/counts`.
    TaskCounts,
    /// `GET /api/tasks/{id}`.
    GetTask(String),
    /// `POST /api/tasks/{id}/cancel`.
    CancelTask(String),
    /// `POST /api/tasks/{id}/retry`.
    RetryTask(String),
    /// `GET /api/schedules`.
    ListSchedules,
    /// `POST /api/schedules`.
    CreateSchedule,
    /// `GET /api/schedules/{id}`.
    GetSchedule(String),
    /// `PATCH /api/schedules/{id}`.
    UpdateSchedule(String),
    /// `DELETE /api/schedules/{id}`.
    DeleteSchedule(String),
    /// `POST /api/schedules/{id}/pause`, `…/resume` (`true` pauses).
    PauseSchedule(String, bool),
    /// `POST /api/schedules/{id}/run-now`.
    RunSchedule(String),
    /// `POST /api/workflows`.
    CreateWorkflow,
    /// `GET /api/workflows/{id}`.
    GetWorkflow(String),
    /// `POST /api/workflows/{id}/cancel`.
    CancelWorkflow(String),
    /// `GET /api/analytics`.
    Analytics,
    /// `GET /api/providers`.
    Providers,
    /// `GET /api/workflows/{id}/events` (SSE of every node).
    WorkflowEvents(String),
    /// `POST /api/login`.
    Login,
    /// `POST /api/logout`.
    Logout,
    /// `GET /api/me`.
    Me,
    /// `GET /api/ws`: the WebSocket upgrade.
    WebSocket,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /`: redirects to the task page.
    Root,
    /// `GET /login`, `GET /tasks`, `GET /superuser/tasks`, `GET /superuser/analytics`.
    Page(Page),
    /// `GET /assets/...`, `GET /client/...`: an embedded file.
    Asset,
}

/// The live-stream routes: they take no request body, so a connection may serve them outside
/// hyper (see `crate::connection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRoute {
    /// `GET /api/subscribeToTask`.
    Task,
    /// `GET /api/subscribeToTasks`.
    Tasks,
    /// `GET /api/workflows/{id}/events`, with the workflow's id.
    Workflow(String),
}

impl From<StreamRoute> for Route {
    fn from(stream: StreamRoute) -> Self {
        match stream {
            StreamRoute::Task => Route::SubscribeToTask,
            StreamRoute::Tasks => Route::SubscribeToTasks,
            StreamRoute::Workflow(id) => Route::WorkflowEvents(id),
        }
    }
}

impl Route {
    /// The stream this route opens, if it is a live stream.
    pub fn stream(&self) -> Option<StreamRoute> {
        match self {
            Route::SubscribeToTask => Some(StreamRoute::Task),
            Route::SubscribeToTasks => Some(StreamRoute::Tasks),
            Route::WorkflowEvents(id) => Some(StreamRoute::Workflow(id.clone())),
            _ => None,
        }
    }
}

/// The route name used in logs and metrics for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

impl Route {
    /// Finds the endpoint for a request.
    ///
    /// # Errors
    /// 404 for an unknown path, 405 (with `Allow`) for a known path and another method.
    pub fn resolve(method: &Method, path: &str) -> Result<Route, ApiError> {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let get = *method == Method::GET;
        let post = *method == Method::POST;
        let (route, allow) = match segments.as_slice() {
            ["api", "generateAIQuestions"] => (post.then_some(Route::GenerateAiQuestions), "POST"),
            ["api", "subscribeToTask"] => (get.then_some(Route::SubscribeToTask), "GET"),
            ["api", "validateQuestions"] => (post.then_some(Route::ValidateQuestions), "POST"),
            ["api", "regenerateEmojis"] => (post.then_some(Route::RegenerateEmojis), "POST"),
            ["api", "questions"] => (get.then_some(Route::ListQuestions), "GET"),
            ["api", "getBackgroundTasks"] => (get.then_some(Route::GetBackgroundTasks), "GET"),
            ["api", "subscribeToTasks"] => (get.then_some(Route::SubscribeToTasks), "GET"),
            ["api", "tasks"] => {
                let route = if get {
                    Some(Route::ListTasks)
                } else if post {
                    Some(Route::CreateTask)
                } else {
                    None
                };
                (route, "GET, POST")
            }
            ["api", "tasks", "bulk"] => (post.then_some(Route::BulkTasks), "POST"),
            ["api", "tasks", "counts"] => (get.then_some(Route::TaskCounts), "GET"),
            ["api", "tasks", id] if !id.is_empty() => {
                (get.then(|| Route::GetTask((*id).to_owned())), "GET")
            }
            ["api", "tasks", id, "cancel"] if !id.is_empty() => {
                (post.then(|| Route::CancelTask((*id).to_owned())), "POST")
            }
            ["api", "tasks", id, "retry"] if !id.is_empty() => {
                (post.then(|| Route::RetryTask((*id).to_owned())), "POST")
            }
            ["api", "schedules"] => {
                let route = if get {
                    Some(Route::ListSchedules)
                } else if post {
                    Some(Route::CreateSchedule)
                } else {
                    None
                };
                (route, "GET, POST")
            }
            ["api", "schedules", id] if !id.is_empty() => {
                let id = (*id).to_owned();
                let route = match *method {
                    Method::GET => Some(Route::GetSchedule(id)),
                    Method::PATCH => Some(Route::UpdateSchedule(id)),
                    Method::DELETE => Some(Route::DeleteSchedule(id)),
                    _ => None,
                };
                (route, "GET, PATCH, DELETE")
            }
            ["api", "schedules", id, action @ ("pause" | "resume" | "run-now")]
                if !id.is_empty() =>
            {
                let id = (*id).to_owned();
                let route = post.then(|| match *action {
                    "run-now" => Route::RunSchedule(id),
                    action => Route::PauseSchedule(id, action == "pause"),
                });
                (route, "POST")
            }
            ["api", "workflows"] => (post.then_some(Route::CreateWorkflow), "POST"),
            ["api", "workflows", id] if !id.is_empty() => {
                (get.then(|| Route::GetWorkflow((*id).to_owned())), "GET")
            }
            ["api", "workflows", id, "events"] if !id.is_empty() => {
                (get.then(|| Route::WorkflowEvents((*id).to_owned())), "GET")
            }
            ["api", "workflows", id, "cancel"] if !id.is_empty() => (
                post.then(|| Route::CancelWorkflow((*id).to_owned())),
                "POST",
            ),
            ["api", "analytics"] => (get.then_some(Route::Analytics), "GET"),
            ["api", "providers"] => (get.then_some(Route::Providers), "GET"),
            ["api", "login"] => (post.then_some(Route::Login), "POST"),
            ["api", "logout"] => (post.then_some(Route::Logout), "POST"),
            ["api", "me"] => (get.then_some(Route::Me), "GET"),
            ["api", "ws"] => (get.then_some(Route::WebSocket), "GET"),
            ["healthz"] => (get.then_some(Route::Healthz), "GET"),
            ["readyz"] => (get.then_some(Route::Readyz), "GET"),
            ["metrics"] => (get.then_some(Route::Metrics), "GET"),
            [""] => (get.then_some(Route::Root), "GET"),
            ["login"] => (get.then_some(Route::Page(Page::Login)), "GET"),
            ["tasks"] => (get.then_some(Route::Page(Page::MyTasks)), "GET"),
            ["superuser", "tasks"] => (get.then_some(Route::Page(Page::SuperuserTasks)), "GET"),
            ["superuser", "analytics"] => {
                (get.then_some(Route::Page(Page::SuperuserAnalytics)), "GET")
            }
            ["schedules"] => (get.then_some(Route::Page(Page::Schedules)), "GET"),
            ["assets" | "client", ..] => (get.then_some(Route::Asset), "GET"),
            _ => return Err(ApiError::no_route()),
        };
        route.ok_or_else(|| ApiError::method_not_allowed(allow))
    }

    /// The route's template, for logs and metrics (ids are never part of it, so the number of
    /// metric series stays bounded).
    pub fn name(&self) -> &'static str {
        match self {
            Route::GenerateAiQuestions => "/api/generateAIQuestions",
            Route::SubscribeToTask => "/api/subscribeToTask",
            Route::ValidateQuestions => "/api/validateQuestions",
            Route::RegenerateEmojis => "/api/regenerateEmojis",
            Route::ListQuestions => "/api/questions",
            Route::GetBackgroundTasks => "/api/getBackgroundTasks",
            Route::SubscribeToTasks => "/api/subscribeToTasks",
            Route::ListTasks | Route::CreateTask => "/api/tasks",
            Route::BulkTasks => "/api/tasks/bulk",
            Route::TaskCounts => "/api/tasks/counts",
            Route::GetTask(_) => "/api/tasks/{id}",
            Route::CancelTask(_) => "/api/tasks/{id}/cancel",
            Route::RetryTask(_) => "/api/tasks/{id}/retry",
            Route::ListSchedules | Route::CreateSchedule => "/api/schedules",
            Route::GetSchedule(_) | Route::UpdateSchedule(_) | Route::DeleteSchedule(_) => {
                "/api/schedules/{id}"
            }
            Route::PauseSchedule(_, true) => "/api/schedules/{id}/pause",
            Route::PauseSchedule(_, false) => "/api/schedules/{id}/resume",
            Route::RunSchedule(_) => "/api/schedules/{id}/run-now",
            Route::CreateWorkflow => "/api/workflows",
            Route::GetWorkflow(_) => "/api/workflows/{id}",
            Route::CancelWorkflow(_) => "/api/workflows/{id}/cancel",
            Route::Analytics => "/api/analytics",
            Route::Providers => "/api/providers",
            Route::WorkflowEvents(_) => "/api/workflows/{id}/events",
            Route::Login => "/api/login",
            Route::Logout => "/api/logout",
            Route::Me => "/api/me",
            Route::WebSocket => "/api/ws",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Root => "/",
            Route::Page(page) => page.path(),
            Route::Asset => "/assets",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, expected: Result<Route, (u16, Option<&str>)>) {
        let got = Route::resolve(&method, path);
        match (got, expected) {
            (Ok(route), Ok(expected)) => assert_eq!(route, expected, "{method} {path}"),
            (Err(error), Err((status, allow))) => {
                assert_eq!(error.status().as_u16(), status, "{method} {path}");
                let response = error.into_response();
                assert_eq!(
                    response
                        .headers()
                        .get(http::header::ALLOW)
                        .map(|v| v.to_str().unwrap()),
                    allow,
                    "{method} {path}"
                );
            }
            (got, expected) => panic!("{method} {path}: {got:?}, expected {expected:?}"),
        }
    }

    /// The `(method, path)` pairs `docs/openapi.yaml` documents: path keys are indented two
    /// spaces under `paths:`, operations four.
    fn documented_operations() -> Vec<(Method, String)> {
        let spec = include_str!("../../../docs/openapi.yaml");
        let paths = spec
            .split("\npaths:\n")
            .nth(1)
            .and_then(|rest| rest.split("\ncomponents:\n").next())
            .expect("openapi.yaml has paths and components");
        let mut operations = Vec::new();
        let mut current = String::new();
        for line in paths.lines() {
            if let Some(path) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
                current = format!("/{path}");
            } else if let Some(method) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':'))
            {
                if let Ok(method) = method.to_ascii_uppercase().parse::<Method>() {
                    if method == Method::GET || method == Method::POST {
                        operations.push((method, current.clone()));
                    }
                }
            }
        }
        operations
    }

    #[test]
    fn the_openapi_document_matches_the_router() {
        let documented = documented_operations();
        assert!(documented.len() >= 20, "{documented:?}");
        for (method, path) in &documented {
            let concrete = path.replace("{id}", "task_1_abcdef");
            assert!(
                Route::resolve(method, &concrete).is_ok(),
                "documented but not routed: {method} {path}"
            );
        }
        let routes = [
            (Method::POST, Route::GenerateAiQuestions),
            (Method::GET, Route::SubscribeToTask),
            (Method::POST, Route::ValidateQuestions),
            (Method::POST, Route::RegenerateEmojis),
            (Method::GET, Route::ListQuestions),
            (Method::GET, Route::GetBackgroundTasks),
            (Method::GET, Route::SubscribeToTasks),
            (Method::GET, Route::ListTasks),
            (Method::POST, Route::CreateTask),
            (Method::POST, Route::BulkTasks),
            (Method::GET, Route::TaskCounts),
            (Method::GET, Route::GetTask(String::new())),
            (Method::POST, Route::CancelTask(String::new())),
            (Method::POST, Route::RetryTask(String::new())),
            (Method::POST, Route::CreateWorkflow),
            (Method::GET, Route::GetWorkflow(String::new())),
            (Method::POST, Route::CancelWorkflow(String::new())),
            (Method::GET, Route::WorkflowEvents(String::new())),
            (Method::POST, Route::Login),
            (Method::POST, Route::Logout),
            (Method::GET, Route::Me),
            (Method::GET, Route::WebSocket),
            (Method::GET, Route::Healthz),
            (Method::GET, Route::Readyz),
            (Method::GET, Route::Metrics),
            (Method::GET, Route::Root),
            (Method::GET, Route::Page(Page::Login)),
            (Method::GET, Route::Page(Page::MyTasks)),
            (Method::GET, Route::Page(Page::SuperuserTasks)),
            (Method::GET, Route::Page(Page::Schedules)),
            (Method::GET, Route::ListSchedules),
            (Method::POST, Route::CreateSchedule),
            (Method::GET, Route::GetSchedule(String::new())),
            (Method::POST, Route::PauseSchedule(String::new(), true)),
            (Method::POST, Route::PauseSchedule(String::new(), false)),
            (Method::POST, Route::RunSchedule(String::new())),
        ];
        for (method, route) in routes {
            assert!(
                documented
                    .iter()
                    .any(|(m, p)| *m == method && p == route.name()),
                "routed but not documented: {method} {}",
                route.name()
            );
        }
    }

    #[test]
    fn schedule_routes() {
        let id = || "sched_1_ab".to_owned();
        check(Method::GET, "/api/schedules", Ok(Route::ListSchedules));
        check(Method::POST, "/api/schedules", Ok(Route::CreateSchedule));
        check(
            Method::PATCH,
            "/api/schedules/sched_1_ab",
            Ok(Route::UpdateSchedule(id())),
        );
        check(
            Method::DELETE,
            "/api/schedules/sched_1_ab",
            Ok(Route::DeleteSchedule(id())),
        );
        check(
            Method::POST,
            "/api/schedules/sched_1_ab/pause",
            Ok(Route::PauseSchedule(id(), true)),
        );
        check(
            Method::POST,
            "/api/schedules/sched_1_ab/resume",
            Ok(Route::PauseSchedule(id(), false)),
        );
        check(
            Method::POST,
            "/api/schedules/sched_1_ab/run-now",
            Ok(Route::RunSchedule(id())),
        );
        check(
            Method::PUT,
            "/api/schedules/sched_1_ab",
            Err((405, Some("GET, PATCH, DELETE"))),
        );
        check(
            Method::GET,
            "/api/schedules/sched_1_ab/pause",
            Err((405, Some("POST"))),
        );
        check(
            Method::POST,
            "/api/schedules/sched_1_ab/explode",
            Err((404, None)),
        );
    }

    #[test]
    fn routes() {
        check(
            Method::POST,
            "/api/generateAIQuestions",
            Ok(Route::GenerateAiQuestions),
        );
        check(
            Method::GET,
            "/api/generateAIQuestions",
            Err((405, Some("POST"))),
        );
        check(
            Method::POST,
            "/api/validateQuestions",
            Ok(Route::ValidateQuestions),
        );
        check(
            Method::POST,
            "/api/regenerateEmojis",
            Ok(Route::RegenerateEmojis),
        );
        check(
            Method::GET,
            "/api/regenerateEmojis",
            Err((405, Some("POST"))),
        );
        check(Method::GET, "/api/questions", Ok(Route::ListQuestions));
        check(Method::POST, "/api/questions", Err((405, Some("GET"))));
        check(Method::GET, "/api/questions/q_1_abcdef", Err((404, None)));
        check(Method::GET, "/api/tasks", Ok(Route::ListTasks));
        check(Method::POST, "/api/tasks", Ok(Route::CreateTask));
        check(Method::DELETE, "/api/tasks", Err((405, Some("GET, POST"))));
        check(Method::POST, "/api/tasks/bulk", Ok(Route::BulkTasks));
        check(Method::GET, "/api/tasks/bulk", Err((405, Some("POST"))));
        check(
            Method::GET,
            "/api/tasks/task_1_abcdef",
            Ok(Route::GetTask("task_1_abcdef".into())),
        );
        check(
            Method::DELETE,
            "/api/tasks/task_1_abcdef",
            Err((405, Some("GET"))),
        );
        check(
            Method::POST,
            "/api/tasks/task_1_abcdef/cancel",
            Ok(Route::CancelTask("task_1_abcdef".into())),
        );
        check(Method::GET, "/api/tasks/x/retry", Err((405, Some("POST"))));
        check(Method::GET, "/api/tasks/", Err((404, None)));
        check(Method::GET, "/api/nothing", Err((404, None)));
        check(Method::GET, "/", Ok(Route::Root));
        check(
            Method::GET,
            "/superuser/tasks",
            Ok(Route::Page(Page::SuperuserTasks)),
        );
        check(Method::GET, "/client/api.js", Ok(Route::Asset));
        check(Method::POST, "/login", Err((405, Some("GET"))));
        check(Method::GET, "/superuser", Err((404, None)));
        check(Method::HEAD, "/healthz", Err((405, Some("GET"))));
        check(Method::GET, "/api/ws", Ok(Route::WebSocket));
        check(Method::POST, "/api/ws", Err((405, Some("GET"))));
    }
}
