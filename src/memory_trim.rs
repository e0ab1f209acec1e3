//! Giving freed heap memory back to the operating system.
//!
//! glibc keeps freed blocks in its arenas for reuse and returns memory to the OS only
//! from the top of a heap. A fetch across many partitions allocates tens of megabytes of
//! read buffers that are all freed once the response is written; without a trim the
//! broker's RSS stayed near that peak (about 100 MB after one consumer read a
//! 100-partition topic, against 12 MB idle). Every few seconds, when the arenas hold more
//! than a few megabytes free, `malloc_trim` releases them, so RSS follows the load back
//! down. The steady-state hot path is unaffected: buffers in use are never touched.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the arenas are looked at.
const PERIOD: Duration = Duration::from_secs(2);
/// Free arena bytes worth a trim.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
const WORTH_TRIMMING: usize = 8 << 20;

pub fn start(mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Trimming walks the arenas under their locks: off the async workers.
                    let _ = tokio::task::spawn_blocking(trim_if_worthwhile).await;
                }
                _ = shutdown.changed() => break,
            }
        }
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_if_worthwhile() {
    // SAFETY: mallinfo2 and malloc_trim only read and adjust the allocator's own state.
    unsafe {
        if libc::mallinfo2().fordblks >= WORTH_TRIMMING {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_if_worthwhile() {}
