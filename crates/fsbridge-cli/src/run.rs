//! `fsbridge run --config FILE`: several named io configs at once, events out and commands in.
//!
//! - stdout: one NDJSON line per event, `{"config":NAME,"event":...}`, and one per answered
//!   command, `{"config":NAME,"ok":...}` (a line with `event` is an event, one with `ok` an
//!   answer);
//! - stdin: write commands as for `fsbridge apply`, each with `"config":NAME` naming the config
//!   whose output applies it, and control commands: `watch` (set or replace an input),
//!   `unwatch` (remove it), `output` (set or replace the output root; `"root":null` removes it).
//!   `watch` and `output` create a config of that name when there is none.
//!
//! Commands are applied one at a time in the order they arrive; events keep flowing meanwhile.
//! The end of stdin does not stop the run (the inputs keep reporting); SIGTERM or stdout's
//! reader going away ends it with 0, Ctrl-C with 130.

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use fsbridge::{
    IoConfig, SelfEvents, SelfWrites, WatchError, WriteCommand, WriteError, WriteOutcome,
};
use futures::StreamExt as _;
use futures::stream::{BoxStream, SelectAll};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::apply::{Line, read_lines};
use crate::args::RunArgs;
use crate::config::{self, InputSpec, KeyError, OutputSpec};
use crate::exit;
use crate::watch::closed_stdout;

/// The longest command line read: room for a 64 MiB command in base64.
const LINE_LIMIT: usize = 192 * 1024 * 1024;

/// How many lines may wait for stdout.
const QUEUED_LINES: usize = 1024;

/// Runs `fsbridge run`; returns the exit code.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let file = config::load(&args.config).map_err(anyhow::Error::new)?;
    let handling = args
        .self_events
        .or(file.self_events)
        .unwrap_or(SelfEvents::Drop);
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

    let (lines_out, lines_to_print) = mpsc::channel::<Vec<u8>>(QUEUED_LINES);
    let printer = tokio::spawn(print(lines_to_print));
    let mut run = Run {
        configs: HashMap::new(),
        events: SelectAll::new(),
        record: SelfWrites::new(),
        handling,
        out: lines_out,
    };
    if file.io.is_empty() {
        tracing::warn!(file = %args.config.display(), "no io configs; waiting for control commands");
    }
    for (name, io) in file.io {
        if io.input.is_none() && io.output.is_none() {
            tracing::warn!(config = %name, "the config has neither an input nor an output");
        }
        let config = run.config(&name);
        if let Some(input) = io.input {
            config
                .set_input(input)
                .with_context(|| format!("cannot start the input of config {name:?}"))?;
        }
        if let Some(output) = io.output {
            config.set_output(output);
        }
    }
    tracing::info!(
        configs = run.configs.len(),
        self_events = handling.as_str(),
        "running"
    );

    let (lines, mut received) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(&mut io::stdin().lock(), LINE_LIMIT, &lines))
        .context("cannot start the stdin reader")?;
    let mut closed = closed_stdout();
    let mut stdin_open = true;
    let mut printer = printer;
    loop {
        let line = tokio::select! {
            Some((name, event)) = run.events.next(), if !run.events.is_empty() => {
                match event {
                    Ok(event) => {
                        if run.out.send(tagged(Some(&name), &event)).await.is_err() {
                            return Ok(exit::SUCCESS);
                        }
                    }
                    Err(error) => tracing::warn!(config = %name, "{error:#}"),
                }
                continue;
            }
            line = received.recv(), if stdin_open => line,
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            _ = terminate.recv() => return Ok(exit::SUCCESS),
            _ = &mut closed => return Ok(exit::SUCCESS),
            printed = &mut printer => return match printed {
                Ok(result) => result.map(|()| exit::SUCCESS),
                Err(error) => Err(error).context("the stdout writer failed"),
            },
        };
        let answer = match line {
            None => {
                tracing::debug!("stdin ended; still watching");
                stdin_open = false;
                continue;
            }
            Some(Line::Command { number, bytes }) => run.command(number, &bytes).await,
            Some(Line::TooLong { number }) => answer_outcome(
                None,
                &WriteOutcome::rejected(
                    None,
                    None,
                    None,
                    Some(number),
                    WriteError::TooLarge {
                        path: PathBuf::new(),
                        reason: format!("line {number} is longer than {LINE_LIMIT} bytes"),
                    },
                ),
            ),
            Some(Line::Failed(error)) => {
                tracing::warn!(%error, "cannot read commands from stdin; still watching");
                stdin_open = false;
                continue;
            }
        };
        if run.out.send(answer).await.is_err() {
            return Ok(exit::SUCCESS);
        }
    }
}

/// One config's events, tagged with its name.
type Tagged = BoxStream<'static, (Arc<str>, Result<fsbridge::Event, WatchError>)>;

