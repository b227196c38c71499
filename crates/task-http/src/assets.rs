//! The browser side of tasklane, embedded in the binary: the login, "my tasks" and superuser
//! pages, their stylesheet and scripts, and the JS client under `/client/`.
//!
//! Every file is compiled in with `include_bytes!`, so the binary serves the pages with no build
//! step, no files next to it and no CDN. Pages and files carry a strict Content-Security-Policy
//! that forbids inline script and style: the pages load only the scripts and stylesheet listed
//! here, and render every user or model string as text.

use std::sync::OnceLock;

use http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP_HEADER, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::body::{self, Body};

/// The policy every page and asset is served with. No `'unsafe-inline'` anywhere: a string that
/// slipped into the page as markup still could not run script or load anything from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The pages the router serves. Each is static HTML; its script asks `/api/me` who is logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/login`: paste an API token to start a browser session.
    Login,
    /// `/tasks`: start a question generation, watch it, and see one's own tasks live.
    MyTasks,
    /// `/superuser/tasks`: every user's tasks, live, with cancel and retry.
    SuperuserTasks,
    /// `/schedules`: the caller's schedules, live, with pause, resume and run now.
    Schedules,
    /// `/superuser/analytics`: throughput, waits, run times, costs and failures over time.
    SuperuserAnalytics,
}

impl Page {
    const ALL: [Page; 5] = [
        Page::Login,
        Page::MyTasks,
        Page::SuperuserTasks,
        Page::Schedules,
        Page::SuperuserAnalytics,
    ];

    /// The page's file: its own markup, with [`TOPBAR_MARK`] where the shared header goes.
    fn source(self) -> &'static str {
        match self {
            Page::Login => include_str!("../assets/pages/login.html"),
            Page::MyTasks => include_str!("../assets/pages/tasks.html"),
            Page::SuperuserTasks => include_str!("../assets/pages/superuser-tasks.html"),
            Page::Schedules => include_str!("../assets/pages/schedules.html"),
            Page::SuperuserAnalytics => include_str!("../assets/pages/superuser-analytics.html"),
        }
    }

    /// The path the router serves the page at.
    pub fn path(self) -> &'static str {
        match self {
            Page::Login => "/login",
            Page::MyTasks => "/tasks",
            Page::SuperuserTasks => "/superuser/tasks",
            Page::Schedules => "/schedules",
            Page::SuperuserAnalytics => "/superuser/analytics",
        }
    }

    /// The page as served: its file with the shared header put in, built once.
    fn html(self) -> &'static [u8] {
        static RENDERED: OnceLock<Vec<String>> = OnceLock::new();
        let rendered =
            RENDERED.get_or_init(|| Page::ALL.iter().map(|page| page.render()).collect());
        let index = Page::ALL
            .iter()
            .position(|page| *page == self)
            .expect("every page is in Page::ALL");
        rendered[index].as_bytes()
    }

    fn render(self) -> String {
        let source = self.source();
        if !source.contains(TOPBAR_MARK) {
            return source.to_owned();
        }
        let links: String = NAV
            .iter()
            .map(|link| {
                // A superuser page is only ever served to a superuser, so its superuser links
                // need no hiding; elsewhere the session script shows them to a superuser.
                let hidden = if link.superuser_only && !self.superuser_only() {
                    " data-superuser-only hidden"
                } else {
                    ""
                };
                let current = if link.page == self {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!(
                    "        <li{hidden}><a href=\"{}\"{current}>{}</a></li>\n",
                    link.page.path(),
                    link.label
                )
            })
            .collect();
        let topbar = TOPBAR.replace("{links}", &links);
        source.replacen(&format!("{TOPBAR_MARK}\n"), &topbar, 1)
    }

    /// Whether only a superuser may open the page.
    pub fn superuser_only(self) -> bool {
        matches!(self, Page::SuperuserTasks | Page::SuperuserAnalytics)
    }
}

/// The header every signed-in page shares (who is logged in, the links, log out), written once
/// and put into each page where it says [`TOPBAR_MARK`], so the pages cannot drift apart.
const TOPBAR: &str = include_str!("../assets/pages/topbar.html");

