//! `log_format = "json"`: warnings and errors as one JSON object per line on standard error.
//!
//! Rocket installs its own (multi-line, coloured) logger unless one is already set, so in JSON
//! mode this logger is installed before Rocket is built and takes its place for the process.
//! Only `warn` and `error` records are written: the per-request lines are the access log's
//! (see `access_log`), which carries the request id, route, status, latency and caller.
//! Records never carry a secret: the service's messages name causes, not values
//! (`config::Secret` has no Debug or Display that shows its content).

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
}

/// One record as a JSON line (with its newline).
pub fn line(level: log::Level, target: &str, message: &std::fmt::Arguments<'_>) -> Vec<u8> {
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
            let _ = std::io::stderr().lock().write_all(&line(record.level(), record.target(), record.args()));
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
}
