//! Process-wide allocator settings, applied once at start by `mserver` (and by the
//! `login-load` benchmark's server child, so it measures the same process).
//!
//! Why: every password check allocates one argon2 block array (19 MiB with the default
//! OWASP parameters) and frees it. glibc's malloc starts by serving such a request with
//! `mmap`, but on the first `free` of an mmapped chunk it raises its mmap threshold to that
//! chunk's size (the "dynamic threshold", up to 32 MiB) and the trim threshold to twice
//! that. From then on the 19 MiB arrays come from the heap arenas and stay resident after
//! they are freed: measured with `login-load flood --n 1000`, idle RSS 45 MiB and a peak of
//! idle + 275 MiB. Pinning the threshold at glibc's own default (128 KiB) turns the dynamic
//! adjustment off, so every large block is mmapped and goes back to the system on free:
//! idle 8 MiB, peak idle + 46 MiB (two argon2 arrays in flight, the connections, the rest).

/// glibc's default mmap threshold; setting it explicitly disables the dynamic threshold.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Apply the allocator settings. Returns whether they took effect (false on a libc without
/// `mallopt`, such as musl, whose allocator has no dynamic threshold to begin with).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() -> bool {
    // SAFETY: mallopt only changes malloc's parameters under malloc's own lock; it takes no
    // pointers and is safe to call at any time, from any thread.
    let rc = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
    rc == 1
}

/// Apply the allocator settings (nothing to do on this platform).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_accepted() {
        // mallopt returns 1 on success and 0 for an out-of-range value.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(tune_allocator());
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        assert!(!tune_allocator());
    }
}