/// Where a page's file wants the shared header.
const TOPBAR_MARK: &str = "  <!-- topbar -->";

/// One link of the header's navigation.
struct NavLink {
    page: Page,
    label: &'static str,
    superuser_only: bool,
}

/// The header's links, in order.
const NAV: &[NavLink] = &[
    NavLink {
        page: Page::MyTasks,
        label: "My tasks",
        superuser_only: false,
    },
    NavLink {
        page: Page::Schedules,
        label: "Schedules",
        superuser_only: false,
    },
    NavLink {
        page: Page::SuperuserTasks,
        label: "All tasks",
        superuser_only: true,
    },
    NavLink {
        page: Page::SuperuserAnalytics,
        label: "Analytics",
        superuser_only: true,
    },
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TS: &str = "application/typescript; charset=utf-8";
const JSON: &str = "application/json";
const SVG: &str = "image/svg+xml";

/// One embedded file: the URL path it answers, its content type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($url:literal, $file:literal, $content_type:expr) => {
        Asset {
            path: $url,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/", $file)),
        }
    };
}

/// Every file served under `/assets/` and `/client/`. A file missing here is a 404, so nothing
/// on disk is ever served by accident.
const ASSETS: &[Asset] = &[
    asset!("/assets/app.css", "app.css", CSS),
    asset!("/assets/analytics.css", "analytics.css", CSS),
    asset!("/assets/favicon.svg", "favicon.svg", SVG),
    asset!("/assets/js/dom.js", "js/dom.js", JS),
    asset!("/assets/js/session.js", "js/session.js", JS),
    asset!("/assets/js/format.js", "js/format.js", JS),
    asset!("/assets/js/questions.js", "js/questions.js", JS),
    asset!("/assets/js/login.js", "js/login.js", JS),
    asset!("/assets/js/tasks.js", "js/tasks.js", JS),
    asset!("/assets/js/superuser.js", "js/superuser.js", JS),
    asset!("/assets/js/schedules.js", "js/schedules.js", JS),
    asset!("/assets/js/charts.js", "js/charts.js", JS),
    asset!("/assets/js/analytics.js", "js/analytics.js", JS),
    asset!("/assets/js/workflow.js", "js/workflow.js", JS),
    asset!("/client/api.js", "client/api.js", JS),
    asset!("/client/sse.js", "client/sse.js", JS),
    asset!("/client/ws.js", "client/ws.js", JS),
    asset!(
        "/client/backgroundTaskService.js",
        "client/backgroundTaskService.js",
        JS
    ),
    asset!("/client/taskService.js", "client/taskService.js", JS),
    asset!("/client/taskList.js", "client/taskList.js", JS),
    asset!("/client/react.js", "client/react.js", JS),
    asset!("/client/index.js", "client/index.js", JS),
    asset!("/client/index.d.ts", "client/index.d.ts", TS),
    asset!("/client/react.d.ts", "client/react.d.ts", TS),
    asset!("/client/package.json", "client/package.json", JSON),
];

/// A page as a complete `200` response with the security headers. Pages are never cached: they
/// are small, and a stale page could run against a newer API.
pub fn page(page: Page) -> Response<Body> {
    let mut response = Response::new(body::full(page.html()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(HTML));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    insert_security_headers(headers);
    response
}

/// The embedded file at the request path `path` (for example `/assets/app.css` or
/// `/client/api.js`), or `None` when there is none (answer 404). Files are revalidated on every
/// use (`Cache-Control: no-cache`) against a content-hash `ETag`; use
/// [`static_asset_conditional`] to answer `If-None-Match` with `304`.
pub fn static_asset(path: &str) -> Option<Response<Body>> {
    static_asset_conditional(path, &HeaderMap::new())
}

/// Like [`static_asset`], but answers `304 Not Modified` (no body) when the request's
/// `If-None-Match` names the file's current `ETag`.
pub fn static_asset_conditional(path: &str, request_headers: &HeaderMap) -> Option<Response<Body>> {
    let index = ASSETS.iter().position(|asset| asset.path == path)?;
    let asset = &ASSETS[index];
    let etag = etags().get(index).cloned().flatten();
    let not_modified = etag
        .as_ref()
        .is_some_and(|etag| if_none_match_hits(request_headers, etag));
    let mut response = if not_modified {
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(body::full(asset.bytes));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(etag) = etag {
        headers.insert(ETAG, etag);
    }
    insert_security_headers(headers);
    Some(response)
}

/// Adds the headers every page and asset carries: the CSP, no MIME sniffing, no framing, no
/// referrer, and an isolated browsing context.
pub fn insert_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        CSP_HEADER,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// The strong `ETag` of every asset, in [`ASSETS`] order, computed once from the bytes so it
/// changes exactly when a file does.
fn etags() -> &'static [Option<HeaderValue>] {
    static ETAGS: OnceLock<Vec<Option<HeaderValue>>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.bytes);
                let tag = format!("\"{}\"", hex::encode(&digest[..12]));
                HeaderValue::from_str(&tag).ok()
            })
            .collect()
    })
}

