//! Test support: a fake AI provider server speaking each provider's wire format and checking what tasklane sends.
