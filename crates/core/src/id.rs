//! Identifiers: random UUIDv4 text, so ids reveal neither order nor count;
//! and, for rows written in volume, time-ordered UUIDv7.

pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the platform has a random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A time-ordered UUIDv7 (48 bits of Unix milliseconds, then random), for
/// rows written in volume (threat events, alerts): consecutive ids sort
/// together, so an insert appends to the primary-key index instead of
/// touching a random page of it, which on a table of millions of rows is a
/// page read per insert. Such rows carry their times openly anyway.
pub fn new_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_uuid_v4_and_distinct() {
        let a = super::new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, super::new_id());
    }

    #[test]
    fn ordered_ids_are_uuid_v7_and_sort_by_time() {
        let a = super::new_ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_ordered_id();
        assert_eq!((a.len(), &a[14..15]), (36, "7"));
        assert!(a < b, "{a} then {b}");
    }
}
