//! Civil dates and the local time zone for budgets, from the `jiff` crate: it reads the
//! system's zone (`$TZ`, else `/etc/localtime`; TZif v1 to v4, "slim" files included, whose
//! rules after the last transition live in the footer's POSIX TZ string) and applies DST.
//! Owns the conversions day number ⇄ civil date and instant ⇄ local offset; must not hold
//! budget state or read the wall clock.

use std::sync::OnceLock;

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};

/// Seconds per day.
const DAY: i64 = 86_400;

/// A time zone budgets follow: the system's, a fixed `utc_offset`, or (tests) a rule.
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

impl Zone {
    /// The system's zone, read once; UTC (with a warning) when it cannot be read.
    pub fn system() -> Zone {
        static SYSTEM: OnceLock<TimeZone> = OnceLock::new();
        Zone(
            SYSTEM
                .get_or_init(|| {
                    TimeZone::try_system().unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "no local time zone: budgets use UTC unless utc_offset is set");
                        TimeZone::UTC
                    })
                })
                .clone(),
        )
    }

    /// A fixed offset (seconds east of UTC; out-of-range offsets are taken as UTC).
    pub fn fixed(offset: i32) -> Zone {
        Zone(TimeZone::fixed(
            Offset::from_seconds(offset).unwrap_or(Offset::UTC),
        ))
    }

    /// A zone from a POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
    pub fn posix(rule: &str) -> Option<Zone> {
        TimeZone::posix(rule).ok().map(Zone)
    }

    /// A zone from TZif data (RFC 8536, any version).
    pub fn tzif(name: &str, data: &[u8]) -> Option<Zone> {
        TimeZone::tzif(name, data).ok().map(Zone)
    }

    /// The UTC offset (seconds east) at Unix second `unix`.
    pub fn offset_at(&self, unix: i64) -> i32 {
        Timestamp::from_second(unix).map_or(0, |t| self.0.to_offset(t).seconds())
    }

    /// The Unix second at which the local wall clock reads `local` (seconds since
    /// 1970-01-01 local): in a DST gap the first instant after it, in a fold the earlier of
    /// the two.
    pub fn unix_of_local(&self, local: i64) -> i64 {
        Timestamp::from_second(local)
            .ok()
            .map(|t| t.to_zoned(TimeZone::UTC).datetime())
            .and_then(|dt| dt.to_zoned(self.0.clone()).ok())
            .map_or(local, |z| z.timestamp().as_second())
    }

    /// The Unix second at which local day number `day` (days since 1970-01-01) begins in
    /// this zone: its midnight, or the first instant after a DST gap that skips midnight.
    pub fn start_of_day(&self, day: i64) -> i64 {
        date_of(day)
            .and_then(|d| d.to_zoned(self.0.clone()).ok())
            .map_or(day * DAY, |z| z.timestamp().as_second())
    }
}

/// The local UTC offset (seconds east) of the system's zone at Unix second `unix`.
pub fn local_offset(unix: i64) -> i32 {
    Zone::system().offset_at(unix)
}

/// Day number 0.
const EPOCH: Date = Date::constant(1970, 1, 1);

/// The civil date of day number `day` (days since 1970-01-01), within jiff's range.
fn date_of(day: i64) -> Option<Date> {
    EPOCH.checked_add(Span::new().try_days(day).ok()?).ok()
}

/// `(year, month, day)` of day number `day`; 1970-01-01 outside jiff's range (years
/// -9999..=9999, far beyond any budget).
pub fn civil_from_days(day: i64) -> (i64, u32, u32) {
    date_of(day).map_or((1970, 1, 1), |d| {
        (
            i64::from(d.year()),
            u32::try_from(d.month()).unwrap_or(1),
            u32::try_from(d.day()).unwrap_or(1),
        )
    })
}

/// The day number of a civil date; `None` for a date that does not exist.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let date = Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    Some(i64::from(EPOCH.until(date).ok()?.get_days()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central European time: CET (+1), CEST (+2) from the last Sunday of March 01:00Z to
    /// the last Sunday of October 01:00Z.
    const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

    /// A "slim" TZif v2 file (as zic -b slim writes): empty v1 block, no transitions in the
    /// v2 block, one type, and the rules only in the footer's TZ string.
    fn slim_tzif(footer: &str) -> Vec<u8> {
        fn header(v: u8, typecnt: u32, charcnt: u32) -> Vec<u8> {
            let mut d = b"TZif".to_vec();
            d.push(v);
            d.extend([0u8; 15]);
            for n in [0, 0, 0, 0, typecnt, charcnt] {
                d.extend(u32::to_be_bytes(n));
            }
            d
        }
        // Each block: no transitions, one type (CET, +1, standard time).
        let block = |v| {
            let mut d = header(v, 1, 4);
            d.extend(3600i32.to_be_bytes());
            d.extend([0, 0]);
            d.extend(b"CET\0");
            d
        };
        let mut d = block(b'2');
        d.extend(block(b'2'));
        d.push(b'\n');
        d.extend(footer.as_bytes());
        d.push(b'\n');
        d
    }

    #[test]
    fn offsets_follow_dst() {
        let z = Zone::posix(CET).unwrap_or_else(|| panic!("rule"));
        assert_eq!(z.offset_at(1_767_225_600), 3600); // 2026-01-01
        assert_eq!(z.offset_at(1_774_746_000), 7200); // 2026-03-29T01:00Z, the change
        assert_eq!(z.offset_at(1_774_745_999), 3600);
        assert_eq!(z.offset_at(1_780_000_000), 7200);
        assert_eq!(z.offset_at(1_800_000_000), 3600);
    }

    /// Security finding N11: a slim TZif file keeps DST (the hand-written v1 reader saw no
    /// transitions in it and stayed on standard time all year).
    #[test]
    fn a_slim_tzif_file_keeps_dst() {
        let z = Zone::tzif("Europe/Test", &slim_tzif(CET)).unwrap_or_else(|| panic!("tzif"));
        assert_eq!(z.offset_at(1_767_225_600), 3600); // January
        assert_eq!(z.offset_at(1_783_000_000), 7200); // July 2026
        assert_eq!(z.offset_at(4_102_444_800 + 200 * DAY), 7200); // July 2100
    }

    #[test]
    fn garbage_is_no_zone() {
        assert!(Zone::tzif("x", b"not a zone file at all, really not").is_none());
        let d = slim_tzif(CET);
        assert!(Zone::tzif("x", &d[..30]).is_none());
    }

    #[test]
    fn days_start_at_local_midnight_across_dst() {
        let z = Zone::posix(CET).unwrap_or_else(|| panic!("rule"));
        let day = |y, m, d| days_from_civil(y, m, d).unwrap_or_else(|| panic!("date"));
        // 2026-10-25 (CEST until 03:00) begins 2026-10-24T22:00Z; the 26th (CET) at 23:00Z.
        assert_eq!(z.start_of_day(day(2026, 10, 25)), 1_792_879_200);
        assert_eq!(z.start_of_day(day(2026, 10, 26)), 1_792_969_200);
        assert_eq!(civil_from_days(day(2026, 2, 28) + 1), (2026, 3, 1));
        assert_eq!(days_from_civil(2026, 2, 29), None);
    }

    #[test]
    fn civil_from_days_matches_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn the_system_zone_reads_without_panicking() {
        let o = local_offset(1_796_000_000);
        assert!((-18 * 3600..=18 * 3600).contains(&o), "{o}");
    }
}
