//! The process allocator: the system allocator, except that blocks of 1 GiB or more are
//! mapped with `MAP_NORESERVE`.
//!
//! Why: the `kafka-protocol` crate (0.18.0) sizes a `Vec` from an array length read off
//! the wire before decoding any element (upstream PRs #152/#161/#200, unmerged). Eight
//! bytes claiming 50 million topics ask for gigabytes up front; the system allocator
//! refuses, and Rust aborts the process — a remote crash. Mapped without reserving swap,
//! such a block costs only address space until touched; the decoder then runs out of
//! input, returns an error, and the mapping is released. Legitimate large buffers behave
//! as with malloc (which also maps large blocks lazily). Under strict overcommit
//! (`vm.overcommit_memory=2`) the kernel ignores `MAP_NORESERVE`, so the protection needs
//! the default heuristic mode.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Requests at least this large are mapped directly.
const LARGE: usize = 1 << 30;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE: usize = 4096;

pub struct Allocator;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every block is returned by the same path (mapping or System) that made it,
// chosen by its layout, which callers must pass back unchanged.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if !mapped(&layout) && !mapped(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and distinct.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_untouched_reservations_do_not_abort() {
        // 64 GiB of capacity: more than this machine has, but never touched.
        let v: Vec<u64> = Vec::with_capacity(8 << 30);
        assert!(v.capacity() >= 8 << 30);
        let mut w: Vec<u8> = Vec::with_capacity(1 << 30);
        w.extend_from_slice(b"still usable");
        w.reserve(2 << 30);
        assert_eq!(&w[..], b"still usable");
    }
}
