//! (storage helper) retention
