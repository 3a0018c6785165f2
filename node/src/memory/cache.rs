//! A per-thread cache of the page-sized blocks an HTTP connection borrows, in front of the
//! system allocator (`#[global_allocator]` in the `gatehouse` binary).
//!
//! Every connection served by actix-http (backend and admin API requests, metrics scrapes,
//! upgrades outside `http::front`'s fast path) borrows and returns a few blocks of
//! 4–16 KiB: the dispatcher's two 8 KiB buffers and the task cell of its future (tokio aligns
//! task cells to 128 bytes, so glibc serves them through `posix_memalign`). With blocks of
//! 4 KiB and more mapped on their own ([`super::tune_allocator`]) each of them cost an `mmap`,
//! page faults and a `munmap`: when `/ws` handshakes still went through actix-http, `perf
//! record -e syscalls:sys_enter_mmap --call-graph dwarf` counted ≈ 1.2 `mmap`s per connection
//! (2026-12-06). This allocator serves every block of 4–16 KiB with an alignment up to a page
//! from its own mappings, rounded up to whole pages, and keeps up to [`PER_CLASS`] freed blocks
//! per size class and thread for the next allocation of that class. The blocks are mapped on
//! their own, so the cache leaves no holes among the connections' long-lived allocations, and
//! what it can hold is bounded: at most `PER_CLASS` × (4 + 8 + 12 + 16) KiB per thread, given
//! back when the thread ends.
//!
//! When `mmap` fails (the process reached `vm.max_map_count` or its address-space limit), a
//! block is taken from [`System`] instead (glibc then grows its heap rather than mapping), and
//! remembered in a fixed table of [`FALLBACK_SLOTS`] so that `dealloc` gives it back to
//! [`System`]; the table costs nothing while no block is in it (one atomic load per free).
//! Only with the table full as well does an allocation fail, as a failed `mmap` did before.
//!
//! Owns only the blocks of those classes. Everything else goes straight to [`System`] (glibc
//! with the settings of [`super::tune_allocator`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Blocks served by [`System`] because `mmap` failed, remembered at once at most.
pub const FALLBACK_SLOTS: usize = 1024;

/// The addresses of those blocks (0: free slot). A fixed table: the allocator must not
/// allocate to remember what it allocated.
static FALLBACK: [AtomicUsize; FALLBACK_SLOTS] = [const { AtomicUsize::new(0) }; FALLBACK_SLOTS];

/// How many slots of [`FALLBACK`] are in use.
static FALLBACK_LIVE: AtomicUsize = AtomicUsize::new(0);

/// The layout a fallback block of `class` is taken from [`System`] with.
fn fallback_layout(class: usize) -> Layout {
    // A page-aligned whole number of pages: always a valid layout.
    Layout::from_size_align(class_size(class), PAGE).unwrap_or(Layout::new::<u8>())
}

/// A block of `class`: `mapped` (a fresh mapping, or null when `mmap` failed), else one from
/// [`System`] remembered in [`FALLBACK`]; null only when both fail.
#[allow(unsafe_code)]
fn block(class: usize, mapped: *mut u8, zeroed: bool) -> *mut u8 {
    if !mapped.is_null() {
        return mapped;
    }
    let layout = fallback_layout(class);
    // SAFETY: a layout of non-zero size.
    let p = unsafe {
        if zeroed {
            System.alloc_zeroed(layout)
        } else {
            System.alloc(layout)
        }
    };
    if p.is_null() {
        return p;
    }
    for slot in &FALLBACK {
        if slot
            .compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            FALLBACK_LIVE.fetch_add(1, Ordering::AcqRel);
            return p;
        }
    }
    // SAFETY: `p` was just allocated with `layout` and is not handed out.
    unsafe { System.dealloc(p, layout) };
    std::ptr::null_mut()
}

/// Frees a block of `class`: a fallback block goes back to [`System`], a mapped one to the
/// thread's cache or the kernel.
#[allow(unsafe_code)]
fn free_block(class: usize, ptr: *mut u8) {
    if FALLBACK_LIVE.load(Ordering::Acquire) > 0 {
        for slot in &FALLBACK {
            if slot.load(Ordering::Relaxed) == ptr as usize
                && slot
                    .compare_exchange(ptr as usize, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                FALLBACK_LIVE.fetch_sub(1, Ordering::AcqRel);
                // SAFETY: `ptr` came from `System` with this layout in `block`.
                unsafe { System.dealloc(ptr, fallback_layout(class)) };
                return;
            }
        }
    }
    if !keep(class, ptr) {
        unmap(ptr, class_size(class));
    }
}

