//! Alerts on the map's signals (issue 7, in progress): `state` is the per-rule alert life cycle
//! (pending → firing → resolved with `for` and `keep_firing_for`, fingerprints over labels).
//! Rules, grouping, silences and webhook delivery are still to come.

pub mod state;
