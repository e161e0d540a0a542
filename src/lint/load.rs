//! Reads a PATH into a [`Factory`]: the only file access of `lint`. The parsing is in pure functions that take
//! the text, so tests can give them anything.
//!
//! A PATH is a factory's (or Synapse workspace's) Git folder, with `linkedService/`, `credential/`,
//! `integrationRuntime/` and `factory/` holding one `{"name", "properties"}` JSON file per resource; or the
//! folder or file of an exported ARM template, `ARMTemplateForFactory.json` (Synapse: `TemplateForWorkspace.json`)
//! with `ARMTemplateParametersForFactory.json` (`TemplateParametersForWorkspace.json`) beside it.
//!
//! Sources: Microsoft Learn, "Source control in Azure Data Factory" (one JSON file per resource, in a folder per
//! resource type, under the repository's root folder); "Continuous integration and delivery in Azure Data
//! Factory" (the `adf_publish` branch and the two template files); "Continuous integration and delivery for an
//! Azure Synapse Analytics workspace" (`workspace_publish`, `TemplateForWorkspace.json`).

use super::arm_template;
use super::position::Lines;
use super::{Definition, Factory, Kind, Layout, Source};
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The template file names, each with its parameters file.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "ARMTemplateForFactory.json",
        "ARMTemplateParametersForFactory.json",
    ),
    (
        "TemplateForWorkspace.json",
        "TemplateParametersForWorkspace.json",
    ),
];

/// Input that could not be read. It names the file, and the line where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or PATH) as the user would find it.
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// Where it is, `file:line:column`, as far as known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            (Some(line), None) => format!("{}:{line}", self.file),
            _ => self.file.clone(),
        }
    }
}

impl InputError {
    fn new(file: &str, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Parses JSON text; a syntax error names the file, line and column.
pub fn parse_json(display: &str, text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(text)).map_err(|e| {
        let full = e.to_string();
        // serde_json appends " at line L column C"; the position is given separately.
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(m, _)| m)
            .to_string();
        InputError {
            file: display.to_string(),
            line: Some(e.line()),
            column: Some(e.column()),
            message: format!("not valid JSON: {message}"),
        }
    })
}

/// One file of the Git layout. `display` names it in errors; `uri` is its path relative to the PATH.
pub fn git_definition(
    kind: Kind,
    uri: &str,
    display: &str,
    text: &str,
) -> Result<Definition, InputError> {
    let document = parse_json(display, text)?;
    let lines = Arc::new(Lines::of(text.strip_prefix('\u{feff}').unwrap_or(text)));
    let shape = |message: &str| InputError {
        line: Some(1),
        ..InputError::new(display, message)
    };
    let Some(object) = document.as_object() else {
        return Err(shape("expected a JSON object with `name` and `properties`"));
    };
    let stem = uri
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".json"))
        .unwrap_or(uri);
    let name = match object.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        None => stem.to_string(),
        Some(_) => return Err(shape("`name` is not a string")),
    };
    let properties = match object.get("properties") {
        Some(p @ Value::Object(_)) => p.clone(),
        None if kind == Kind::Factory => Value::Object(Default::default()),
        _ => {
            return Err(InputError {
                line: Some(lines.line("properties") as usize),
                ..InputError::new(display, "expected `properties` to be an object")
            });
        }
    };
    Ok(Definition::new(
        kind,
        name,
        properties,
        Source {
            file: uri.to_string(),
            lines,
            prefix: String::new(),
        },
    ))
}

/// The factory resources of an exported ARM template, with the parameters file when there is one.
pub fn arm_definitions(
    uri: &str,
    display: &str,
    text: &str,
    parameters: Option<(&str, &str)>,
) -> Result<Vec<Definition>, InputError> {
    let template = parse_json(display, text)?;
    if !template.get("resources").is_some_and(Value::is_array) {
        return Err(InputError {
            line: Some(1),
            ..InputError::new(
                display,
                "not an ARM template: there is no `resources` array",
            )
        });
    }
    let parameters = parameters
        .map(|(display, text)| parse_json(display, text))
        .transpose()?;
    let lines = Arc::new(Lines::of(text.strip_prefix('\u{feff}').unwrap_or(text)));
    Ok(arm_template::resources(&template, parameters.as_ref())
        .into_iter()
        .map(|resource| {
            let mut definition = Definition::new(
                resource.kind,
                resource.name,
                resource.properties,
                Source {
                    file: uri.to_string(),
                    lines: lines.clone(),
                    prefix: format!("resources[{}]", resource.index),
                },
            );
            definition.unresolved = resource.unresolved;
            definition.secure = resource.secure;
            definition
        })
        .collect())
}

