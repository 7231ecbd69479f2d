//! The local UTC offset from the system's time zone file (TZif, RFC 8536), so budgets and
//! windows follow local time including DST changes. [`offset_at`] is pure (tested with
//! hand-built files); [`local_offset`] reads `$TZ` (a zone name) or `/etc/localtime` once.

use std::sync::OnceLock;

fn be_i32(d: &[u8], at: usize) -> Option<i32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

fn be_u32(d: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(b)).ok()
}

/// The UTC offset a TZif file gives for Unix second `unix` (version 1 data block: correct
/// to 2037; later instants keep the last transition's offset). `None`: not a TZif file.
pub fn offset_at(data: &[u8], unix: i64) -> Option<i32> {
    if data.get(..4)? != b"TZif" {
        return None;
    }
    let isut = be_u32(data, 20)?;
    let isstd = be_u32(data, 24)?;
    let leap = be_u32(data, 28)?;
    let timecnt = be_u32(data, 32)?;
    let typecnt = be_u32(data, 36)?;
    let charcnt = be_u32(data, 40)?;
    if typecnt == 0 || typecnt > 256 || timecnt > 100_000 {
        return None;
    }
    let times = 44usize;
    let idx = times.checked_add(timecnt.checked_mul(4)?)?;
    let types = idx.checked_add(timecnt)?;
    // The block must be complete.
    let end = types
        .checked_add(typecnt.checked_mul(6)?)?
        .checked_add(charcnt)?
        .checked_add(leap.checked_mul(8)?)?
        .checked_add(isstd)?
        .checked_add(isut)?;
    if data.len() < end {
        return None;
    }
    let utoff = |t: usize| be_i32(data, types + t * 6);
    let mut ty = None;
    for i in 0..timecnt {
        if i64::from(be_i32(data, times + i * 4)?) > unix {
            break;
        }
        ty = Some(usize::from(*data.get(idx + i)?));
    }
    let ty = match ty {
        Some(t) if t < typecnt => t,
        Some(_) => return None,
        // Before the first transition: the first standard-time type (RFC 8536 3.2).
        None => (0..typecnt)
            .find(|&t| data.get(types + t * 6 + 4) == Some(&0))
            .unwrap_or(0),
    };
    utoff(ty)
}

fn zone_file() -> Option<&'static [u8]> {
    static FILE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = match std::env::var("TZ") {
            Ok(z) if !z.is_empty() => {
                let z = z.trim_start_matches(':');
                if z.starts_with('/') {
                    std::path::PathBuf::from(z)
                } else if z.split('/').all(|p| !p.is_empty() && p != "..") {
                    std::path::Path::new("/usr/share/zoneinfo").join(z)
                } else {
                    return None;
                }
            }
            _ => "/etc/localtime".into(),
        };
        match std::fs::read(&path) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no local time zone file: budgets use UTC unless utc_offset is set");
                None
            }
        }
    })
    .as_deref()
}

/// The local UTC offset (seconds east) at Unix second `unix`; 0 (UTC) when the system's
/// zone cannot be read.
pub fn local_offset(unix: i64) -> i32 {
    zone_file().and_then(|d| offset_at(d, unix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TZif v1 file: types (utoff, isdst), transitions (time, type).
    fn tzif(types: &[(i32, u8)], trans: &[(i32, u8)]) -> Vec<u8> {
        let mut d = b"TZif2".to_vec();
        d.extend([0u8; 15]);
        for n in [0, 0, 0, trans.len(), types.len(), 4] {
            d.extend(u32::try_from(n).unwrap_or(0).to_be_bytes());
        }
        for (t, _) in trans {
            d.extend(t.to_be_bytes());
        }
        for (_, i) in trans {
            d.push(*i);
        }
        for (off, dst) in types {
            d.extend(off.to_be_bytes());
            d.push(*dst);
            d.push(0);
        }
        d.extend(b"CET\0");
        d
    }

    #[test]
    fn offsets_follow_transitions() {
        // CET/CEST 2026: summer time from 2026-03-29T01:00Z to 2026-10-25T01:00Z.
        let d = tzif(
            &[(3600, 0), (7200, 1)],
            &[(1_774_746_000, 1), (1_792_890_000, 0)],
        );
        assert_eq!(offset_at(&d, 1_767_225_600), Some(3600)); // 2026-01-01 (before any)
        assert_eq!(offset_at(&d, 1_774_746_000), Some(7200)); // at the change
        assert_eq!(offset_at(&d, 1_780_000_000), Some(7200));
        assert_eq!(offset_at(&d, 1_800_000_000), Some(3600));
    }

    #[test]
    fn garbage_and_truncation_are_none() {
        let d = tzif(&[(3600, 0)], &[(0, 0)]);
        for n in 0..d.len() {
            assert_eq!(offset_at(&d[..n], 0), None, "prefix {n}");
        }
        assert_eq!(offset_at(b"not a zone file at all, really not", 0), None);
        // A transition naming a type that does not exist.
        let bad = tzif(&[(3600, 0)], &[(0, 7)]);
        assert_eq!(offset_at(&bad, 10), None);
    }

    #[test]
    fn the_system_zone_reads_without_panicking() {
        let o = local_offset(1_796_000_000);
        assert!((-18 * 3600..=18 * 3600).contains(&o), "{o}");
    }
}
