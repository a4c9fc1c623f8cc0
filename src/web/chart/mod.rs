//! Server-rendered SVG charts for the dashboards: [`LineChart`] (series over the buckets of a
//! range with a time axis, "nice" value ticks and the unit, a legend, hover values per bucket,
//! gaps where a bucket has no value, the bucket still in progress drawn as such, and the same
//! range an earlier day overlaid, moments such as deploys marked across it) and [`Timeline`] (states over a range as coloured bands, such
//! as a breaker's). Pure: numbers and names in, markup out. Every name is escaped here and
//! every number printed by `web::format`; what the numbers mean is the caller's business.
//! `axis` holds the ticks and the parts both charts share, `plot` the drawing of a line chart.

mod axis;
mod line;
mod plot;
mod series;
mod timeline;

pub use line::{ERRORS_COLOUR, LineChart, Marker, Series, Unit};
pub use timeline::{Band, Timeline, TimelineRow};
