//! Output that grows with the accounts, written as it is made.

use std::io::{self, Write};
use std::process::ExitCode;

use serde_json::Value;

use super::Report;
use super::run::{fail, safe};
use crate::error::{Error, Result};

pub(super) fn emit_json(doc: &Value) -> io::Result<()> {
    // Serialising a Value cannot fail; fall back to a fixed document anyway.
    let text = crate::text::to_safe_json(doc).unwrap_or_else(|_| {
        r#"{"ok":false,"error":{"kind":"storage","message":"cannot encode output"}}"#.to_string()
    });
    write_stdout(&(text + "\n"))
}

/// Write `report`'s fields as one `"ok": true` JSON line now, ahead of the
/// tool's final document: the first half of a conversation (`mb-2fa-verify
/// --login`), whose reader waits for it before it answers on stdin.
pub fn emit_line(report: &Report) -> Result<()> {
    let mut doc = serde_json::Map::new();
    doc.insert("ok".into(), Value::Bool(true));
    doc.extend(report.json.clone());
    emit_json(&Value::Object(doc))
        .map_err(|e| Error::storage(format!("cannot write to stdout: {e}")))
}

/// Write to stdout; the caller decides what a failure means.
pub(super) fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

/// Bytes a [`Stream`] gathers before it writes them to stdout.
const STREAM_CHUNK: usize = 64 * 1024;

/// Stdout for a tool run by [`run_streaming`]: items go out as they are
/// produced, in chunks of [`STREAM_CHUNK`] bytes, so memory stays flat
/// however many there are.
///
/// With `--json`, [`Stream::json_array`] writes an array field (opening the
/// document, `{"ok":true`, first); `run_streaming` then appends the fields
/// of the tool's [`Report`] and closes the document, so the output is the
/// one document [`run`] would have printed, key for key. Without `--json`,
/// [`Stream::line`] writes one line of text.
///
/// After a failed write (a closed pipe, a full disk) nothing more is
/// written and every later call fails at once, so a loop over items stops.
#[derive(Debug, Default)]
pub struct Stream {
    /// Written by the tool, not yet to stdout.
    buf: Vec<u8>,
    /// The tool wrote something: `run_streaming` finishes through the stream.
    used: bool,
    /// `{"ok":true` has been written; the document is still open.
    json_open: bool,
    /// Some bytes have been handed to stdout: they cannot be taken back.
    reached: bool,
    /// The first failed write to stdout.
    failed: Option<io::ErrorKind>,
}

/// The items of one JSON array being streamed (see [`Stream::json_array`]).
#[derive(Debug)]
pub struct JsonArray<'a> {
    stream: &'a mut Stream,
    empty: bool,
}

impl JsonArray<'_> {
    /// Append one item to the array.
    pub fn push(&mut self, item: &impl serde::Serialize) -> Result<()> {
        if !self.empty {
            self.stream.write(b",")?;
        }
        self.stream.write_json(item)?;
        self.empty = false;
        Ok(())
    }
}

impl Stream {
    pub(super) fn new() -> Stream {
        Stream::default()
    }

    pub(super) fn is_used(&self) -> bool {
        self.used
    }

    /// Write the field `"key": [...]` of the `--json` document, its items
    /// pushed by `fill` as they come; returns what `fill` returns.
    pub fn json_array<T>(
        &mut self,
        key: &str,
        fill: impl FnOnce(&mut JsonArray<'_>) -> Result<T>,
    ) -> Result<T> {
        self.json_key(key)?;
        self.write(b"[")?;
        let value = fill(&mut JsonArray {
            stream: self,
            empty: true,
        })?;
        self.write(b"]")?;
        Ok(value)
    }

    /// Write one line of text (a newline is added).
    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        self.write(crate::text::escape_for_terminal(text.as_ref()).as_bytes())?;
        self.write(b"\n")
    }

    /// `{"ok":true` the first time, then `,"key":`.
    fn json_key(&mut self, key: &str) -> Result<()> {
        if !self.json_open {
            self.write(br#"{"ok":true"#)?;
            self.json_open = true;
        }
        self.write(b",")?;
        self.write_json(key)?;
        self.write(b":")
    }

    fn write_json(&mut self, value: &(impl serde::Serialize + ?Sized)) -> Result<()> {
        self.check()?;
        self.used = true;
        let mark = self.buf.len();
        if crate::text::write_safe_json(&mut self.buf, value).is_err() {
            // Never half an item in the output.
            self.buf.truncate(mark);
            return Err(Error::storage("cannot encode output"));
        }
        self.spill()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.check()?;
        self.used = true;
        self.buf.extend_from_slice(bytes);
        self.spill()
    }

    fn check(&self) -> Result<()> {
        match self.failed {
            Some(kind) => Err(write_error(&io::Error::from(kind))),
            None => Ok(()),
        }
    }

    /// Write the buffer out once it holds a chunk.
    fn spill(&mut self) -> Result<()> {
        if self.buf.len() >= STREAM_CHUNK {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.reached = true;
        let mut out = io::stdout().lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => {
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.kind());
                self.buf = Vec::new();
                Err(write_error(&e))
            }
        }
    }

    /// Write what the report adds after the streamed part, close the JSON
    /// document, and flush.
    pub(super) fn finish(&mut self, report: Report) -> Result<Report> {
        if self.json_open {
            for (key, value) in &report.json {
                self.json_key(key)?;
                self.write_json(value)?;
            }
            self.write(b"}\n")?;
            self.json_open = false;
        } else {
            self.write(report.human.as_bytes())?;
        }
        self.flush()?;
        Ok(report)
    }

    /// Report `e`, the error that ended the run, as far as the output allows.
    pub(super) fn fail(&mut self, name: &str, json: bool, e: &Error) -> ExitCode {
        if let Some(kind) = self.failed {
            // Nobody reads stdout any more (`| head`): not an error to shout
            // about. Any other failed write is one line on stderr.
            if kind == io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr().lock(), "{name}: {}", safe(e.message()));
            return ExitCode::from(e.exit_code());
        }
        // Not yet written out: dropped, so the error is the only output.
        self.buf = Vec::new();
        if self.reached {
            let _ = writeln!(io::stderr().lock(), "{name}: {}", safe(e.message()));
            ExitCode::from(e.exit_code())
        } else {
            fail(name, json, e)
        }
    }
}

fn write_error(e: &io::Error) -> Error {
    Error::storage(format!("cannot write to stdout: {e}"))
}
