//! (cluster helper) store
