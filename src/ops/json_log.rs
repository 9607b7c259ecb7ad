//! `log_format = "json"`: warnings and errors as one JSON object per line on standard error.
//!
//! Rocket installs its own (multi-line, coloured) logger unless one is already set, so in JSON
//! mode this logger is installed before Rocket is built and takes its place for the process.
//! Only `warn` and `error` records are written: the per-request lines are the access log's
//! (see `access_log`), which carries the request id, route, status, latency and caller.
//! Records never carry a secret: the service's messages name causes, not values
//! (`config::Secret` has no Debug or Display that shows its content).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

/// The two log formats; `text` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// The top-level `log_format` key (`Rocket.toml` or `ROCKET_LOG_FORMAT`); a bad value is
    /// an error naming the key.
    pub fn from_figment(figment: &rocket::figment::Figment) -> Result<LogFormat, String> {
        match figment.find_value("log_format") {
            Err(_) => Ok(LogFormat::Text),
            Ok(value) => {
                value.deserialize::<LogFormat>().map_err(|_| "log_format: must be \"text\" or \"json\"".to_string())
            }
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    level: &'a str,
    target: &'a str,
    message: String,
    /// The record's key-values: for a request's failure, `request_id`, `method` and `route`
    /// (see `error::Cause`), the same fields as the request's access-log line.
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

/// Collects a record's key-values as strings.
struct Fields(BTreeMap<String, String>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.insert(key.to_string(), value.to_string());
        Ok(())
    }
}

/// One record as a JSON line (with its newline).
pub fn record_line(record: &log::Record<'_>) -> Vec<u8> {
    let mut fields = Fields(BTreeMap::new());
    let _ = record.key_values().visit(&mut fields);
    line_with(record.level(), record.target(), record.args(), fields.0)
}

/// A record without key-values as a JSON line (with its newline).
pub fn line(level: log::Level, target: &str, message: &std::fmt::Arguments<'_>) -> Vec<u8> {
    line_with(level, target, message, BTreeMap::new())
}

fn line_with(
    level: log::Level,
    target: &str,
    message: &std::fmt::Arguments<'_>,
    mut fields: BTreeMap<String, String>,
) -> Vec<u8> {
    // The fixed fields win over a key-value of the same name.
    for fixed in ["time", "level", "target", "message"] {
        fields.remove(fixed);
    }
    let record = Record {
        time: crate::clock::rfc3339(crate::clock::Clock::new().now()),
        level: match level {
            log::Level::Error => "error",
            log::Level::Warn => "warn",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        },
        target,
        message: message.to_string(),
        fields,
    };
    let mut out = serde_json::to_vec(&record).unwrap_or_default();
    out.push(b'\n');
    out
}

struct JsonLogger;

impl log::Log for JsonLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = std::io::stderr().lock().write_all(&record_line(record));
        }
    }

    fn flush(&self) {}
}

/// Installs the JSON logger for the process; false when a logger was set already (a second
/// Rocket in the same process, as in the tests).
pub fn install() -> bool {
    let installed = log::set_boxed_logger(Box::new(JsonLogger)).is_ok();
    if installed {
        log::set_max_level(log::LevelFilter::Warn);
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_json_object_on_one_line() {
        let bytes = line(log::Level::Warn, "portcullis", &format_args!("service unavailable: \"db\"\ndown"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["message"], "service unavailable: \"db\"\ndown");
        assert!(value["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_records_key_values_become_fields_of_its_object() {
        let kvs = [("request_id", "req-1"), ("route", "/health/ready"), ("level", "forged")];
        let args = format_args!("service unavailable: down");
        let record =
            log::Record::builder().level(log::Level::Warn).target("portcullis").args(args).key_values(&kvs).build();
        let value: serde_json::Value = serde_json::from_slice(&record_line(&record)).unwrap();
        assert_eq!(value["request_id"], "req-1");
        assert_eq!(value["route"], "/health/ready");
        assert_eq!(value["level"], "warn", "a key-value cannot replace a fixed field");
    }
}
