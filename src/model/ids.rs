//! Trace and span identifiers: fixed-size, never all zeroes, shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{what} must not be all zeroes")]
    AllZero { what: &'static str },
    #[error("{what} is not valid hex: {reason}")]
    Hex { what: &'static str, reason: String },
}

macro_rules! define_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Accepts exactly `LEN` bytes that are not all zero (the OTLP validity rule).
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    expected: $len,
                    actual: bytes.len(),
                })?;
                if array.iter().all(|b| *b == 0) {
                    return Err(IdError::AllZero { what: $what });
                }
                Ok(Self(array))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                let bytes = hex::decode(text).map_err(|err| IdError::Hex {
                    what: $what,
                    reason: err.to_string(),
                })?;
                Self::from_bytes(&bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }
    };
}

define_id!(TraceId, 16, "trace id");
define_id!(SpanId, 8, "span id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id: TraceId = "0af7651916cd43dd8448eb211c80319c"
            .parse()
            .expect("valid id");
        assert_eq!(id.to_string(), "0af7651916cd43dd8448eb211c80319c");
    }

    #[test]
    fn rejects_zero_wrong_length_and_bad_hex() {
        assert_eq!(
            SpanId::from_bytes(&[0; 8]),
            Err(IdError::AllZero { what: "span id" })
        );
        assert!(matches!(
            TraceId::from_bytes(&[1; 8]),
            Err(IdError::Length { actual: 8, .. })
        ));
        assert!(matches!("zz".parse::<SpanId>(), Err(IdError::Hex { .. })));
    }
}
