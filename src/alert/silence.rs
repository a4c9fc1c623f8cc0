//! Silences: label matchers with a time span, as Alertmanager has them (same JSON shape as
//! its `/api/v2/silences`). An active silence keeps matching alerts out of notifications; it
//! is pending before `startsAt` and expired after `endsAt`.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::state::Labels;

/// Silences kept at most; beyond this the longest-expired are forgotten first.
pub const MAX_SILENCES: usize = 1000;
const MAX_MATCHERS: usize = 32;
const MAX_TEXT_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// Whether `labels` satisfy this matcher (a missing label reads as empty, as in
    /// Alertmanager). `regex` is the compiled, anchored pattern of a regex matcher.
    fn matches(&self, labels: &Labels, regex: Option<&Regex>) -> bool {
        let actual = labels.get(&self.name).map_or("", String::as_str);
        let equal = match regex {
            Some(regex) => regex.is_match(actual),
            None => actual == self.value,
        };
        equal == self.is_equal
    }

    fn compile(&self) -> Result<Option<Regex>, String> {
        if !self.is_regex {
            return Ok(None);
        }
        Regex::new(&format!("^(?:{})$", self.value))
            .map(Some)
            .map_err(|err| format!("matcher `{}`: invalid regex: {err}", self.name))
    }
}