/// Whether `If-None-Match` lists `etag` (or `*`). Weak comparison, as RFC 9110 asks for it.
fn if_none_match_hits(request_headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(wanted) = etag.to_str() else {
        return false;
    };
    request_headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == "*" || candidate == wanted)
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;
    use http_body_util::BodyExt;

    use super::*;

    const PAGES: [Page; 5] = Page::ALL;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("assets are UTF-8")
    }

    fn header(response: &Response<Body>, name: http::header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("missing {name}"))
    }

    /// The values of `attribute="..."` in `html`.
    fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
        let needle = format!(" {attribute}=\"");
        html.match_indices(&needle)
            .filter_map(|(at, _)| {
                let rest = &html[at + needle.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    /// The module specifiers of the `import`/`export ... from` statements in `js`.
    fn imports(js: &str) -> Vec<&str> {
        js.match_indices("from '")
            .filter_map(|(at, _)| {
                let rest = &js[at + "from '".len()..];
                rest.find('\'').map(|end| &rest[..end])
            })
            .collect()
    }

    /// `specifier` resolved against the asset at `base` (both URL paths).
    fn resolve(base: &str, specifier: &str) -> String {
        if specifier.starts_with('/') {
            return specifier.to_owned();
        }
        let mut parts: Vec<&str> = base.split('/').collect();
        parts.pop();
        for segment in specifier.split('/') {
            match segment {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_security_headers() {
        for asset in ASSETS {
            let response = static_asset(asset.path).expect(asset.path);
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
            assert_eq!(header(&response, CONTENT_TYPE), asset.content_type);
            assert_eq!(header(&response, CSP_HEADER), CONTENT_SECURITY_POLICY);
            assert_eq!(header(&response, X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert_eq!(header(&response, CACHE_CONTROL), "no-cache");
            assert!(header(&response, ETAG).starts_with('"'));
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(!body.is_empty(), "{} is empty", asset.path);
            assert_eq!(body.as_ref(), asset.bytes);
        }
    }

    #[test]
    fn unknown_paths_and_pages_are_not_assets() {
        for path in [
            "/assets/",
            "/assets/nope.js",
            "/client/",
            "/assets/pages/login.html",
            "/assets/../Cargo.toml",
            "/client/api.js/",
            "assets/app.css",
        ] {
            assert!(static_asset(path).is_none(), "{path}");
        }
    }

    #[test]
    fn a_matching_if_none_match_answers_304() {
        let etag = static_asset("/client/api.js")
            .unwrap()
            .headers()
            .get(ETAG)
            .cloned()
            .unwrap();
        let check = |value: &str, expected: StatusCode| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            let response = static_asset_conditional("/client/api.js", &headers).unwrap();
            assert_eq!(response.status(), expected, "If-None-Match: {value}");
            assert_eq!(response.headers().get(ETAG), Some(&etag));
        };
        let tag = etag.to_str().unwrap();
        check(tag, StatusCode::NOT_MODIFIED);
        check(&format!("W/{tag}"), StatusCode::NOT_MODIFIED);
        check(&format!("\"other\", {tag}"), StatusCode::NOT_MODIFIED);
        check("*", StatusCode::NOT_MODIFIED);
        check("\"other\"", StatusCode::OK);
        let other = static_asset("/client/sse.js").unwrap();
        assert_ne!(other.headers().get(ETAG), Some(&etag));
    }

    #[test]
    fn signed_in_pages_share_one_header_with_their_own_link_current() {
        for page_kind in PAGES {
            let html = text(page_kind.html());
            assert!(!html.contains("<!-- topbar"), "{page_kind:?} kept the mark");
            if page_kind == Page::Login {
                assert!(!html.contains("class=\"topbar\""));
                continue;
            }
            assert_eq!(
                html.matches("<header class=\"topbar\">").count(),
                1,
                "{page_kind:?}"
            );
            for id in ["session-user", "session-limits", "logout"] {
                assert_eq!(
                    html.matches(&format!("id=\"{id}\"")).count(),
                    1,
                    "{page_kind:?} {id}"
                );
            }
            let current = format!("href=\"{}\" aria-current=\"page\"", page_kind.path());
            assert!(html.contains(&current), "{page_kind:?} marks its own link");
            assert_eq!(html.matches("aria-current").count(), 1, "{page_kind:?}");
            let hidden = html.matches("data-superuser-only hidden").count();
            assert_eq!(
                hidden,
                if page_kind.superuser_only() { 0 } else { 2 },
                "{page_kind:?}"
            );
        }
    }

    #[test]
    fn pages_are_html_with_a_strict_policy_and_no_cache() {
        for page_kind in PAGES {
            let response = page(page_kind);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header(&response, CONTENT_TYPE), HTML);
            assert_eq!(header(&response, CACHE_CONTROL), "no-store");
            assert_eq!(header(&response, X_FRAME_OPTIONS), "DENY");
            assert_eq!(header(&response, REFERRER_POLICY), "no-referrer");
        }
        for forbidden in ["unsafe-inline", "unsafe-eval", "*", "http:", "https:"] {
            assert!(
                !CONTENT_SECURITY_POLICY.contains(forbidden),
                "the policy allows {forbidden}"
            );
        }
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
    }

    #[test]
    fn pages_have_no_inline_code_and_link_only_embedded_files() {
        for page_kind in PAGES {
            let html = text(page_kind.html());
            let scripts = html.matches("<script").count();
            assert!(scripts > 0, "{page_kind:?} loads no script");
            assert_eq!(
                attribute_values(html, "src").len(),
                scripts,
                "{page_kind:?} has an inline script"
            );
            assert!(!html.contains("<style"), "{page_kind:?} has a <style>");
            assert!(
                attribute_values(html, "style").is_empty(),
                "{page_kind:?} has a style attribute (the CSP blocks it)"
            );
            let lower = html.to_ascii_lowercase();
            assert!(
                !lower.contains(" onclick=")
                    && !lower.contains(" onload=")
                    && !lower.contains(" onsubmit="),
                "{page_kind:?} has an inline event handler"
            );
            let links = attribute_values(html, "src")
                .into_iter()
                .chain(attribute_values(html, "href"))
                .filter(|link| link.starts_with("/assets/") || link.starts_with("/client/"));
            for link in links {
                assert!(
                    static_asset(link).is_some(),
                    "{page_kind:?} links missing {link}"
                );
            }
        }
    }

    #[test]
    fn scripts_import_only_embedded_modules_and_never_parse_markup() {
        for asset in ASSETS.iter().filter(|asset| asset.content_type == JS) {
            let js = text(asset.bytes);
            for specifier in imports(js) {
                if specifier == "react" {
                    assert_eq!(
                        asset.path, "/client/react.js",
                        "only the adapter imports React"
                    );
                    continue;
                }
                let target = resolve(asset.path, specifier);
                assert!(
                    static_asset(&target).is_some(),
                    "{} imports {specifier} ({target}), which is not embedded",
                    asset.path
                );
            }
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!js.contains(sink), "{} uses {sink}", asset.path);
            }
        }
    }
}
