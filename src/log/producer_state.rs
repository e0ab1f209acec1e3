//! Idempotent-producer state per partition (Kafka's ProducerStateManager): the last five
//! batches of every producer id, sequence checks, duplicate detection and snapshots.

// IMPLEMENTATION OWNED BY THE BATCH HELPER.
