//! Compatibility with a real Alertmanager (Debian's `prometheus-alertmanager`, installed by the
//! test command): Cartograph pushes its alerts to `/api/v2/alerts`, Alertmanager accepts them,
//! groups them and sends its own webhook to a test receiver. Alertmanager's body and
//! Cartograph's pass the same strict v4 schema.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alert_support::{Calls, RULE, Receiver, WAIT, alert_config, schema_errors};
use crate::helpers::{free_port, spawn_app_with};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// An Alertmanager on loopback, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts it with one route: everything to `webhook_url`, grouped by alertname, fast.
    async fn start(webhook_url: &str) -> Self {
        assert!(
            std::path::Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: run the tests through scripts/test.sh, which installs \
             Debian's prometheus-alertmanager"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: test\n  group_by: [alertname]\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    \
                 webhook_configs:\n      - url: {webhook_url}\n        send_resolved: true\n"
            ),
        )
        .expect("write config");
        let port = free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts");
        let url = format!("http://127.0.0.1:{port}");
        let alertmanager = Self {
            child,
            url,
            _dir: dir,
        };
        let client = crate::helpers::http_client();
        let started = Instant::now();
        loop {
            let ready = client
                .get(format!("{}/-/ready", alertmanager.url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return alertmanager;
            }
            assert!(started.elapsed() < WAIT, "alertmanager not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_accepts_the_push_and_its_own_webhook_reaches_the_receiver() {
    let from_alertmanager = Receiver::start().await;
    let alertmanager = Alertmanager::start(&from_alertmanager.url).await;
    let from_cartograph = Receiver::start().await;
    let extra = format!("[alertmanager]\nurls = [\"{}\"]\n", alertmanager.url);
    let app = spawn_app_with(alert_config(&from_cartograph.url, &extra)).await;
    let calls = Calls::start(&app);
    calls.send(10, 10).await;

    let received = from_alertmanager
        .wait_for(1, "Alertmanager's webhook")
        .await;
    let body = &received[0].body;
    assert_eq!(body["version"], "4", "{body:#}");
    assert_eq!(body["status"], "firing");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], RULE);
    assert_eq!(alert["labels"]["source"], "service:checkout");
    assert_eq!(alert["labels"]["target"], "service:payments");
    assert_eq!(
        alert["annotations"]["summary"],
        "50 % of calls checkout → payments fail"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|url| url.starts_with(&app.ui)),
        "{alert:#}"
    );

    let (_, deliveries) = app.get_json("/api/v1/alerts/deliveries").await;
    let push = deliveries["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|delivery| {
            delivery["url"]
                .as_str()
                .is_some_and(|url| url.ends_with("/api/v2/alerts"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(push["state"], "delivered", "{deliveries:#}");
    assert_eq!(push["lastStatus"], 200);

    let own = from_cartograph
        .wait_for(1, "Cartograph's own webhook")
        .await;
    let complaints = schema_errors(&[body, &own[0].body]);
    assert!(
        complaints.is_empty(),
        "Alertmanager's and Cartograph's bodies against the strict v4 schema: {complaints}"
    );
    calls.stop().await;
    app.shutdown().await;
    from_alertmanager.stop().await;
    from_cartograph.stop().await;
    drop(alertmanager);
}
