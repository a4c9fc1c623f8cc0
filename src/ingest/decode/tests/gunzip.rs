//! gunzip: members, bombs, the decompressed limit exactly, lying trailers, corruption.

use super::*;

#[test]
fn gunzip_round_trips_one_or_several_members() {
    assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
    let mut two_members = gzip(b"hello ");
    two_members.extend(gzip(b"world"));
    assert_eq!(gunzip(&two_members, 100).unwrap(), b"hello world");
}

#[test]
fn gunzip_of_nothing_is_nothing() {
    assert_eq!(gunzip(b"", 10).unwrap(), b"");
}

#[test]
fn gunzip_refuses_a_bomb_without_inflating_it() {
    let bomb = gzip(&vec![0; 4 << 20]);
    assert!(bomb.len() < 64 << 10, "zeros compress well");
    let err = gunzip(&bomb, 1 << 20).unwrap_err();
    assert_eq!(
        err.to_string(),
        "decompressed body exceeds the limit of 1048576 bytes"
    );
    assert!(matches!(
        err,
        DecodeError::TooLarge {
            limit_bytes: 1_048_576
        }
    ));
}

#[test]
fn gunzip_takes_exactly_the_limit_and_never_holds_more() {
    let data: Vec<u8> = (0..100_000_u32).map(|i| (i % 251) as u8).collect();
    let body = gzip(&data);
    let exact = gunzip(&body, data.len()).unwrap();
    assert_eq!(exact, data);
    assert!(
        exact.capacity() <= data.len(),
        "capacity {}",
        exact.capacity()
    );
    assert!(matches!(
        gunzip(&body, data.len() - 1),
        Err(DecodeError::TooLarge { .. })
    ));
    let roomy = gunzip(&body, 10 * data.len()).unwrap();
    assert_eq!(roomy, data);
}

#[test]
fn gunzip_handles_a_trailer_that_understates_or_overstates_the_size() {
    let data: Vec<u8> = (0..50_000_u32).map(|i| (i % 13) as u8).collect();
    // Several members: the trailer speaks for the last one only.
    let mut members = gzip(&data);
    members.extend(gzip(b"tail"));
    let mut expected = data.clone();
    expected.extend(b"tail");
    assert_eq!(gunzip(&members, 1 << 20).unwrap(), expected);
    assert!(matches!(
        gunzip(&members, expected.len() - 1),
        Err(DecodeError::TooLarge { limit_bytes }) if limit_bytes == expected.len() - 1
    ));
    // A trailer claiming more than there is.
    let mut lying = gzip(&data);
    let end = lying.len();
    lying[end - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        gunzip(&lying, 1 << 20).is_err(),
        "the gzip check catches the lie"
    );
}

#[test]
fn gunzip_reports_corrupt_and_truncated_bodies() {
    let err = gunzip(b"this is not gzip", 1000).unwrap_err();
    assert!(
        err.to_string().starts_with("gzip body is corrupt: "),
        "{err}"
    );
    let compressed = gzip(&[7; 1000]);
    let truncated = &compressed[..compressed.len() - 6];
    let err = gunzip(truncated, 10_000).unwrap_err();
    assert!(matches!(err, DecodeError::Gzip(_)), "{err}");
}
