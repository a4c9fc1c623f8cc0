//! Alerts on the map's signals. `rule` says for which label sets a rule's condition holds
//! (pure); `state` is each rule's alert life cycle (pending → firing → resolved with `for` and
//! `keep_firing_for`, fingerprints over labels); `group` turns firing and resolved alerts into
//! notifications (group_by, group_wait, group_interval, repeat_interval, silences); `payload`
//! builds Alertmanager webhook v4 bodies; `builtin` holds the rules on by default; `engine` ties them together without I/O; `service`
//! runs the evaluation and delivery loops over the query service and the alert store;
//! `store` is alerting's own storage (state and outbox committed together, the delivery log,
//! silences); `delivery` is one HTTP attempt with its retry policy; `config` is the `[alerts]`
//! section with the built-in rules.

pub use service::{Alerting, AlertingTasks};

pub mod builtin;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod engine;
pub mod group;
pub mod payload;
pub mod rule;
pub mod service;
pub mod silence;
pub mod state;
pub mod store;
pub mod template;