/// The configs and what they share.
struct Run {
    configs: HashMap<String, IoConfig>,
    /// Every config's events, read by the one loop that also answers commands: an answer is
    /// printed after every event taken before the command was applied, and no event of an
    /// input taken after its replacement (a forwarding task per config could hold one back
    /// while the answer to a later `watch` went out first).
    events: SelectAll<Tagged>,
    record: SelfWrites,
    handling: SelfEvents,
    out: mpsc::Sender<Vec<u8>>,
}

impl Run {
    /// The config `name`, created (with its events forwarded to stdout) when there is none.
    fn config(&mut self, name: &str) -> IoConfig {
        if let Some(config) = self.configs.get(name) {
            return config.clone();
        }
        let (config, events) = IoConfig::with_self_writes(&self.record, self.handling);
        let tag: Arc<str> = name.into();
        self.events
            .push(events.map(move |event| (Arc::clone(&tag), event)).boxed());
        self.configs.insert(name.to_owned(), config.clone());
        config
    }

    /// Says that there is no config `name`, and which there are.
    fn unknown(&self, name: &str) -> String {
        let mut known: Vec<&str> = self.configs.keys().map(String::as_str).collect();
        known.sort_unstable();
        if known.is_empty() {
            format!("there is no config named {name:?} (there are none yet)")
        } else {
            format!(
                "there is no config named {name:?} (there are {})",
                known.join(", ")
            )
        }
    }

    /// Applies one command line; returns the answer line.
    async fn command(&mut self, number: u64, bytes: &[u8]) -> Vec<u8> {
        let refuse_for = |name: Option<&str>, id: Option<String>, reason: String| {
            answer_outcome(
                name,
                &WriteOutcome::rejected(
                    id,
                    None,
                    None,
                    Some(number),
                    WriteError::Invalid {
                        path: PathBuf::new(),
                        reason,
                    },
                ),
            )
        };
        let refuse = |id, reason| refuse_for(None, id, reason);
        let mut object = match fsbridge::wire::json_object(bytes) {
            Ok(object) => object,
            Err(reason) => return refuse(None, format!("line {number} {reason}")),
        };
        let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
        let name = match object.remove("config") {
            Some(Value::String(name)) if name.is_empty() => {
                return refuse(id, format!("line {number}: `config` must not be empty"));
            }
            Some(Value::String(name)) => name,
            Some(_) => return refuse(id, format!("line {number}: `config` must be a string")),
            None => {
                return refuse(
                    id,
                    format!(
                        "line {number}: `config` is missing: name the io config the command is for"
                    ),
                );
            }
        };
        if let Some(op @ ("watch" | "unwatch" | "output")) =
            object.get("op").and_then(Value::as_str)
        {
            let op = op.to_owned();
            object.remove("op");
            match object.remove("id") {
                None | Some(Value::String(_)) => {}
                Some(_) => {
                    let result = Err(Refusal::invalid("`id` must be a string".into()));
                    return answer_control(&name, None, &op, &result);
                }
            }
            let result = self.control(&name, &op, object);
            return answer_control(&name, id, &op, &result);
        }
        match object.get("op") {
            Some(Value::String(op)) if fsbridge::WriteOp::from_name(op).is_none() => {
                return refuse_for(
                    Some(&name),
                    id,
                    format!(
                        "line {number}: unknown op `{}`: use create, append, overwrite, delete, mkdir, watch, unwatch or output",
                        shortened(op)
                    ),
                );
            }
            _ => {}
        }
        let Some(config) = self.configs.get(&name) else {
            let unknown = self.unknown(&name);
            return refuse_for(Some(&name), id, format!("line {number}: {unknown}"));
        };
        let outcome = match serde_json::to_vec(&object) {
            Ok(line) => match WriteCommand::from_json_line(&line, number) {
                Ok(command) => config.apply(command).await,
                Err(rejected) => *rejected,
            },
            Err(error) => return refuse_for(Some(&name), id, error.to_string()),
        };
        answer_outcome(Some(&name), &outcome)
    }

    /// Applies a control command to the config `name`.
    fn control(
        &mut self,
        name: &str,
        op: &str,
        fields: Map<String, Value>,
    ) -> Result<Option<(&'static str, PathBuf)>, Refusal> {
        let here = std::env::current_dir().unwrap_or_default();
        match op {
            "watch" => {
                let spec: InputSpec = fields_of(fields)?;
                let builder = spec.builder(&here).map_err(Refusal::from)?;
                let path = here.join(builder.path());
                let config = self.config(name);
                config
                    .set_input(builder)
                    .map_err(|error| Refusal::watch(&error))?;
                Ok(Some(("path", path)))
            }
            "unwatch" => {
                if !fields.is_empty() {
                    return Err(Refusal::invalid("`unwatch` takes no other fields".into()));
                }
                let Some(config) = self.configs.get(name) else {
                    return Err(Refusal::invalid(self.unknown(name)));
                };
                config.remove_input();
                Ok(None)
            }
            _ => {
                if fields.get("root") == Some(&Value::Null) && fields.len() == 1 {
                    if let Some(config) = self.configs.get(name) {
                        config.remove_output();
                    }
                    return Ok(None);
                }
                let spec: OutputSpec = fields_of(fields)?;
                let writer = spec.writer(&here).map_err(Refusal::from)?;
                let root = writer.root().to_path_buf();
                self.config(name).set_output(writer);
                Ok(Some(("root", root)))
            }
        }
    }
}

