//! Unit tests of the group state machine, driven with explicit timestamps.
