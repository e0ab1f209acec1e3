//! (storage helper) index