/// What a client sends to create a silence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// RFC 3339; default now.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339.
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_unix_nano: u64,
    pub ends_at_unix_nano: u64,
    pub created_by: String,
    pub comment: String,
    pub updated_at_unix_nano: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// Checks `new` and makes it a silence with `id`, at `now`.
    pub fn create(new: NewSilence, id: String, now: u64) -> Result<Self, String> {
        if new.matchers.is_empty() || new.matchers.len() > MAX_MATCHERS {
            return Err(format!("give 1 to {MAX_MATCHERS} matchers"));
        }
        for matcher in &new.matchers {
            if matcher.name.is_empty() {
                return Err("a matcher has an empty name".to_owned());
            }
            if matcher.name.len() + matcher.value.len() > MAX_TEXT_BYTES {
                return Err(format!("matcher `{}` is too long", matcher.name));
            }
            matcher.compile()?;
        }
        let empty = Labels::new();
        let silences_everything = new.matchers.iter().all(|matcher| {
            let regex = matcher.compile().ok().flatten();
            matcher.matches(&empty, regex.as_ref())
        });
        if silences_everything {
            return Err(
                "at least one matcher must not match an empty label (it would silence every alert)"
                    .to_owned(),
            );
        }
        for (field, text) in [("createdBy", &new.created_by), ("comment", &new.comment)] {
            if text.trim().is_empty() {
                return Err(format!("`{field}` is required"));
            }
            if text.len() > MAX_TEXT_BYTES {
                return Err(format!("`{field}` is longer than {MAX_TEXT_BYTES} bytes"));
            }
        }
        let time = |field: &str, text: &str| {
            crate::model::parse_rfc3339(text)
                .ok_or_else(|| format!("`{field}` is not an RFC 3339 time: `{text}`"))
        };
        let starts_at = match &new.starts_at {
            Some(text) => time("startsAt", text)?,
            None => now,
        };
        let ends_at = time("endsAt", &new.ends_at)?;
        if ends_at <= starts_at || ends_at <= now {
            return Err("`endsAt` must be after `startsAt` and in the future".to_owned());
        }
        Ok(Silence {
            id,
            matchers: new.matchers,
            starts_at_unix_nano: starts_at,
            ends_at_unix_nano: ends_at,
            created_by: new.created_by,
            comment: new.comment,
            updated_at_unix_nano: now,
        })
    }

    pub fn state(&self, now: u64) -> SilenceState {
        if now >= self.ends_at_unix_nano {
            SilenceState::Expired
        } else if now < self.starts_at_unix_nano {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Ends the silence at `now` (a silence is expired, never deleted, so the log stays).
    pub fn expire(&mut self, now: u64) {
        if self.ends_at_unix_nano > now {
            self.ends_at_unix_nano = now;
            self.starts_at_unix_nano = self.starts_at_unix_nano.min(now);
        }
        self.updated_at_unix_nano = now;
    }
}

/// A matcher with its pattern compiled.
type Compiled = (Matcher, Option<Regex>);

/// The silences in force at one moment, with their patterns compiled once.
#[derive(Debug, Default)]
pub struct ActiveSilences {
    silences: Vec<(String, Vec<Compiled>)>,
}

impl ActiveSilences {
    pub fn new(silences: &[Silence], now: u64) -> Self {
        let silences = silences
            .iter()
            .filter(|silence| silence.state(now) == SilenceState::Active)
            .map(|silence| {
                let matchers = silence
                    .matchers
                    .iter()
                    .map(|matcher| (matcher.clone(), matcher.compile().ok().flatten()))
                    .collect();
                (silence.id.clone(), matchers)
            })
            .collect();
        Self { silences }
    }

    /// The ids of the silences that silence `labels`.
    pub fn silenced_by(&self, labels: &Labels) -> Vec<String> {
        self.silences
            .iter()
            .filter(|(_, matchers)| {
                matchers
                    .iter()
                    .all(|(matcher, regex)| matcher.matches(labels, regex.as_ref()))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn is_silenced(&self, labels: &Labels) -> bool {
        !self.silenced_by(labels).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    fn matcher(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            is_regex,
            is_equal,
        }
    }

    fn new(matchers: Vec<Matcher>, ends_in_secs: u64) -> NewSilence {
        NewSilence {
            matchers,
            starts_at: None,
            ends_at: crate::model::rfc3339(T0 + ends_in_secs * SEC).expect("time"),
            created_by: "ana".to_owned(),
            comment: "deploying payments".to_owned(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_equal_not_equal_and_regex_and_the_silence_expires_on_time() {
        let silence = Silence::create(
            new(
                vec![
                    matcher("alertname", "EdgeErrorRateHigh", false, true),
                    matcher("target", "service:pay.*", true, true),
                    matcher("severity", "critical", false, false),
                ],
                60,
            ),
            "s1".to_owned(),
            T0,
        )
        .expect("valid");
        let alert = labels(&[
            ("alertname", "EdgeErrorRateHigh"),
            ("target", "service:payments"),
            ("severity", "warning"),
        ]);
        let active = ActiveSilences::new(std::slice::from_ref(&silence), T0 + SEC);
        assert_eq!(active.silenced_by(&alert), ["s1"]);
        let mut other = alert.clone();
        other.insert("target".to_owned(), "service:orders".to_owned());
        assert!(!active.is_silenced(&other));
        let mut critical = alert.clone();
        critical.insert("severity".to_owned(), "critical".to_owned());
        assert!(!active.is_silenced(&critical));

        assert_eq!(silence.state(T0 + 59 * SEC), SilenceState::Active);
        assert_eq!(silence.state(T0 + 60 * SEC), SilenceState::Expired);
        assert!(
            !ActiveSilences::new(std::slice::from_ref(&silence), T0 + 60 * SEC).is_silenced(&alert)
        );
        let mut expired = silence;
        expired.expire(T0 + 10 * SEC);
        assert_eq!(expired.state(T0 + 10 * SEC), SilenceState::Expired);
    }

    #[test]
    fn bad_silences_are_refused_with_the_reason() {
        for (silence, expected) in [
            (new(vec![], 60), "matchers"),
            (
                new(vec![matcher("alertname", ".*", true, true)], 60),
                "every alert",
            ),
            (
                new(vec![matcher("alertname", "(", true, true)], 60),
                "invalid regex",
            ),
            (new(vec![matcher("a", "b", false, true)], 0), "endsAt"),
            (
                NewSilence {
                    created_by: " ".to_owned(),
                    ..new(vec![matcher("a", "b", false, true)], 60)
                },
                "createdBy",
            ),
            (
                NewSilence {
                    ends_at: "tomorrow".to_owned(),
                    ..new(vec![matcher("a", "b", false, true)], 60)
                },
                "RFC 3339",
            ),
        ] {
            let err = Silence::create(silence, "x".to_owned(), T0).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
