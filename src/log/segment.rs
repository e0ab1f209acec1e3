//! (storage helper) segment
