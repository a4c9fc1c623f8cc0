//! Alerts on the map's signals (issue 7, in progress): `rule` says for which label sets a
//! rule's condition holds on a map and its lag and breakers (pure); `state` is the per-rule
//! alert life cycle (pending → firing → resolved with `for` and `keep_firing_for`,
//! fingerprints over labels); `payload` builds Alertmanager webhook v4 bodies. The config section, the evaluation loop, grouping, silences and
//! webhook delivery are still to come.

pub mod payload;
pub mod rule;
pub mod state;
