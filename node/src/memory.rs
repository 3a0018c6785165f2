//! Allocator settings for a process that holds many idle connections.
//!
//! A WebSocket handshake through actix-http borrowed blocks of several KiB (the dispatcher and
//! its two 8 KiB buffers) and freed them once the socket was handed to the connection task,
//! while the connection's own small, long-lived allocations were made in between (`/ws`
//! handshakes now skip actix-http, `http::front`; other HTTP connections still
//! borrow such blocks). With glibc's defaults
//! those blocks come from the heap and leave holes among the long-lived allocations. Measured
//! with 10 000 idle joined connections (`gatehouse-bench idle`, release, 2026-11-23):
//!
//! | allocator setting | RSS per idle joined connection | connects/s |
//! |---|---:|---:|
//! | glibc defaults | 9.76 KiB | 11 156 – 13 624 |
//! | glibc, blocks ≥ 4 KiB mapped on their own (this module) | 4.95 KiB | 9 966 – 9 971 |
//! | glibc defaults + `malloc_trim` after each burst | 9.74 KiB | — |
//! | glibc, threshold 6 KiB / 16 KiB | 9.58 / 9.73 KiB | — |
//! | jemalloc (default / 500 ms decay) | 10.24 / 6.90 KiB | — |
//! | mimalloc | 12.29 KiB | — |
//!
//! So blocks of 4 KiB and more get their own mapping, unmapped when freed. The price is an
//! `mmap`, a `munmap` and page faults per such block, so the hot path keeps its blocks below
//! 4 KiB: write buffers are chains of chunks under 4 KiB (`websocket::writer`) and fan-out
//! batches are reused (`pump`). Before that, at saturation, the setting cost about a third of
//! the throughput (median best step 74 against 103 msg/s at 10 000 subscribers, 5 alternated
//! pairs, 2026-11-24 00:23); after it, alternated pairs gave 0.84M / 1.30M deliveries/s with
//! it against 0.74M / 1.32M without (2026-11-24 02:13). Lower thresholds were worse (2 KiB
//! and 1 KiB: 5.93 KiB per connection), and so was one arena (`MALLOC_ARENA_MAX=1`: 7.6 KiB).
//! `MALLOC_MMAP_THRESHOLD_=131072` (glibc's default) in the environment turns it off; this
//! module then leaves the allocator alone.
//!
//! The price of those mappings per HTTP connection (an `mmap`, page faults and a `munmap` per
//! block) is taken off by [`cache`], which maps 4–16 KiB blocks itself and keeps a few freed
//! ones per thread for the next connection.
//!
//! Touches the process's allocator settings only, once, at start, and reads its statistics
//! ([`heap_bytes`]).

pub mod cache;

/// Bytes the allocator has handed out and not taken back: glibc's `mallinfo2`, the chunks in
/// use in its arenas plus the blocks it mapped on their own. RSS minus this is what the
/// allocator holds free (holes, arena tops), the program's code and data, and the blocks
/// [`cache`] keeps. `None` where the allocator is not glibc's. Walks the arenas' free lists:
/// for a scrape, not for a hot path.
#[allow(unsafe_code)]
pub fn heap_bytes() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics (under its own locks).
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Blocks of this size and more get their own mapping.
pub const MMAP_THRESHOLD: i32 = 4096;

/// Applies the settings (glibc only; elsewhere a no-op). The environment's
/// `MALLOC_MMAP_THRESHOLD_` still wins when set, so the choice can be measured.
///
/// One of the project's few `unsafe` blocks (the workspace denies it elsewhere; others are
/// `cluster::unsent`): `mallopt` has no safe wrapper.
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