/// The fields of a control command as `T`; a refusal names the field that is wrong.
fn fields_of<T: serde::de::DeserializeOwned>(fields: Map<String, Value>) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|error| {
        let field = error.path().to_string();
        let error = error.into_inner();
        if field == "." {
            Refusal::invalid(error.to_string())
        } else {
            Refusal::invalid(format!("`{field}`: {error}"))
        }
    })
}

/// Why a control command was refused: an error kind and message as in write results.
struct Refusal {
    kind: &'static str,
    message: String,
}

impl Refusal {
    fn invalid(message: String) -> Self {
        Self {
            kind: "invalid",
            message,
        }
    }

    fn watch(error: &WatchError) -> Self {
        Self {
            kind: "watch",
            message: error.to_string(),
        }
    }
}

impl From<KeyError> for Refusal {
    fn from(error: KeyError) -> Self {
        Self::invalid(format!("`{}` {}", error.key, error.message))
    }
}

/// The answer to a control command.
#[derive(Serialize)]
struct ControlAnswer<'a> {
    config: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    ok: bool,
    op: &'a str,
    /// The input's path (`watch`), resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The output's root (`output`), resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorAnswer<'a>>,
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    kind: &'a str,
    message: &'a str,
}

fn answer_control(
    name: &str,
    id: Option<String>,
    op: &str,
    result: &Result<Option<(&'static str, PathBuf)>, Refusal>,
) -> Vec<u8> {
    let (said, refusal) = match result {
        Ok(said) => (said.as_ref(), None),
        Err(refusal) => (None, Some(refusal)),
    };
    let shown = |key: &str| {
        said.filter(|(name, _)| *name == key)
            .map(|(_, path)| path.display().to_string())
    };
    let answer = ControlAnswer {
        config: name,
        id,
        ok: refusal.is_none(),
        op,
        path: shown("path"),
        root: shown("root"),
        error: refusal.map(|refusal| ErrorAnswer {
            kind: refusal.kind,
            message: &refusal.message,
        }),
    };
    let mut line = serde_json::to_vec(&answer).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A JSON object with `"config":NAME` put first, then `object`'s own fields.
fn tagged(name: Option<&str>, object: &impl Serialize) -> Vec<u8> {
    let Ok(body) = serde_json::to_vec(object) else {
        return Vec::new();
    };
    let Some(name) = name else {
        let mut line = body;
        line.push(b'\n');
        return line;
    };
    let mut line = Vec::with_capacity(body.len() + name.len() + 16);
    line.extend_from_slice(b"{\"config\":");
    // A string always serializes.
    let _ = serde_json::to_writer(&mut line, name);
    if body.len() > 2 {
        line.push(b',');
    }
    line.extend_from_slice(&body[1..]);
    line.push(b'\n');
    line
}

fn answer_outcome(name: Option<&str>, outcome: &WriteOutcome) -> Vec<u8> {
    tagged(name, outcome)
}

/// `text` cut to at most 64 characters (marked with `…` when cut), for echoing a value of
/// unknown length in an error message.
fn shortened(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Writes lines to stdout, flushing whenever no further line is waiting.
async fn print(mut lines: mpsc::Receiver<Vec<u8>>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    while let Some(line) = lines.recv().await {
        let mut next = Some(line);
        while let Some(line) = next {
            if let Err(error) = out.write_all(&line) {
                return quiet_broken_pipe(error);
            }
            next = lines.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            return quiet_broken_pipe(error);
        }
    }
    Ok(())
}

fn quiet_broken_pipe(error: io::Error) -> anyhow::Result<()> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(error).context("cannot write to stdout")
}

/// An event as `run` prints it, for tests of the format.
#[cfg(test)]
fn event_line(name: &str, event: &fsbridge::Event) -> String {
    String::from_utf8(tagged(Some(name), event)).unwrap()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_config_name_comes_first_and_the_event_follows_whole() {
        let event = fsbridge::Event::now(fsbridge::EventKind::DirCreated, Path::new("/srv/in/a"));

        let line = event_line("lo\"gs", &event);

        assert!(
            line.starts_with(r#"{"config":"lo\"gs","event":"dir_created","path":"/srv/in/a""#),
            "{line}"
        );
        assert!(line.ends_with("}\n"));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["config"], "lo\"gs");
    }
}
