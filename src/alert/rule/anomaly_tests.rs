//! The `anomaly` rule kind: which anomalies it alerts on, how they are labelled, and the
//! baseline in the annotations without being part of the alert's identity.

use super::*;
use crate::alert::config::AlertsConfig;
use crate::alert::engine::Engine;
use crate::alert::state::Labels;
use crate::graph::anomaly::{Departure, Reference};
use crate::model::graph::{EdgeKey, NodeKey};
use crate::query::Subject;

fn slow_edge(baseline_ms: f64) -> Anomaly {
    Anomaly {
        subject: Subject::Edge(EdgeKey {
            source: NodeKey::service("orders"),
            target: NodeKey::service("payments"),
            kind: EdgeKind::Http,
        }),
        figure: Figure::P95Ms,
        departure: Departure {
            now: 80.0,
            baseline: baseline_ms,
            score: 12.0,
            reference: Reference::WeekBefore,
        },
    }
}

fn busy_service() -> Anomaly {
    Anomaly {
        subject: Subject::Service("payments".to_owned()),
        figure: Figure::Rate,
        departure: Departure {
            now: 0.5,
            baseline: 2.5,
            score: -6.0,
            reference: Reference::DayBefore,
        },
    }
}

fn evaluated(figures: &[&str], subjects: AnomalySubjects) -> Vec<(Labels, f64)> {
    let found = [slow_edge(20.0), busy_service()];
    let view = GraphView {
        nodes: vec![],
        edges: vec![],
        window_secs: 900.0,
    };
    let empty = view.clone();
    let inputs = Inputs {
        view: &view,
        overlay: &SignalOverlay::default(),
        services: &[],
        baseline: &empty,
        baseline_services: &[],
        metric_points: &[],
        findings: &[],
        anomalies: &found,
    };
    let kind = RuleKind::Anomaly {
        figures: figures.iter().map(|figure| (*figure).to_owned()).collect(),
        subjects,
    };
    evaluate(&kind, &inputs)
}

#[test]
fn anomaly_rules_hold_per_subject_and_figure_with_the_baseline_as_details() {
    let all = evaluated(&[], AnomalySubjects::Any);
    assert_eq!(all.len(), 2);
    let (edge, value) = &all[0];
    assert_eq!(*value, 80.0, "valued by the current figure");
    let expected: Labels = [
        ("source", "service:orders"),
        ("target", "service:payments"),
        ("edge_kind", "http"),
        ("figure", "p95_ms"),
        ("direction", "up"),
        ("__now", "80 ms"),
        ("__baseline", "20 ms"),
        ("__reference", "last week"),
        ("__score", "12"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(edge, &expected);
    let (service, _) = &all[1];
    assert_eq!(service["service"], "payments");
    assert_eq!(
        (
            service["direction"].as_str(),
            service["__baseline"].as_str()
        ),
        ("down", "2.5/s")
    );

    let only_p95 = evaluated(&["p95_ms"], AnomalySubjects::Any);
    assert_eq!(only_p95.len(), 1);
    assert_eq!(only_p95[0].0["figure"], "p95_ms");
    let only_services = evaluated(&[], AnomalySubjects::Services);
    assert_eq!(only_services.len(), 1);
    assert_eq!(only_services[0].0["service"], "payments");
    assert!(evaluated(&["error_rate"], AnomalySubjects::Any).is_empty());
}

#[test]
fn anomaly_rules_check_their_figures_and_format_by_the_one_watched() {
    let kind = |figures: &[&str]| RuleKind::Anomaly {
        figures: figures.iter().map(|figure| (*figure).to_owned()).collect(),
        subjects: AnomalySubjects::Any,
    };
    let err = kind(&["rate", "latency"]).validate().expect_err("unknown");
    assert_eq!(err.0, "figures");
    assert!(err.1.contains("`latency`"), "{err:?}");
    assert_eq!(kind(&["p95_ms"]).value_format(), ValueFormat::Millis);
    assert_eq!(kind(&["error_rate"]).value_format(), ValueFormat::Percent);
    assert_eq!(kind(&[]).value_format(), ValueFormat::Plain);
}

#[test]
fn an_anomaly_alert_keeps_its_identity_as_the_baseline_moves_and_shows_it() {
    let config: AlertsConfig = toml::from_str(
        "builtin_rules = false\ngroup_wait = \"0s\"\n\
         [[receivers]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/ops\"\n\
         [[rules]]\nname = \"Unusual\"\nkind = \"anomaly\"\nfigures = [\"p95_ms\"]\n\
         annotations = { summary = \"{{ $labels.figure }} {{ $labels.now }} vs {{ $labels.baseline }} {{ $labels.reference }}\" }\n",
    )
    .expect("config");
    let mut engine = Engine::new(&config);
    const SEC: u64 = 1_000_000_000;
    let holding = |baseline_ms| {
        let found = [slow_edge(baseline_ms)];
        let view = GraphView {
            nodes: vec![],
            edges: vec![],
            window_secs: 900.0,
        };
        let inputs = Inputs {
            view: &view,
            overlay: &SignalOverlay::default(),
            services: &[],
            baseline: &view,
            baseline_services: &[],
            metric_points: &[],
            findings: &[],
            anomalies: &found,
        };
        let kind = RuleKind::Anomaly {
            figures: vec!["p95_ms".to_owned()],
            subjects: AnomalySubjects::Any,
        };
        vec![Ok(evaluate(&kind, &inputs))]
    };
    let sent = engine.step(holding(20.0), &[], 1_000 * SEC);
    assert_eq!(sent.len(), 1, "{sent:?}");
    engine.step(holding(16.0), &[], 1_030 * SEC);
    let notifiable = engine.notifiable();
    assert_eq!(notifiable.len(), 1, "one alert, whatever its baseline");
    let alert = &notifiable[0];
    assert_eq!(
        alert.annotations["summary"],
        "p95_ms 80 ms vs 16 ms last week"
    );
    assert!(
        !alert
            .alert
            .labels
            .keys()
            .any(|name| name.contains("baseline")),
        "{:?}",
        alert.alert.labels
    );
    let body: serde_json::Value = serde_json::from_str(&sent[0].body).expect("json");
    assert_eq!(
        body["alerts"][0]["annotations"]["summary"],
        "p95_ms 80 ms vs 20 ms last week"
    );
    assert!(body["alerts"][0]["labels"].get("__baseline").is_none());
}
