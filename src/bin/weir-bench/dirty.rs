//! The kernel's dirty page cache, as the sustained-produce row needs it.
//!
//! Background flush acknowledges a write once it is in the page cache, so a producer
//! runs at CPU speed only until the dirty pages reach the kernel's free-run limit
//! (halfway between `vm.dirty_background_*` and `vm.dirty_*`, of the memory that may be
//! dirtied). Past it, `balance_dirty_pages` holds every writer to the rate the disk takes
//! the pages back: no broker can then write faster than the disk.

/// Bytes the kernel lets be dirty before it throttles writers, estimated from the
/// `vm.dirty_*` settings and the memory that can hold page cache (free + file pages).
pub fn free_run_bytes() -> u64 {
    let kb = |key: &str| meminfo_kb(key).unwrap_or(0);
    let dirtyable = (kb("MemFree:") + kb("Active(file):") + kb("Inactive(file):")) * 1024;
    let limit = |bytes: &str, ratio: &str| match sysctl(bytes) {
        Some(b) if b > 0 => b,
        _ => dirtyable / 100 * sysctl(ratio).unwrap_or(20),
    };
    let background = limit("dirty_background_bytes", "dirty_background_ratio");
    let hard = limit("dirty_bytes", "dirty_ratio");
    (background + hard) / 2
}

/// Dirty plus under-writeback page cache now, in bytes.
pub fn dirty_bytes() -> u64 {
    (meminfo_kb("Dirty:").unwrap_or(0) + meminfo_kb("Writeback:").unwrap_or(0)) * 1024
}

fn meminfo_kb(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_run_limit_lies_within_memory() {
        let total = meminfo_kb("MemTotal:").expect("MemTotal in /proc/meminfo") * 1024;
        let f = free_run_bytes();
        assert!(f > 0 && f < total, "free run {f} of {total} bytes");
    }
}
