//! The CRI container log format: one entry per line, `<RFC3339Nano time> <stdout|stderr> <tag> <text>`,
//! where the tag is `F` for an entry that ends a line and `P` for one that does not (a long line the
//! runtime split, or output the container left without a final newline).

use jiff::Timestamp;

/// A line that is not a CRI log entry (skipped, as upstream skips it, but reported in debug logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("failed to parse CRI log line: missing {0}")]
    Missing(&'static str),
    #[error("failed to parse CRI log line: bad timestamp {0:?}")]
    Timestamp(String),
    #[error("failed to parse CRI log line: unknown stream {0:?}")]
    Stream(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the file, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The time as written, kept verbatim for `timestamps=true`.
    pub time: &'a str,
    pub timestamp: Timestamp,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line (without its trailing newline).
pub fn parse_line(line: &[u8]) -> Result<Entry<'_>, Error> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = fields
        .next()
        .filter(|f| !f.is_empty())
        .ok_or(Error::Missing("timestamp"))?;
    let time = std::str::from_utf8(time)
        .map_err(|_| Error::Timestamp(String::from_utf8_lossy(time).into_owned()))?;
    let timestamp = time
        .parse::<Timestamp>()
        .map_err(|_| Error::Timestamp(time.to_owned()))?;
    let stream = match fields.next().ok_or(Error::Missing("stream"))? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => return Err(Error::Stream(String::from_utf8_lossy(other).into_owned())),
    };
    // The tag may carry more `:`-separated fields in the future; its first one says partial or full.
    let tag = fields.next().ok_or(Error::Missing("tag"))?;
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    let content = fields.next().unwrap_or_default();
    Ok(Entry {
        time,
        timestamp,
        stream,
        partial,
        content,
    })
}

/// What one log entry contributes to `kubectl logs`: its content, with the newline back if it ends a
/// line. Partial entries are not held back for the rest of their line — a container that exits
/// mid-line (`printf` without a newline) must still show what it wrote, as upstream's kubelet does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The entry's time, as written.
    pub time: String,
    pub timestamp: Timestamp,
    pub stream: Stream,
    pub text: Vec<u8>,
    /// True if it continues a line an earlier partial entry began: no timestamp prefix then.
    pub continues_line: bool,
}

impl Message {
    /// The bytes `kubectl logs` shows for it.
    pub fn render(&self, timestamps: bool) -> Vec<u8> {
        if !timestamps || self.continues_line {
            return self.text.clone();
        }
        let mut out = Vec::with_capacity(self.time.len() + 1 + self.text.len());
        out.extend_from_slice(self.time.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.text);
        out
    }
}

/// Turns entries into messages, remembering whether the last one left a line open.
#[derive(Debug, Default)]
pub struct Assembler {
    line_open: bool,
}

impl Assembler {
    /// The message for one entry.
    pub fn push(&mut self, entry: &Entry<'_>) -> Message {
        let mut text = entry.content.to_vec();
        if !entry.partial {
            text.push(b'\n');
        }
        let continues_line = std::mem::replace(&mut self.line_open, entry.partial);
        Message { time: entry.time.to_owned(), timestamp: entry.timestamp, stream: entry.stream, text, continues_line }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lines() {
        let ok = |line: &str, stream, partial, content: &str| {
            let entry = parse_line(line.as_bytes()).expect(line);
            assert_eq!(
                (entry.stream, entry.partial, entry.content),
                (stream, partial, content.as_bytes()),
                "line {line}"
            );
        };
        ok(
            "2016-10-06T00:17:09.669794202Z stdout F log content 1",
            Stream::Stdout,
            false,
            "log content 1",
        );
        ok(
            "2016-10-06T00:17:09.669794203Z stderr F log content 2",
            Stream::Stderr,
            false,
            "log content 2",
        );
        ok(
            "2016-10-06T00:17:09.669794202Z stdout P partial",
            Stream::Stdout,
            true,
            "partial",
        );
        ok(
            "2016-10-06T00:17:09.669794202+02:00 stdout F",
            Stream::Stdout,
            false,
            "",
        );
        ok(
            "2016-10-06T00:17:09.669794202Z stdout F ",
            Stream::Stdout,
            false,
            "",
        );
        ok(
            "2016-10-06T00:17:09Z stdout F:x spaces  kept ",
            Stream::Stdout,
            false,
            "spaces  kept ",
        );

        let cases = [
            ("empty", "", Error::Missing("timestamp")),
            (
                "no stream",
                "2016-10-06T00:17:09Z",
                Error::Missing("stream"),
            ),
            (
                "no tag",
                "2016-10-06T00:17:09Z stdout",
                Error::Missing("tag"),
            ),
            (
                "bad time",
                "yesterday stdout F x",
                Error::Timestamp("yesterday".into()),
            ),
            (
                "bad stream",
                "2016-10-06T00:17:09Z stdin F x",
                Error::Stream("stdin".into()),
            ),
        ];
        for (name, line, want) in cases {
            assert_eq!(parse_line(line.as_bytes()), Err(want), "case {name}");
        }
    }

    #[test]
    fn partial_entries_are_shown_at_once_with_one_timestamp_per_line() {
        let lines = [
            "2024-01-01T00:00:01Z stdout P hel",
            "2024-01-01T00:00:03Z stdout P lo ",
            "2024-01-01T00:00:04Z stdout F world",
            "2024-01-01T00:00:05Z stdout F ",
            "2024-01-01T00:00:06Z stdout P no newline before exit",
        ];
        let mut assembler = Assembler::default();
        let messages: Vec<Message> = lines.iter().map(|l| assembler.push(&parse_line(l.as_bytes()).expect("valid"))).collect();
        let plain: Vec<u8> = messages.iter().flat_map(|m| m.render(false)).collect();
        assert_eq!(String::from_utf8_lossy(&plain), "hello world\n\nno newline before exit");
        let stamped: Vec<u8> = messages.iter().flat_map(|m| m.render(true)).collect();
        assert_eq!(
            String::from_utf8_lossy(&stamped),
            "2024-01-01T00:00:01Z hello world\n2024-01-01T00:00:05Z \n2024-01-01T00:00:06Z no newline before exit"
        );
    }
}