/// What one PATH gave.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What could be read, when the PATH holds a layout.
    pub factory: Option<Factory>,
    /// Every file (or the PATH itself) that could not be read, not only the first.
    pub errors: Vec<InputError>,
}

/// Reads one PATH, going on past files that cannot be read.
pub fn load(root: &Path) -> Loaded {
    let root_display = root.display().to_string();
    let metadata = match std::fs::metadata(root) {
        Ok(metadata) => metadata,
        Err(e) => {
            return Loaded {
                factory: None,
                errors: vec![InputError::new(&root_display, format!("cannot read: {e}"))],
            };
        }
    };
    let mut factory = Factory {
        root: root_display.clone(),
        root_is_file: metadata.is_file(),
        layouts: Vec::new(),
        definitions: Vec::new(),
        unreadable: Vec::new(),
    };
    let mut errors = Vec::new();

    if metadata.is_file() {
        // The template file itself; its parameters file sits beside it.
        let file_name = root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let folder = root.parent().unwrap_or(Path::new(""));
        let parameters_name = TEMPLATES
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&file_name))
            .map(|(_, p)| *p);
        read_template(
            root,
            &file_name,
            parameters_name.map(|p| folder.join(p)),
            &mut factory,
            &mut errors,
        );
    } else {
        for (template, parameters) in TEMPLATES {
            let path = root.join(template);
            if path.is_file() {
                read_template(
                    &path,
                    template,
                    Some(root.join(parameters)),
                    &mut factory,
                    &mut errors,
                );
            }
        }
        let mut git = false;
        for kind in Kind::ALL {
            let folder = root.join(kind.folder());
            if !folder.is_dir() {
                continue;
            }
            git = true;
            let mut files: Vec<_> = match std::fs::read_dir(&folder) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && p.extension()
                                .is_some_and(|x| x.eq_ignore_ascii_case("json"))
                    })
                    .collect(),
                Err(e) => {
                    errors.push(InputError::new(
                        &folder.display().to_string(),
                        format!("cannot read: {e}"),
                    ));
                    continue;
                }
            };
            files.sort();
            for path in files {
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let uri = format!("{}/{file_name}", kind.folder());
                let display = path.display().to_string();
                match std::fs::read_to_string(&path)
                    .map_err(|e| InputError::new(&display, format!("cannot read: {e}")))
                    .and_then(|text| git_definition(kind, &uri, &display, &text))
                {
                    Ok(definition) => factory.definitions.push(definition),
                    Err(e) => {
                        let stem = file_name
                            .rsplit_once('.')
                            .map_or(file_name.as_str(), |(s, _)| s);
                        factory.unreadable.push((kind, stem.to_string()));
                        errors.push(e);
                    }
                }
            }
        }
        if git {
            factory.layouts.push(Layout::GitFolder);
        }
        if factory.layouts.is_empty() && errors.is_empty() {
            errors.push(InputError::new(
                &root_display,
                "holds neither a factory's Git folder (linkedService/, credential/, integrationRuntime/, factory/) nor an ARM template (ARMTemplateForFactory.json or TemplateForWorkspace.json)",
            ));
        }
    }
    Loaded {
        factory: (!factory.layouts.is_empty()).then_some(factory),
        errors,
    }
}

fn read_template(
    path: &Path,
    uri: &str,
    parameters: Option<std::path::PathBuf>,
    factory: &mut Factory,
    errors: &mut Vec<InputError>,
) {
    let display = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            errors.push(InputError::new(&display, format!("cannot read: {e}")));
            return;
        }
    };
    let parameters = parameters.filter(|p| p.is_file()).map(|p| {
        let display = p.display().to_string();
        std::fs::read_to_string(&p)
            .map(|text| (display.clone(), text))
            .map_err(|e| InputError::new(&display, format!("cannot read: {e}")))
    });
    let parameters = match parameters.transpose() {
        Ok(p) => p,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    match arm_definitions(
        uri,
        &display,
        &text,
        parameters.as_ref().map(|(d, t)| (d.as_str(), t.as_str())),
    ) {
        Ok(definitions) => {
            factory.layouts.push(Layout::ArmTemplate);
            factory.definitions.extend(definitions);
        }
        Err(e) => errors.push(e),
    }
}
