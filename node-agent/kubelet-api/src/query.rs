//! Query strings of the kubelet API: the stream options of exec/attach and the options of container logs,
//! with upstream's spelling (`input=1` and `input=true` alike, `command` repeated, `tailLines`...).

use jiff::Timestamp;

use crate::backend::StreamOptions;

/// A query string the kubelet API cannot accept (answered with 400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A boolean parameter was neither true nor false in any accepted spelling.
    #[error("failed to parse query parameter {name}={value:?}: not a boolean")]
    NotABool { name: String, value: String },
    /// A numeric parameter was not an integer.
    #[error("failed to parse query parameter {name}={value:?}: not an integer")]
    NotAnInteger { name: String, value: String },
    /// `sinceTime` was not an RFC 3339 time.
    #[error("failed to parse query parameter sinceTime={0:?}: not an RFC 3339 time")]
    NotATime(String),
    /// A numeric parameter is out of its allowed range.
    #[error("{name}: Invalid value: {value}: {rule}")]
    OutOfRange {
        name: &'static str,
        value: i64,
        rule: &'static str,
    },
    /// Both ways of saying "since" were given.
    #[error("at most one of `sinceTime` or `sinceSeconds` may be specified")]
    ConflictingSince,
    /// Exec/attach without any stream to carry.
    #[error("you must specify at least 1 of stdin, stdout, stderr")]
    NoStreams,
    /// Exec without a command.
    #[error("missing command")]
    NoCommand,
}

/// What `kubectl logs` asked for (`v1.PodLogOptions` as the apiserver forwards it to the kubelet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
}

