//! Numbered, forward-only migrations (`migrations/clickhouse/NNNN_name.sql`), rendered for one
//! server or a cluster, applied once each and recorded in `schema_migrations`.
//!
//! Rendering: `{db}` → the database; `{on_cluster}` → `` or ` ON CLUSTER 'c'`;
//! `{table:NAME}` → `NAME` (or `NAME_local` in cluster mode, plus a `Distributed` table `NAME`
//! over it); `{local:NAME}` → the same name, alone (for `ALTER`); `{engine:NAME:ENGINE}` → `ENGINE` (or its `Replicated` form with a ZooKeeper path
//! per table). Every statement is `IF NOT EXISTS`, so two processes migrating at once, or a
//! migration interrupted half-way, converge on the same schema.

use clickhouse::Client;

use crate::store::StoreError;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tables",
        sql: include_str!("../../../migrations/clickhouse/0001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "edge_operations",
        sql: include_str!("../../../migrations/clickhouse/0002_edge_operations.sql"),
    },
    Migration {
        version: 3,
        name: "edge_rollup_buckets",
        sql: include_str!("../../../migrations/clickhouse/0003_edge_rollup_buckets.sql"),
    },
];

/// The oldest server this schema runs on (`Map`, bloom-filter indexes on `mapValues`,
/// `LIMIT BY`, `DoubleDelta`/`T64` codecs).
pub const MIN_SERVER_VERSION: (u32, u32) = (22, 8);

/// How the schema is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub database: String,
    /// Cluster name: `ON CLUSTER`, Replicated engines and Distributed tables.
    pub cluster: Option<String>,
}

/// A string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Backquoted identifier.
pub fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// Whether `name` can be a database name: letters, digits and `_`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Layout {
    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|cluster| format!(" ON CLUSTER {}", quote(cluster)))
            .unwrap_or_default()
    }

    /// The statements of `sql`, rendered.
    pub fn render(&self, sql: &str) -> Vec<String> {
        let without_comments: String = sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .map(|line| format!("{line}\n"))
            .collect();
        let mut statements = Vec::new();
        for statement in without_comments.split(';') {
            let statement = statement.trim();
            if statement.is_empty() {
                continue;
            }
            let (rendered, distributed) = self.render_one(statement);
            statements.push(rendered);
            statements.extend(distributed);
        }
        statements
    }

    fn render_one(&self, statement: &str) -> (String, Option<String>) {
        let db = identifier(&self.database);
        let mut out = String::with_capacity(statement.len());
        let mut rest = statement;
        let mut table = None;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = matching_brace(after) else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let token = &after[..end];
            if token == "db" {
                out.push_str(&db);
            } else if token == "on_cluster" {
                out.push_str(&self.on_cluster());
            } else if let Some(spec) = token.strip_prefix("table:") {
                let (name, key) = spec.split_once(':').unwrap_or((spec, "rand()"));
                table = Some((name.to_owned(), key.to_owned()));
                out.push_str(&self.local(name));
            } else if let Some(name) = token.strip_prefix("local:") {
                out.push_str(&self.local(name));
            } else if let Some(spec) = token.strip_prefix("engine:") {
                let (name, engine) = spec.split_once(':').unwrap_or((spec, "MergeTree"));
                out.push_str(&self.engine(&self.local(name), engine));
            } else {
                out.push('{');
                out.push_str(token);
                out.push('}');
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        let distributed = match (&self.cluster, table) {
            (Some(cluster), Some((name, key))) => Some(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{table}{on_cluster} AS {db}.{local}\n\
                 ENGINE = Distributed({cluster}, {database}, {local_name}, {key})",
                table = identifier(&name),
                on_cluster = self.on_cluster(),
                local = identifier(&self.local(&name)),
                cluster = quote(cluster),
                database = quote(&self.database),
                local_name = quote(&self.local(&name)),
                key = key,
            )),
            _ => None,
        };
        (out, distributed)
    }

    /// The table rows are stored in: `name`, or `name_local` under a Distributed table.
    pub fn local(&self, name: &str) -> String {
        match self.cluster {
            Some(_) => format!("{name}_local"),
            None => name.to_owned(),
        }
    }

    /// `engine`, or its Replicated form with `path_table` in the ZooKeeper path.
    fn engine(&self, path_table: &str, engine: &str) -> String {
        if self.cluster.is_none() {
            return engine.to_owned();
        }
        let (family, arguments) = match engine.split_once('(') {
            Some((family, arguments)) => (family, arguments.trim_end_matches(')')),
            None => (engine, ""),
        };
        let path = quote(&format!(
            "/clickhouse/tables/{{shard}}/{}/{path_table}",
            self.database
        ));
        let mut arguments_out = vec![path, quote("{replica}")];
        if !arguments.is_empty() {
            arguments_out.push(arguments.to_owned());
        }
        format!("Replicated{family}({})", arguments_out.join(", "))
    }

    /// Every statement that brings an empty server to the latest schema (for review and the
    /// golden test).
    pub fn full_ddl(&self) -> String {
        let mut out = String::new();
        for statement in self.bootstrap() {
            out.push_str(&statement);
            out.push_str(";\n\n");
        }
        for migration in MIGRATIONS {
            out.push_str(&format!("-- {:04}_{}\n", migration.version, migration.name));
            for statement in self.render(migration.sql) {
                out.push_str(&statement);
                out.push_str(";\n\n");
            }
        }
        out
    }

    fn bootstrap(&self) -> Vec<String> {
        let db = identifier(&self.database);
        vec![
            format!("CREATE DATABASE IF NOT EXISTS {db}{}", self.on_cluster()),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_migrations{}\n(\n    version UInt32,\n    name String,\n    applied_at_unix_nano UInt64\n)\nENGINE = {}\nORDER BY version",
                self.on_cluster(),
                self.engine("schema_migrations", "ReplacingMergeTree")
            ),
        ]
    }
}

fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn store_error(err: clickhouse::error::Error) -> StoreError {
    StoreError::ClickHouse(err.to_string())
}

/// Parses `major.minor...` of `SELECT version()`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Checks the server's version, creates the database and applies what has not been applied.
/// Returns the versions it applied.
pub async fn migrate(client: &Client, layout: &Layout) -> Result<Vec<u32>, StoreError> {
    let version: String = client
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(store_error)?;
    let parsed = parse_version(&version)
        .ok_or_else(|| StoreError::ClickHouse(format!("unreadable server version {version:?}")))?;
    if parsed < MIN_SERVER_VERSION {
        return Err(StoreError::ClickHouse(format!(
            "ClickHouse {version} is older than {}.{}, which this schema needs; upgrade the server",
            MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
        )));
    }
    for statement in layout.bootstrap() {
        client
            .query(&statement)
            .execute()
            .await
            .map_err(store_error)?;
    }
    let applied: Vec<u32> = client
        .query(&format!(
            "SELECT DISTINCT version FROM {}.schema_migrations ORDER BY version",
            identifier(&layout.database)
        ))
        .fetch_all()
        .await
        .map_err(store_error)?;
    let mut newly = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        for statement in layout.render(migration.sql) {
            client.query(&statement).execute().await.map_err(|err| {
                StoreError::ClickHouse(format!(
                    "migration {:04}_{}: {err}",
                    migration.version, migration.name
                ))
            })?;
        }
        client
            .query(&format!(
                "INSERT INTO {}.schema_migrations (version, name, applied_at_unix_nano) VALUES (?, ?, ?)",
                identifier(&layout.database)
            ))
            .bind(migration.version)
            .bind(migration.name)
            .bind(crate::model::now_unix_nano())
            .execute()
            .await
            .map_err(store_error)?;
        newly.push(migration.version);
    }
    Ok(newly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn golden(name: &str, text: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, text).expect("write golden");
                return;
            }
            panic!(
                "{} is out of date: rerun with UPDATE_GOLDEN=1 and review the diff",
                path.display()
            );
        }
    }

    #[test]
    fn the_rendered_ddl_matches_the_golden_files() {
        let single = Layout {
            database: "cartograph".to_owned(),
            cluster: None,
        };
        let cluster = Layout {
            database: "cartograph".to_owned(),
            cluster: Some("observability".to_owned()),
        };
        golden("clickhouse_single.sql", &single.full_ddl());
        golden("clickhouse_cluster.sql", &cluster.full_ddl());
        let ddl = cluster.full_ddl();
        assert!(ddl.contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cartograph/spans_local', '{replica}', keep_first)"), "{ddl}");
        assert!(ddl.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cartograph/edge_rollups_local', '{replica}', written_at)"));
        assert!(ddl.contains("ENGINE = Distributed('observability', 'cartograph', 'spans_local', cityHash64(trace_id))"));
        assert!(!single.full_ddl().contains("ON CLUSTER"));
        // A column added to a sharded table: to the local tables and the Distributed one.
        assert!(ddl.contains("ALTER TABLE `cartograph`.edge_rollups_local ON CLUSTER 'observability'\n    ADD COLUMN IF NOT EXISTS operations"), "{ddl}");
        assert!(ddl.contains("ALTER TABLE `cartograph`.edge_rollups ON CLUSTER 'observability'\n    ADD COLUMN IF NOT EXISTS operations String DEFAULT ''"));
    }

    #[test]
    fn versions_parse_and_names_are_checked() {
        assert_eq!(parse_version("26.9.2.1"), Some((26, 9)));
        assert_eq!(parse_version("18.16.1"), Some((18, 16)));
        assert!(parse_version("x").is_none());
        assert!(is_plain_name("cartograph_test_1"));
        assert!(!is_plain_name("a; DROP"));
        assert_eq!(identifier("a`b"), "`a\\`b`");
    }
}
