//! (cluster helper) network
