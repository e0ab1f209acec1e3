//! (storage helper) epoch