fn pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Booleans as Go's `strconv.ParseBool` reads them (what upstream's query decoding uses); empty is false.
fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value {
        "" | "0" | "f" | "F" | "false" | "False" | "FALSE" => Ok(false),
        "1" | "t" | "T" | "true" | "True" | "TRUE" => Ok(true),
        _ => Err(Error::NotABool {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn parse_int(name: &str, value: &str) -> Result<i64, Error> {
    value.parse().map_err(|_| Error::NotAnInteger {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// Parses exec/attach options. `require_command` is true for exec (attach joins the running process).
pub fn stream_options(query: Option<&str>, require_command: bool) -> Result<StreamOptions, Error> {
    let mut options = StreamOptions::default();
    for (name, value) in pairs(query) {
        match name.as_str() {
            "command" => options.command.push(value),
            // The apiserver names the streams as upstream's kubelet API does: input, output, error.
            "input" => options.stdin = parse_bool(&name, &value)?,
            "output" => options.stdout = parse_bool(&name, &value)?,
            "error" => options.stderr = parse_bool(&name, &value)?,
            "tty" => options.tty = parse_bool(&name, &value)?,
            _ => {}
        }
    }
    // Like upstream: a terminal merges stderr into stdout, so a stderr stream is never opened with a tty.
    if options.tty {
        options.stderr = false;
    }
    if !(options.stdin || options.stdout || options.stderr) {
        return Err(Error::NoStreams);
    }
    if require_command && options.command.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(options)
}

/// Parses and validates container-log options the way upstream validates `PodLogOptions`.
pub fn log_options(query: Option<&str>, now: Timestamp) -> Result<LogOptions, Error> {
    let mut options = LogOptions::default();
    let mut since_seconds = None;
    let mut since_time = None;
    for (name, value) in pairs(query) {
        match name.as_str() {
            "follow" => options.follow = parse_bool(&name, &value)?,
            "previous" => options.previous = parse_bool(&name, &value)?,
            "timestamps" => options.timestamps = parse_bool(&name, &value)?,
            "tailLines" => {
                let lines = parse_int(&name, &value)?;
                let lines = u64::try_from(lines).map_err(|_| Error::OutOfRange {
                    name: "tailLines",
                    value: lines,
                    rule: "must be greater than or equal to 0",
                })?;
                options.tail_lines = Some(lines);
            }
            "limitBytes" => {
                let bytes = parse_int(&name, &value)?;
                match u64::try_from(bytes) {
                    Ok(b) if b >= 1 => options.limit_bytes = Some(b),
                    _ => {
                        return Err(Error::OutOfRange {
                            name: "limitBytes",
                            value: bytes,
                            rule: "must be greater than 0",
                        });
                    }
                }
            }
            "sinceSeconds" => {
                let seconds = parse_int(&name, &value)?;
                if seconds < 1 {
                    return Err(Error::OutOfRange {
                        name: "sinceSeconds",
                        value: seconds,
                        rule: "must be greater than 0",
                    });
                }
                since_seconds = Some(seconds);
            }
            "sinceTime" => {
                since_time = Some(
                    value
                        .parse::<Timestamp>()
                        .map_err(|_| Error::NotATime(value.clone()))?,
                )
            }
            _ => {}
        }
    }
    options.since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => return Err(Error::ConflictingSince),
        (Some(seconds), None) => {
            let span = jiff::SignedDuration::from_secs(seconds);
            Some(now.checked_sub(span).unwrap_or(Timestamp::MIN))
        }
        (None, time) => time,
    };
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
        command: &[&str],
    ) -> StreamOptions {
        StreamOptions {
            command: command.iter().map(|c| (*c).to_owned()).collect(),
            stdin,
            stdout,
            stderr,
            tty,
        }
    }

    #[test]
    fn stream_options_cases() {
        let cases: &[(&str, &str, bool, Result<StreamOptions, Error>)] = &[
            (
                "numeric booleans",
                "command=ls&command=-l&output=1&error=1",
                true,
                Ok(streams(false, true, true, false, &["ls", "-l"])),
            ),
            (
                "word booleans",
                "command=sh&input=true&output=true&tty=false",
                true,
                Ok(streams(true, true, false, false, &["sh"])),
            ),
            (
                "tty drops stderr",
                "command=bash&input=1&output=1&error=1&tty=1",
                true,
                Ok(streams(true, true, false, true, &["bash"])),
            ),
            (
                "command without streams",
                "command=echo&command=a%20b",
                false,
                Err(Error::NoStreams),
            ),
            ("no streams", "command=ls", true, Err(Error::NoStreams)),
            (
                "exec needs a command",
                "output=1",
                true,
                Err(Error::NoCommand),
            ),
            (
                "attach needs no command",
                "output=1",
                false,
                Ok(streams(false, true, false, false, &[])),
            ),
            (
                "bad bool",
                "command=ls&output=yes",
                true,
                Err(Error::NotABool {
                    name: "output".into(),
                    value: "yes".into(),
                }),
            ),
        ];
        for (name, query, exec, want) in cases {
            assert_eq!(&stream_options(Some(query), *exec), want, "case {name}");
        }
    }

    #[test]
    fn command_arguments_are_decoded() {
        let got =
            stream_options(Some("command=echo&command=a%20b+c&output=1"), true).expect("valid");
        assert_eq!(got.command, vec!["echo".to_owned(), "a b c".to_owned()]);
    }

    #[test]
    fn log_options_cases() {
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("time");
        let at = |s: &str| s.parse::<Timestamp>().expect("time");
        let cases: &[(&str, Option<&str>, Result<LogOptions, Error>)] = &[
            ("none", None, Ok(LogOptions::default())),
            (
                "all flags",
                Some("follow=true&previous=1&timestamps=true&tailLines=10&limitBytes=5"),
                Ok(LogOptions {
                    follow: true,
                    previous: true,
                    timestamps: true,
                    tail_lines: Some(10),
                    limit_bytes: Some(5),
                    since: None,
                }),
            ),
            (
                "zero tail",
                Some("tailLines=0"),
                Ok(LogOptions {
                    tail_lines: Some(0),
                    ..Default::default()
                }),
            ),
            (
                "since seconds",
                Some("sinceSeconds=60"),
                Ok(LogOptions {
                    since: Some(at("2025-01-01T00:00:00Z")),
                    ..Default::default()
                }),
            ),
            (
                "since time",
                Some("sinceTime=2024-12-31T23:00:00Z"),
                Ok(LogOptions {
                    since: Some(at("2024-12-31T23:00:00Z")),
                    ..Default::default()
                }),
            ),
            (
                "negative tail",
                Some("tailLines=-1"),
                Err(Error::OutOfRange {
                    name: "tailLines",
                    value: -1,
                    rule: "must be greater than or equal to 0",
                }),
            ),
            (
                "zero limit",
                Some("limitBytes=0"),
                Err(Error::OutOfRange {
                    name: "limitBytes",
                    value: 0,
                    rule: "must be greater than 0",
                }),
            ),
            (
                "zero since",
                Some("sinceSeconds=0"),
                Err(Error::OutOfRange {
                    name: "sinceSeconds",
                    value: 0,
                    rule: "must be greater than 0",
                }),
            ),
            (
                "both since",
                Some("sinceSeconds=5&sinceTime=2024-12-31T23:00:00Z"),
                Err(Error::ConflictingSince),
            ),
            (
                "bad integer",
                Some("tailLines=ten"),
                Err(Error::NotAnInteger {
                    name: "tailLines".into(),
                    value: "ten".into(),
                }),
            ),
            (
                "bad time",
                Some("sinceTime=yesterday"),
                Err(Error::NotATime("yesterday".into())),
            ),
        ];
        for (name, query, want) in cases {
            assert_eq!(&log_options(*query, now), want, "case {name}");
        }
    }
}
