//! (cluster helper) types
