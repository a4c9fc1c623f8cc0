//! Deprecated API versions: a service that serves two versions of one route or RPC package
//! (`/v1/orders` and `/v2/orders`, `shop.v1.Orders/Get` and `shop.v2.Orders/Get`), and the
//! callers still on the older one. Which caller calls which operation comes from stored
//! traces (the query layer reads them); what is a version and what the finding says is here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Finding, FindingKind, Severity, percent};

/// An operation's version and the operation with its version taken out: `GET /v1/orders/{id}`
/// → (1, `GET /v*/orders/{id}`); `shop.v2.Orders/Get` → (2, `shop.v*.Orders/Get`).
pub fn api_version(operation: &str) -> Option<(u32, String)> {
    let mut found = None;
    let mut key = String::with_capacity(operation.len());
    let mut token = String::new();
    let flush = |token: &mut String, key: &mut String, found: &mut Option<u32>| {
        let version = token
            .strip_prefix(['v', 'V'])
            .filter(|digits| !digits.is_empty() && digits.len() <= 3)
            .and_then(|digits| digits.parse::<u32>().ok());
        match version {
            Some(number) if found.is_none() => {
                *found = Some(number);
                key.push_str("v*");
            }
            _ => key.push_str(token),
        }
        token.clear();
    };
    for character in operation.chars() {
        if character == '/' || character == '.' || character == ' ' {
            flush(&mut token, &mut key, &mut found);
            key.push(character);
        } else {
            token.push(character);
        }
    }
    flush(&mut token, &mut key, &mut found);
    found.map(|version| (version, key))
}

/// The routes of a service served in two versions or more: per route (version taken out) the
/// versions seen, newest last.
pub fn versioned_routes(operations: &[(String, u64)]) -> BTreeMap<String, BTreeSet<u32>> {
    let mut routes: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for (operation, _) in operations {
        if let Some((version, route)) = api_version(operation) {
            routes.entry(route).or_default().insert(version);
        }
    }
    routes.retain(|_, versions| versions.len() >= 2);
    routes
}

/// One caller's calls on one operation of the service, as read from traces.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerCalls {
    /// Node id of the caller.
    pub caller: String,
    pub operation: String,
    pub num_calls: u64,
}

/// Per route served in two versions, a finding naming the callers still on an older one.
pub fn deprecated_versions(
    service: &str,
    operations: &[(String, u64)],
    calls: &[CallerCalls],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (route, versions) in versioned_routes(operations) {
        let newest = *versions.last().expect("two versions");
        // caller → (calls on an older version, all calls on the route)
        let mut by_caller: BTreeMap<&str, (u64, u64, BTreeSet<u32>)> = BTreeMap::new();
        for call in calls {
            let Some((version, called_route)) = api_version(&call.operation) else {
                continue;
            };
            if called_route != route {
                continue;
            }
            let entry = by_caller.entry(&call.caller).or_default();
            entry.1 += call.num_calls;
            if version < newest {
                entry.0 += call.num_calls;
                entry.2.insert(version);
            }
        }
        let behind: Vec<(&str, u64, u64, BTreeSet<u32>)> = by_caller
            .into_iter()
            .filter(|(_, (old, _, _))| *old > 0)
            .map(|(caller, (old, all, olds))| (caller, old, all, olds))
            .collect();
        if behind.is_empty() {
            continue;
        }
        let names: Vec<String> = behind
            .iter()
            .map(|(caller, old, all, _)| {
                let name = caller.split_once(':').map_or(*caller, |(_, name)| name);
                format!(
                    "{name} ({} of its calls)",
                    percent(*old as f64 / (*all).max(1) as f64)
                )
            })
            .collect();
        let summary = format!(
            "{service} serves {route} in v{} and v{newest}; still on an older version: {}",
            versions.iter().next().expect("two versions"),
            names.join(", ")
        );
        let service_id = format!("service:{service}");
        let mut subjects = vec![service_id.clone()];
        subjects.extend(
            behind
                .iter()
                .map(|(caller, ..)| format!("{caller} -> {service_id}")),
        );
        let evidence = json!({
            "service": service_id,
            "route": route,
            "versions": versions,
            "newest": newest,
            "callers": behind.iter().map(|(caller, old, all, olds)| json!({
                "caller": caller,
                "old_versions": olds,
                "calls_on_old": old,
                "calls_sampled": all,
            })).collect::<Vec<_>>(),
        });
        findings.push(Finding::new(
            FindingKind::DeprecatedApiVersion,
            Severity::Warning,
            subjects,
            summary,
            evidence,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_paths_and_rpc_packages_and_not_in_other_words() {
        assert_eq!(
            api_version("GET /v1/orders/{id}"),
            Some((1, "GET /v*/orders/{id}".to_owned()))
        );
        assert_eq!(
            api_version("shop.v2.Orders/Get"),
            Some((2, "shop.v*.Orders/Get".to_owned()))
        );
        assert_eq!(
            api_version("GET /api/V10/users"),
            Some((10, "GET /api/v*/users".to_owned()))
        );
        for unversioned in [
            "GET /orders",
            "GET /vendors/{id}",
            "POST /v/x",
            "send orders.v",
        ] {
            assert_eq!(api_version(unversioned), None, "{unversioned}");
        }
    }

    fn operations(names: &[&str]) -> Vec<(String, u64)> {
        names.iter().map(|name| ((*name).to_owned(), 10)).collect()
    }

    fn calls(caller: &str, operation: &str, num_calls: u64) -> CallerCalls {
        CallerCalls {
            caller: caller.to_owned(),
            operation: operation.to_owned(),
            num_calls,
        }
    }

    #[test]
    fn a_caller_still_on_v1_of_a_route_served_in_v2_is_named_and_v2_only_is_fine() {
        let served = operations(&["GET /v1/orders/{id}", "GET /v2/orders/{id}", "GET /health"]);
        let found = deprecated_versions(
            "orders",
            &served,
            &[
                calls("service:gateway", "GET /v2/orders/{id}", 90),
                calls("service:reports", "GET /v1/orders/{id}", 30),
                calls("service:reports", "GET /v2/orders/{id}", 10),
            ],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].subjects,
            ["service:orders", "service:reports -> service:orders"]
        );
        assert!(
            found[0].summary.contains("reports (75.0 % of its calls)"),
            "{}",
            found[0].summary
        );
        // A service serving only v2 (or a v1 of another route) has nothing deprecated.
        let v2_only = operations(&["GET /v2/orders/{id}", "GET /v1/users"]);
        assert!(
            deprecated_versions(
                "orders",
                &v2_only,
                &[calls("service:a", "GET /v1/users", 5)]
            )
            .is_empty()
        );
        // Every caller on v2: no finding either.
        assert!(
            deprecated_versions(
                "orders",
                &served,
                &[calls("service:a", "GET /v2/orders/{id}", 5)]
            )
            .is_empty()
        );
    }
}
