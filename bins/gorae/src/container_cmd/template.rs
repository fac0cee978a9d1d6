//! Output formatting as the docker CLI does it: a Go-template subset for `--format` and
//! `inspect -f` (fields `{{.A.B}}`, `{{json .}}`, `{{index .M "k"}}`, `join`, `upper`,
//! `lower`, `title`, `len`, `split`, `{{range}}`, `{{if}}`/`{{else}}`, `{{end}}`, pipes),
//! docker's tabwriter (columns padded 3, at least 10 wide), and Go's `MarshalIndent`
//! layout for inspect, applied to the daemon's JSON text so its field order is kept.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
}

type Pipeline = Vec<Vec<Arg>>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template> {
        let pieces = split_actions(text)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&pieces, &mut pos)?;
        if end.is_some() {
            bail!("template: unexpected {{{{{}}}}}", end.unwrap_or_default());
        }
        Ok(Template { nodes })
    }

    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

enum Piece {
    Text(String),
    Action(String),
}

/// Splits text and `{{ }}` actions, applying the `{{-` / `-}}` whitespace trims.
fn split_actions(text: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        if trim_next {
            literal = literal.trim_start();
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut inner = &after[..end];
        if let Some(s) = inner.strip_prefix("- ") {
            literal = literal.trim_end();
            inner = s;
        }
        trim_next = false;
        if let Some(s) = inner.strip_suffix(" -") {
            trim_next = true;
            inner = s;
        }
        pieces.push(Piece::Text(literal.to_string()));
        pieces.push(Piece::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let tail = if trim_next { rest.trim_start() } else { rest };
    pieces.push(Piece::Text(tail.to_string()));
    Ok(pieces)
}

/// Nodes up to an `{{else}}` or `{{end}}` (returned as the second value) or the end.
fn parse_nodes(pieces: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *pos < pieces.len() {
        let piece = &pieces[*pos];
        *pos += 1;
        match piece {
            Piece::Text(t) if !t.is_empty() => nodes.push(Node::Text(t.clone())),
            Piece::Text(_) => {}
            Piece::Action(a) if a == "end" || a == "else" => return Ok((nodes, Some(a.clone()))),
            Piece::Action(a) if a.starts_with("/*") => {}
            Piece::Action(a) => {
                let (keyword, rest) = a.split_once(' ').unwrap_or((a, ""));
                if keyword == "if" || keyword == "range" {
                    let pipeline = parse_pipeline(rest)?;
                    let (body, end) = parse_nodes(pieces, pos)?;
                    let otherwise = match end.as_deref() {
                        Some("else") => match parse_nodes(pieces, pos)? {
                            (nodes, Some(e)) if e == "end" => nodes,
                            _ => bail!("template: {keyword} without {{{{end}}}}"),
                        },
                        Some(_) => Vec::new(),
                        None => bail!("template: {keyword} without {{{{end}}}}"),
                    };
                    nodes.push(if keyword == "if" {
                        Node::If(pipeline, body, otherwise)
                    } else {
                        Node::Range(pipeline, body, otherwise)
                    });
                } else {
                    nodes.push(Node::Action(parse_pipeline(a)?));
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_pipeline(text: &str) -> Result<Pipeline> {
    let tokens = tokenize(text)?;
    let mut pipeline = vec![Vec::new()];
    for token in tokens {
        match token {
            Token::Pipe => pipeline.push(Vec::new()),
            Token::Arg(a) => pipeline.last_mut().map(|c| c.push(a)).unwrap_or(()),
        }
    }
    if pipeline.iter().any(Vec::is_empty) {
        bail!("template: empty command in {text:?}");
    }
    Ok(pipeline)
}

enum Token {
    Pipe,
    Arg(Arg),
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            tokens.push(Token::Pipe);
            i += 1;
        } else if c == '"' || c == '`' {
            let (s, next) = string_literal(&chars, i)?;
            tokens.push(Token::Arg(Arg::Str(s)));
            i = next;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(Token::Arg(word_arg(&word)?));
        }
    }
    Ok(tokens)
}

fn string_literal(chars: &[char], start: usize) -> Result<(String, usize)> {
    let quote = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((s, i + 1));
        }
        if c == '\\' && quote == '"' && i + 1 < chars.len() {
            i += 1;
            s.push(match chars[i] {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
        } else {
            s.push(c);
        }
        i += 1;
    }
    bail!("template: unterminated string")
}

fn word_arg(word: &str) -> Result<Arg> {
    Ok(if word == "." {
        Arg::Dot
    } else if let Some(path) = word.strip_prefix('.') {
        Arg::Field(path.split('.').map(str::to_string).collect())
    } else if word == "true" || word == "false" {
        Arg::Bool(word == "true")
    } else if let Ok(n) = word.parse::<f64>() {
        Arg::Num(n)
    } else if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Arg::Func(word.to_string())
    } else {
        bail!("template: unexpected {word:?}")
    })
}

fn render_nodes(nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let value = eval_pipeline(p, dot)?;
                match (&value, typed_nil(p, dot)) {
                    (Value::Null, Some(nil)) => out.push_str(nil),
                    _ => out.push_str(&go_print(&value)),
                }
            }
            Node::If(p, body, otherwise) => {
                let branch = if truthy(&eval_pipeline(p, dot)?) {
                    body
                } else {
                    otherwise
                };
                render_nodes(branch, dot, out)?;
            }
            Node::Range(p, body, otherwise) => {
                let items: Vec<Value> = match eval_pipeline(p, dot)? {
                    Value::Array(a) => a,
                    Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                    Value::Null => Vec::new(),
                    other => bail!("template: range can't iterate over {}", go_print(&other)),
                };
                if items.is_empty() {
                    render_nodes(otherwise, dot, out)?;
                }
                for item in &items {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

/// How Go prints a field that is present but null: the daemon's nil map, slice or pointer
/// (`map[]`, `[]`, `<nil>`), where a missing key prints `<no value>`.
fn typed_nil(pipeline: &Pipeline, dot: &Value) -> Option<&'static str> {
    let [command] = pipeline.as_slice() else {
        return None;
    };
    let [Arg::Field(path)] = command.as_slice() else {
        return None;
    };
    let (last, parent) = path.split_last()?;
    let parent = field(dot, parent);
    if !parent.get(last).is_some_and(Value::is_null) {
        return None;
    }
    const MAPS: &[&str] = &[
        "Labels",
        "ExposedPorts",
        "Volumes",
        "PortBindings",
        "Tmpfs",
        "Sysctls",
        "StorageOpt",
        "Options",
        "Ports",
        "Networks",
        "Attributes",
        "Data",
    ];
    const SLICES: &[&str] = &[
        "Env",
        "Cmd",
        "Entrypoint",
        "Binds",
        "CapAdd",
        "CapDrop",
        "Dns",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "GroupAdd",
        "Links",
        "Mounts",
        "SecurityOpt",
        "Ulimits",
        "Devices",
        "OnBuild",
        "ExecIDs",
        "Shell",
        "MaskedPaths",
        "ReadonlyPaths",
        "VolumesFrom",
        "ConsoleSize",
        "DeviceRequests",
        "DeviceCgroupRules",
        "BlkioWeightDevice",
        "RepoTags",
        "RepoDigests",
        "Aliases",
        "Layers",
    ];
    Some(if MAPS.contains(&last.as_str()) {
        "map[]"
    } else if SLICES.contains(&last.as_str()) {
        "[]"
    } else {
        "<nil>"
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn eval_pipeline(pipeline: &Pipeline, dot: &Value) -> Result<Value> {
    let mut piped: Option<Value> = None;
    for command in pipeline {
        piped = Some(eval_command(command, dot, piped.take())?);
    }
    Ok(piped.unwrap_or(Value::Null))
}

fn eval_arg(arg: &Arg, dot: &Value) -> Result<Value> {
    Ok(match arg {
        Arg::Dot => dot.clone(),
        Arg::Field(path) => field(dot, path),
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Func(f) => call(f, Vec::new())?,
    })
}

/// Go templates name struct fields; the daemon's JSON names some of them differently only
/// by case (an event's `ID` is `id`, `TimeNano` is `timeNano`), so an exact key wins and a
/// case-insensitive one is the fallback.
fn field(dot: &Value, path: &[String]) -> Value {
    let mut v = dot;
    for key in path {
        let next = v.get(key).or_else(|| {
            v.as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, value)| value)
        });
        match next {
            Some(next) => v = next,
            None => return Value::Null,
        }
    }
    v.clone()
}

fn eval_command(command: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value> {
    let mut args = Vec::new();
    for a in &command[1..] {
        args.push(eval_arg(a, dot)?);
    }
    args.extend(piped);
    match &command[0] {
        Arg::Func(name) => call(name, args),
        // `.Label "k"`: docker's ps/images method on the labels.
        Arg::Field(path) if path.last().is_some_and(|l| l == "Label") && args.len() == 1 => {
            let mut labels_path = path.clone();
            labels_path.pop();
            labels_path.push("Labels".into());
            let key = go_print(&args[0]);
            Ok(label_value(&field(dot, &labels_path), &key))
        }
        first if args.is_empty() => eval_arg(first, dot),
        _ => bail!("template: can't give arguments to a non-function"),
    }
}

/// Labels as an object, or as docker's ps context's "k=v,k=v" string.
fn label_value(labels: &Value, key: &str) -> Value {
    match labels {
        Value::Object(m) => m.get(key).cloned().unwrap_or(Value::String(String::new())),
        Value::String(s) => s
            .split(',')
            .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key))
            .map_or(Value::String(String::new()), |(_, v)| v.into()),
        _ => Value::String(String::new()),
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    let arity = |n: usize| -> Result<()> {
        if args.len() != n {
            bail!(
                "template: wrong number of args for {name}: want {n} got {}",
                args.len()
            );
        }
        Ok(())
    };
    Ok(match name {
        "json" => {
            arity(1)?;
            Value::String(serde_json::to_string(&args[0])?)
        }
        "upper" | "lower" | "title" => {
            arity(1)?;
            let s = go_print(&args[0]);
            Value::String(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => title(&s),
            })
        }
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                other => bail!("template: len of {}", go_print(other)),
            };
            Value::from(n)
        }
        "index" => {
            if args.is_empty() {
                bail!("template: index needs arguments");
            }
            let mut v = args[0].clone();
            for key in &args[1..] {
                v = match (&v, key) {
                    (Value::Object(m), k) => m.get(&go_print(k)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| anyhow!("template: index out of range"))?,
                    _ => bail!("template: can't index {}", go_print(&v)),
                };
            }
            v
        }
        "join" => {
            arity(2)?;
            let sep = go_print(&args[1]);
            match &args[0] {
                Value::Array(a) => {
                    Value::String(a.iter().map(go_print).collect::<Vec<_>>().join(&sep))
                }
                other => Value::String(go_print(other)),
            }
        }
        "split" => {
            arity(2)?;
            let (s, sep) = (go_print(&args[0]), go_print(&args[1]));
            Value::Array(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )
        }
        "println" | "print" => {
            let text = args.iter().map(go_print).collect::<Vec<_>>().join(" ");
            Value::String(if name == "println" { text + "\n" } else { text })
        }
        _ => bail!("template: function {name:?} not defined"),
    })
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// A value as Go's fmt prints it with %v: `[a b]`, `map[k:v]`, `<no value>` for nothing.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// docker's tabwriter (minwidth 10, padding 3, spaces): tab-separated cells aligned in
/// columns; the last cell of a line is not padded.
pub fn tabwrite(text: &str) -> String {
    tabwrite_min(text, 10)
}

/// The tabwriter with another minimum column width (`top` uses 20).
pub fn tabwrite_min(text: &str, min_width: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let width = (widths[i] + 3).max(min_width);
                out.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Re-indents JSON text the way Go's `json.MarshalIndent(v, "", "    ")` lays it out,
/// keeping the order of fields as given.
pub fn indent_json(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("    ", depth));
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.push_str(&text[start..i]);
                continue;
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                let next = bytes[i + 1..].iter().position(|b| !b.is_ascii_whitespace());
                if next.is_some_and(|n| bytes[i + 1 + n] == close) {
                    out.push(c as char);
                    out.push(close as char);
                    i += 2 + next.unwrap_or(0);
                    continue;
                }
                out.push(c as char);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c as char);
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            b':' => out.push_str(": "),
            b if b.is_ascii_whitespace() => {}
            _ => {
                // Numbers, true, false, null: copied up to the next delimiter.
                let start = i;
                while i < bytes.len() && !b",:{}[]\" \t\r\n".contains(&bytes[i]) {
                    i += 1;
                }
                out.push_str(&text[start..i]);
                continue;
            }
        }
        i += 1;
    }
    out
}

/// A `--format` value: docker's `table` prefix (header from field names, tabwriter),
/// `json` (one object per line), or a plain template.
pub enum Format {
    Table(Template, String),
    Json,
    Raw(Template),
}

impl Format {
    /// `header_of` turns a field name ("ID") into the column's title ("CONTAINER ID").
    pub fn parse(text: &str, header_of: &dyn Fn(&str) -> String) -> Result<Format> {
        if text == "json" {
            return Ok(Format::Json);
        }
        let text = unescape_tabs(text);
        if let Some(rest) = text.strip_prefix("table") {
            let rest = rest.trim_start();
            let header = header_line(rest, header_of);
            return Ok(Format::Table(Template::parse(rest)?, header));
        }
        Ok(Format::Raw(Template::parse(&text)?))
    }

    /// The output for `rows`, each the data of one line.
    pub fn render(&self, rows: &[Value]) -> Result<String> {
        Ok(match self {
            Format::Json => rows
                .iter()
                .map(|r| serde_json::to_string(r).map(|s| s + "\n"))
                .collect::<Result<String, _>>()?,
            Format::Raw(t) => {
                let mut out = String::new();
                for row in rows {
                    out.push_str(&t.render(row)?);
                    out.push('\n');
                }
                out
            }
            Format::Table(t, header) => {
                let mut out = String::new();
                if !header.is_empty() {
                    out.push_str(header);
                    out.push('\n');
                }
                for row in rows {
                    out.push_str(&t.render(row)?);
                    out.push('\n');
                }
                tabwrite(&out)
            }
        })
    }
}

/// `\t` typed on a command line means a tab, as in docker.
fn unescape_tabs(text: &str) -> String {
    text.replace("\\t", "\t").replace("\\n", "\n")
}

/// The header of a table template: each `{{.Field}}` becomes its title, text stays.
fn header_line(template: &str, header_of: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end].trim().trim_matches('-').trim();
        let name = inner
            .split_whitespace()
            .find_map(|w| w.strip_prefix('.'))
            .unwrap_or(inner);
        out.push_str(&header_of(name.split('.').next_back().unwrap_or(name)));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Go's `%.{precision}g`: shortest of fixed or scientific, trailing zeros dropped.
pub fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", precision.saturating_sub(1), value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_functions_and_pipes() {
        let v = json!({"ID": "abc", "State": {"Status": "running", "Pid": 42},
            "Names": ["a", "b"], "Labels": {"k": "v"}, "Name": "/x"});
        assert_eq!(render("{{.ID}} {{.State.Status}}", &v), "abc running");
        assert_eq!(render("{{.State.Pid}}", &v), "42");
        assert_eq!(
            render("{{json .State}}", &v),
            r#"{"Pid":42,"Status":"running"}"#
        );
        assert_eq!(render(r#"{{index .Labels "k"}}"#, &v), "v");
        assert_eq!(render(r#"{{join .Names ","}}"#, &v), "a,b");
        assert_eq!(render("{{.Names}}", &v), "[a b]");
        assert_eq!(render("{{.Labels}}", &v), "map[k:v]");
        assert_eq!(render("{{.Missing}}", &v), "<no value>");
        let event = json!({"id": "abc", "timeNano": 5, "Type": "container"});
        assert_eq!(
            render("{{.ID}} {{.TimeNano}} {{.Type}}", &event),
            "abc 5 container"
        );
        let nils = json!({"Config": {"Labels": null, "Env": null, "Healthcheck": null}});
        assert_eq!(
            render(
                "{{.Config.Labels}} {{.Config.Env}} {{.Config.Healthcheck}}",
                &nils
            ),
            "map[] [] <nil>"
        );
        assert_eq!(render("{{if .Config.Labels}}y{{else}}n{{end}}", &nils), "n");
        assert_eq!(render("{{.State.Status | upper}}", &v), "RUNNING");
        assert_eq!(render(r#"{{.Label "k"}}"#, &v), "v");
        assert_eq!(render("{{len .Names}}", &v), "2");
        assert_eq!(render("{{ .Name -}}  !", &v), "/x!");
    }

    #[test]
    fn range_and_if() {
        let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Running": false});
        assert_eq!(render("{{range .Mounts}}{{.Source}};{{end}}", &v), "/a;/b;");
        assert_eq!(render("{{if .Running}}up{{else}}down{{end}}", &v), "down");
        assert_eq!(render("{{range .None}}x{{else}}empty{{end}}", &v), "empty");
        assert!(Template::parse("{{if .X}}no end").is_err());
        assert!(Template::parse("{{nosuch .X}}")
            .unwrap()
            .render(&v)
            .is_err());
    }

    #[test]
    fn tables_like_docker() {
        let f = Format::parse("table {{.ID}}\\t{{.Names}}", &|n| match n {
            "ID" => "CONTAINER ID".into(),
            other => other.to_uppercase(),
        })
        .unwrap();
        let rows = [
            json!({"ID": "0123456789ab", "Names": "x"}),
            json!({"ID": "1", "Names": "longer"}),
        ];
        assert_eq!(
            f.render(&rows).unwrap(),
            "CONTAINER ID   NAMES\n0123456789ab   x\n1              longer\n"
        );
        assert_eq!(tabwrite("A\tB\nxy\tz\n"), "A         B\nxy        z\n");
        let j = Format::parse("json", &|n| n.into()).unwrap();
        assert_eq!(
            j.render(&[json!({"b": 1, "a": 2})]).unwrap(),
            "{\"a\":2,\"b\":1}\n"
        );
    }

    #[test]
    fn indents_like_marshal_indent() {
        let text =
            r#"[{"Id":"x","Args":[],"Config":{},"State":{"Pid":1,"S":"a,b:c\"}"},"L":[1,2]}]"#;
        assert_eq!(
            indent_json(text),
            "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {},\n        \"State\": {\n            \"Pid\": 1,\n            \"S\": \"a,b:c\\\"}\"\n        },\n        \"L\": [\n            1,\n            2\n        ]\n    }\n]"
        );
        assert_eq!(indent_json("[]"), "[]");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(go_g(1.5, 4), "1.5");
        assert_eq!(go_g(1523.44, 4), "1523");
        assert_eq!(go_g(4.26, 4), "4.26");
        assert_eq!(go_g(12.3456, 3), "12.3");
        assert_eq!(go_g(999.96, 3), "1e+03");
        assert_eq!(go_g(0.0, 3), "0");
        assert_eq!(go_g(100.0, 3), "100");
    }
}