/// Size classes of 4 KiB each: 4, 8, 12 and 16 KiB.
const CLASSES: usize = 4;
/// Class granularity: one page.
const PAGE: usize = 4096;
/// Blocks kept per class and thread (a handful of handshakes run at once on a worker).
pub const PER_CLASS: usize = 16;

struct Cache {
    len: [Cell<usize>; CLASSES],
    slots: [[Cell<usize>; PER_CLASS]; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, len) in self.len.iter().enumerate() {
            for slot in &self.slots[class][..len.get()] {
                unmap(slot.get() as *mut u8, class_size(class));
            }
            len.set(0);
        }
    }
}

thread_local! {
    // Const-initialised: reading it never allocates. Its destructor unmaps what the thread
    // kept; after it ran, `try_with` fails and blocks are mapped and unmapped directly.
    static CACHE: Cache = const {
        Cache {
            len: [const { Cell::new(0) }; CLASSES],
            slots: [const { [const { Cell::new(0) }; PER_CLASS] }; CLASSES],
        }
    };
}

/// The system allocator with a per-thread cache of 4–16 KiB blocks.
pub struct HandshakeBlocks;

/// The class of a layout this allocator maps itself.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if !(PAGE..=CLASSES * PAGE).contains(&size) || layout.align() > PAGE {
        return None;
    }
    Some(size.div_ceil(PAGE) - 1)
}

/// Bytes mapped for a block of `class`.
const fn class_size(class: usize) -> usize {
    (class + 1) * PAGE
}

/// A fresh, page-aligned mapping of `len` bytes (null when the kernel refuses).
#[allow(unsafe_code)]
fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel picks; no existing memory
    // is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Gives back a mapping made by [`map`] with the same length.
