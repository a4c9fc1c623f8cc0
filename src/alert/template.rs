//! Annotation templates, in the spelling Prometheus rules use: `{{ $value }}`,
//! `{{ $labels.source }}`, and formats `{{ $value | percent }}`, `{{ $value | ms }}`,
//! `{{ $value | humanize }}`, `{{ $labels.source | name }}` (a node id without `service:`). Anything else between braces is left as written, so a typo
//! shows in the notification instead of failing it.

use super::rule::ValueFormat;
use super::state::Labels;

/// `template` with its placeholders filled from `labels` and `value`.
pub fn render(template: &str, labels: &Labels, value: f64) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expression = after[..end].trim();
        match fill(expression, labels, value) {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn fill(expression: &str, labels: &Labels, value: f64) -> Option<String> {
    let (subject, format) = match expression.split_once('|') {
        Some((subject, format)) => (subject.trim(), Some(format.trim())),
        None => (expression, None),
    };
    if let Some(name) = subject.strip_prefix("$labels.") {
        let value = labels.get(name).cloned().unwrap_or_default();
        return match format {
            None => Some(value),
            // A node id as people say it: services by name, other nodes with their kind.
            Some("name") => Some(value.strip_prefix("service:").unwrap_or(&value).to_owned()),
            Some(_) => None,
        };
    }
    if subject != "$value" {
        return None;
    }
    let format = match format {
        None | Some("humanize") => ValueFormat::Plain,
        Some("percent") => ValueFormat::Percent,
        Some("ms") => ValueFormat::Millis,
        Some(_) => return None,
    };
    Some(format_value(format, value))
}

/// `value` as a rule of that format shows it: `8.33 %`, `151.5 ms`, `3`.
pub fn format_value(format: ValueFormat, value: f64) -> String {
    match format {
        ValueFormat::Plain => humanize(value),
        ValueFormat::Percent => format!("{} %", humanize(value * 100.0)),
        ValueFormat::Millis => format!("{} ms", humanize(value)),
    }
}

/// A figure judged for anomalies with its unit: `3.2/s`, `2.5 %`, `140 ms`.
pub fn figure_text(figure: crate::graph::anomaly::Figure, value: f64) -> String {
    use crate::graph::anomaly::Figure;
    match figure {
        Figure::Rate => format!("{}/s", humanize(value)),
        Figure::ErrorRate => format_value(ValueFormat::Percent, value),
        Figure::P95Ms => format_value(ValueFormat::Millis, value),
    }
}

/// Up to three significant decimals, no trailing zeros: 0.0833 → "0.0833", 12.5 → "12.5",
/// 1234.567 → "1234.6".
pub fn humanize(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        4
    };
    let text = format!("{value:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_values_labels_and_formats_and_keeps_unknown_placeholders() {
        let labels: Labels = [("source".to_owned(), "service:orders".to_owned())].into();
        assert_eq!(
            render(
                "{{ $value | percent }} of {{ $labels.source }} fail",
                &labels,
                0.0833
            ),
            "8.33 % of service:orders fail"
        );
        assert_eq!(render("p95 {{$value|ms}}", &labels, 151.5), "p95 151.5 ms");
        assert_eq!(render("{{ $value }}", &labels, 3.0), "3");
        assert_eq!(
            render("{{ $labels.source | name }}", &labels, 3.0),
            "orders"
        );
        assert_eq!(render("{{ $labels.nope }}!", &labels, 0.0), "!");
        assert_eq!(
            render("{{ .Oops }} {{ $value | shout }}", &labels, 1.0),
            "{{ .Oops }} {{ $value | shout }}"
        );
        assert_eq!(
            render("open {{ never closed", &labels, 1.0),
            "open {{ never closed"
        );
        assert_eq!(humanize(1234.567), "1234.6");
        assert_eq!(humanize(0.0), "0");
    }
}
