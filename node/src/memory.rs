//! Allocator settings for a process that holds many idle connections.
//!
//! Every WebSocket handshake borrows actix-http's two 8 KiB dispatcher buffers (and a few other
//! transient blocks of several KiB) and frees them once the socket is handed to the connection
//! task, while the connection's own small, long-lived allocations are made in between. With
//! glibc's defaults those blocks come from the heap, and the holes they leave among long-lived
//! allocations are not given back: measured with 10 000 idle joined connections
//! (`gatehouse-bench idle`), 9.6 KiB of RSS per connection, against 5.0 KiB when blocks of
//! 4 KiB and more are mapped on their own (and unmapped when freed). The price is an `mmap` and
//! a `munmap` per such block, a few per handshake and per large fan-out batch.
//!
//! Touches the process's allocator settings only, once, at start.

/// Blocks of this size and more get their own mapping.
pub const MMAP_THRESHOLD: i32 = 4096;

/// Applies the settings (glibc only; elsewhere a no-op). The environment's
/// `MALLOC_MMAP_THRESHOLD_` still wins when set, so the choice can be measured.
///
/// The project's only `unsafe` (the workspace denies it elsewhere): `mallopt` has no safe
/// wrapper.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called once at start, before the
        // runtime's threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}
