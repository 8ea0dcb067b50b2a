//! Cache prefetch hints: the one place this crate uses `unsafe`.
//!
//! A prefetch asks the processor to start loading a cache line and goes on without
//! waiting; it never faults, whatever the address, and changes no value any load
//! later returns. Stable Rust has it only as the `_mm_prefetch` intrinsic, an `unsafe
//! fn` because it takes a raw pointer; so the workspace denies `unsafe_code` rather
//! than forbidding it, and [`line`] alone allows it (every other crate forbids it at
//! its root). On other architectures the hints do nothing.

/// Starts loading every line of `v`.
#[inline(always)]
pub fn whole<T>(v: &T) {
    first_bytes(v, std::mem::size_of::<T>());
}

/// Starts loading the lines of the first `bytes` bytes of `v` (a value that starts on
/// a line, as a cache-aligned session does, needs one per 64 bytes; another one more).
#[inline(always)]
pub fn first_bytes<T>(v: &T, bytes: usize) {
    let p = std::ptr::from_ref(v).cast::<u8>();
    let mut at = 0;
    while at < bytes {
        line(p.wrapping_add(at));
        at += 64;
    }
    if !(p as usize).is_multiple_of(64) {
        // The last line, when `v` does not start on a line.
        line(p.wrapping_add(bytes.saturating_sub(1)));
    }
}

#[inline(always)]
#[allow(unsafe_code)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch does not dereference its address (it cannot fault, even on an
    // invalid one) and has no effect on memory; `sse`, which the intrinsic needs, is
    // part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
