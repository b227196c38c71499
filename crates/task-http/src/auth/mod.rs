//! Authentication and authorisation: tokens and sessions, who the caller is, and the
//! cross-site check for cookie-authenticated requests.

pub mod accounts;
pub mod cache;
pub mod csrf;
pub mod identity;
pub mod secret;
pub mod session;

pub use identity::{AuthMethod, Authenticator, Identity};
