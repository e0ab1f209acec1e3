//! (storage helper) flusher
