//! The C allocator's settings, where it is glibc's (a musl build has none of
//! these and needs none: its allocator keeps little).
//!
//! A list comes in pages of about a megabyte that are decoded and dropped
//! while the compact records made from them stay. glibc raises its mmap
//! threshold each time such a buffer is freed, so later pages land in the
//! heap between long-lived records and their space is never returned: the
//! peak grows by several MiB per 10,000 objects for nothing. A fixed
//! threshold keeps large buffers in their own mappings, and a trim after the
//! listing hands back what the decoding left.

/// Called once, before the runtime starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns the free memory of the heap to the system (after a listing).
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