#[allow(unsafe_code)]
fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr` and `len` describe exactly one mapping made by `map`, no longer in use.
    unsafe {
        libc::munmap(ptr.cast(), len);
    }
}

fn take(class: usize) -> Option<*mut u8> {
    CACHE
        .try_with(|c| {
            let n = c.len[class].get();
            if n == 0 {
                return None;
            }
            c.len[class].set(n - 1);
            Some(c.slots[class][n - 1].get() as *mut u8)
        })
        .ok()
        .flatten()
}

/// Keeps `ptr` for reuse; false when the class is full or the thread is ending (the caller
/// unmaps it).
fn keep(class: usize, ptr: *mut u8) -> bool {
    CACHE
        .try_with(|c| {
            let n = c.len[class].get();
            if n == PER_CLASS {
                return false;
            }
            c.slots[class][n].set(ptr as usize);
            c.len[class].set(n + 1);
            true
        })
        .unwrap_or(false)
}

// SAFETY: a block of a class is a whole-page mapping of that class's size, page-aligned, so it
// holds every layout mapped to the class; it is handed out by one thread at a time (the cache
// is per thread) and unmapped with the length it was mapped with. Every other layout goes to
// `System` and comes back to it, since `class_of` routes a layout the same way both times.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for HandshakeBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => {
                take(class).unwrap_or_else(|| block(class, map(class_size(class)), false))
            }
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => free_block(class, ptr),
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => match take(class) {
                Some(p) => {
                    // SAFETY: `p` is a block of at least `layout.size()` bytes.
                    unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                    p
                }
                // A fresh mapping is zeroed by the kernel.
                None => block(class, map(class_size(class)), true),
            },
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        match (class_of(layout), class_of(new_layout)) {
            // Neither side is a cached class: glibc may grow or move in place.
            // SAFETY: forwarded with the caller's guarantees.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            // The block of a class already holds every size of that class.
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                // SAFETY: a fresh block of `new_layout`; the old one holds `layout.size()`
                // initialised bytes and is freed after the copy.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_4_to_16_kib_aligned_up_to_a_page() {
        let l = |s, a| Layout::from_size_align(s, a).unwrap();
        assert!(class_of(l(4095, 8)).is_none());
        assert_eq!(class_of(l(4096, 8)), Some(0));
        assert_eq!(class_of(l(8192, 1)).map(class_size), Some(8192));
        assert_eq!(class_of(l(8193, 1)).map(class_size), Some(12288));
        assert_eq!(class_of(l(16384, 16)), Some(3));
        assert!(class_of(l(16385, 16)).is_none());
        // Task cells are aligned to 128 bytes: served too, up to a page.
        assert_eq!(class_of(l(5000, 128)), Some(1));
        assert_eq!(class_of(l(8192, 4096)), Some(1));
        assert!(class_of(l(8192, 8192)).is_none());
    }

    #[test]
    fn a_freed_block_is_reused_and_growth_keeps_the_contents() {
        let a = HandshakeBlocks;
        let layout = Layout::from_size_align(8000, 8).unwrap();
        // SAFETY: plain allocations of non-zero layouts, freed with the same layouts.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            a.dealloc(p, layout);
            let q = a.alloc(Layout::from_size_align(8192, 16).unwrap());
            assert_eq!(p, q, "the freed block of the class is handed out again");
            for i in 0..8192 {
                *q.add(i) = (i % 251) as u8;
            }
            // 8 KiB → 12 KiB moves to another class; 12 KiB → 100 KiB leaves the cache.
            let r = a.realloc(q, Layout::from_size_align(8192, 16).unwrap(), 12_000);
            let s = a.realloc(r, Layout::from_size_align(12_000, 16).unwrap(), 100_000);
            for i in 0..8192 {
                assert_eq!(*s.add(i), (i % 251) as u8);
            }
            a.dealloc(s, Layout::from_size_align(100_000, 16).unwrap());
            let z = a.alloc_zeroed(Layout::from_size_align(5000, 8).unwrap());
            assert!((0..5000).all(|i| *z.add(i) == 0));
            a.dealloc(z, Layout::from_size_align(5000, 8).unwrap());
        }
    }

    #[test]
    fn blocks_are_page_aligned_and_reused_blocks_come_back_zeroed_when_asked() {
        let a = HandshakeBlocks;
        let layout = Layout::from_size_align(4500, 128).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(layout);
            assert_eq!(p as usize % PAGE, 0);
            std::ptr::write_bytes(p, 0xAB, layout.size());
            a.dealloc(p, layout);
            let z = a.alloc_zeroed(layout);
            assert_eq!(z, p, "the dirty block is reused");
            assert!((0..layout.size()).all(|i| *z.add(i) == 0));
            a.dealloc(z, layout);
        }
    }

    #[test]
    fn at_most_per_class_blocks_are_kept() {
        let a = HandshakeBlocks;
        let layout = Layout::from_size_align(16_000, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let blocks: Vec<_> = (0..PER_CLASS + 4).map(|_| a.alloc(layout)).collect();
            for &p in &blocks {
                a.dealloc(p, layout);
            }
            let kept = CACHE.with(|c| c.len[3].get());
            assert_eq!(kept, PER_CLASS);
        }
    }

    #[test]
    fn when_mmap_fails_blocks_come_from_the_system_allocator_and_go_back_to_it() {
        let a = HandshakeBlocks;
        let layout = Layout::from_size_align(6000, 64).unwrap();
        // A failed `mmap` (null) gives a zeroed, page-aligned block from `System`, remembered.
        let p = block(1, std::ptr::null_mut(), true);
        assert!(!p.is_null());
        assert_eq!(p as usize % PAGE, 0);
        assert!(FALLBACK
            .iter()
            .any(|s| s.load(Ordering::Relaxed) == p as usize));
        // SAFETY: `p` is a block of class 1 (8 KiB) served for `layout`.
        unsafe {
            assert!((0..8192).all(|i| *p.add(i) == 0));
            std::ptr::write_bytes(p, 7, 8192);
            a.dealloc(p, layout);
        }
        // Freed to `System`, not kept in the thread's cache for the next block.
        assert!(!FALLBACK
            .iter()
            .any(|s| s.load(Ordering::Relaxed) == p as usize));
        let kept = CACHE.with(|c| c.len[1].get());
        assert!((0..kept).all(|i| CACHE.with(|c| c.slots[1][i].get()) != p as usize));
    }
}
