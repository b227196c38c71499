//! The HTTP edge: REST and SSE endpoints on bare hyper 1.x, auth, limits, metrics and dashboard assets.
