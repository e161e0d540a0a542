//! Pure: the factory resources of an exported ARM template (`ARMTemplateForFactory.json`), with the template
//! expressions ADF writes into names and values (`[parameters('…')]`, `[variables('…')]`, `[concat(…)]`)
//! evaluated from the parameters file (`ARMTemplateParametersForFactory.json`) where they can be.
//!
//! Template syntax: a string that starts with `[` and ends with `]` is an expression, and `[[` escapes a
//! literal bracket (Microsoft Learn, "Syntax and expressions in ARM templates"). A parameter's value comes from
//! the parameters file, else from the template's `defaultValue`. Secure parameters are never read: their
//! values are secrets.

use super::Kind;
use serde_json::{Map, Value};

/// How deep parameter defaults and variables may refer to one another before we give up.
const MAX_DEPTH: usize = 16;

/// One factory resource of the template.
#[derive(Debug, Clone)]
pub struct ArmResource {
    /// Its position in `resources`.
    pub index: usize,
    pub kind: Kind,
    /// The child name, after the factory's: `[concat(parameters('factoryName'), '/KeyVault')]` → `KeyVault`.
    pub name: String,
    /// `properties`, with every expression that could be evaluated replaced by its value.
    pub properties: Value,
    /// Each expression that could not be evaluated: its path within the resource, and why.
    pub unresolved: Vec<(String, String)>,
    /// The values that a secure parameter fills at deployment: inline secrets, by path within the resource.
    pub secure: Vec<String>,
}

/// The template's parameters and variables, and the values the parameters file gives.
pub struct Template<'a> {
    declared: Option<&'a Map<String, Value>>,
    values: Option<&'a Map<String, Value>>,
    variables: Option<&'a Map<String, Value>>,
}

impl<'a> Template<'a> {
    pub fn new(template: &'a Value, parameters_file: Option<&'a Value>) -> Self {
        Template {
            declared: template.get("parameters").and_then(Value::as_object),
            values: parameters_file
                .and_then(|p| p.get("parameters"))
                .and_then(Value::as_object),
            variables: template.get("variables").and_then(Value::as_object),
        }
    }

    /// `None` when `text` is not an expression; otherwise its value, or why it has none here.
    pub fn evaluate(&self, text: &str) -> Option<Result<String, String>> {
        self.evaluate_at(text, 0)
    }

    fn evaluate_at(&self, text: &str, depth: usize) -> Option<Result<String, String>> {
        let inner = expression_body(text)?;
        if depth > MAX_DEPTH {
            return Some(Err(
                "parameters and variables refer to each other too deeply".into(),
            ));
        }
        Some(
            Parser::new(inner)
                .whole()
                .and_then(|node| self.eval(&node, depth)),
        )
    }

    fn eval(&self, node: &Node, depth: usize) -> Result<String, String> {
        match node {
            Node::Literal(s) => Ok(s.clone()),
            Node::Call(name, args) => match name.to_ascii_lowercase().as_str() {
                "parameters" => self.parameter(&single_literal(name, args)?, depth),
                "variables" => self.variable(&single_literal(name, args)?, depth),
                "concat" => args.iter().map(|a| self.eval(a, depth)).collect(),
                _ => Err(format!("`{name}()` is not evaluated offline")),
            },
            Node::Accessor(what) => Err(format!("`{what}` is not evaluated offline")),
        }
    }

    fn parameter(&self, name: &str, depth: usize) -> Result<String, String> {
        let declaration = find(self.declared, name);
        let kind = declaration
            .and_then(|d| d.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.eq_ignore_ascii_case("secureString") || kind.eq_ignore_ascii_case("secureObject") {
            return Err(format!(
                "parameter `{name}` is secure, and its value is not read"
            ));
        }
        if let Some(given) = find(self.values, name) {
            if given.get("reference").is_some() {
                return Err(format!(
                    "parameter `{name}` comes from a Key Vault reference at deployment"
                ));
            }
            if let Some(value) = given.get("value") {
                return scalar(value).ok_or_else(|| {
                    format!("parameter `{name}` is not a string in the parameters file")
                });
            }
        }
        match declaration.and_then(|d| d.get("defaultValue")) {
            Some(Value::String(s)) => self
                .evaluate_at(s, depth + 1)
                .unwrap_or_else(|| Ok(unescape(s))),
            Some(other) => scalar(other)
                .ok_or_else(|| format!("the default of parameter `{name}` is not a string")),
            None if declaration.is_none() => Err(format!(
                "parameter `{name}` is not declared in the template"
            )),
            None => Err(format!(
                "parameter `{name}` has no value in the parameters file and no default"
            )),
        }
    }

    fn variable(&self, name: &str, depth: usize) -> Result<String, String> {
        match find(self.variables, name) {
            Some(Value::String(s)) => self
                .evaluate_at(s, depth + 1)
                .unwrap_or_else(|| Ok(unescape(s))),
            Some(other) => {
                scalar(other).ok_or_else(|| format!("variable `{name}` is not a string"))
            }
            None => Err(format!("variable `{name}` is not declared in the template")),
        }
    }

    /// Evaluates every expression in `value`; the paths of those that cannot be are returned with the reason.
    pub fn resolve_tree(&self, value: &Value) -> (Value, Vec<(String, String)>) {
        let mut unresolved = Vec::new();
        let resolved = self.resolve_node(value, &mut String::new(), &mut unresolved, 0);
        (resolved, unresolved)
    }

    /// Whether `text` is exactly `[parameters('x')]` for a secure parameter `x`.
    pub fn is_secure_parameter(&self, text: &str) -> bool {
        let Some(Ok(Node::Call(function, args))) =
            expression_body(text).map(|b| Parser::new(b).whole())
        else {
            return false;
        };
        let [Node::Literal(name)] = args.as_slice() else {
            return false;
        };
        function.eq_ignore_ascii_case("parameters")
            && find(self.declared, name)
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| {
                    t.eq_ignore_ascii_case("secureString") || t.eq_ignore_ascii_case("secureObject")
                })
    }

    fn resolve_node(
        &self,
        value: &Value,
        path: &mut String,
        unresolved: &mut Vec<(String, String)>,
        depth: usize,
    ) -> Value {
        if depth > 64 {
            return value.clone();
        }
        let len = path.len();
        match value {
            Value::String(s) => match self.evaluate(s) {
                None => Value::String(unescape(s)),
                Some(Ok(v)) => Value::String(v),
                Some(Err(why)) => {
                    unresolved.push((path.clone(), why));
                    value.clone()
                }
            },
            Value::Object(o) => {
                let mut out = Map::new();
                for (key, child) in o {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    out.insert(
                        key.clone(),
                        self.resolve_node(child, path, unresolved, depth + 1),
                    );
                    path.truncate(len);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, child)| {
                        path.push_str(&format!("[{i}]"));
                        let v = self.resolve_node(child, path, unresolved, depth + 1);
                        path.truncate(len);
                        v
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A resource's child name. When the factory part cannot be evaluated, the literal `/Child` suffix of a
    /// `concat` still names it.
    fn child_name(&self, name: &str) -> Result<String, String> {
        let full = match self.evaluate(name) {
            None => unescape(name),
            Some(Ok(v)) => v,
            Some(Err(why)) => {
                let last_literal = expression_body(name)
                    .and_then(|body| Parser::new(body).whole().ok())
                    .and_then(|node| match node {
                        Node::Call(f, args) if f.eq_ignore_ascii_case("concat") => {
                            match args.last() {
                                Some(Node::Literal(s)) if s.contains('/') => Some(s.clone()),
                                _ => None,
                            }
                        }
                        _ => None,
                    });
                last_literal.ok_or(why)?
            }
        };
        Ok(full.rsplit('/').next().unwrap_or_default().to_string())
    }
}

/// The factory resources of a template: linked services, credentials, integration runtimes and the factory.
pub fn resources(template: &Value, parameters_file: Option<&Value>) -> Vec<ArmResource> {
    let context = Template::new(template, parameters_file);
    let Some(list) = template.get("resources").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(index, resource)| {
            let kind = Kind::from_arm_type(resource.get("type")?.as_str()?)?;
            let raw_name = resource
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (name, mut unresolved) = match context.child_name(raw_name) {
                Ok(name) => (name, Vec::new()),
                Err(why) => (raw_name.to_string(), vec![("name".to_string(), why)]),
            };
            let properties = resource.get("properties").cloned().unwrap_or(Value::Null);
            let mut secure = Vec::new();
            secure_paths(
                &context,
                &properties,
                &mut "properties".to_string(),
                &mut secure,
                0,
            );
            let (properties, in_properties) = context.resolve_tree(&properties);
            unresolved.extend(
                in_properties
                    .into_iter()
                    .map(|(path, why)| (format!("properties.{path}"), why)),
            );
            Some(ArmResource {
                index,
                kind,
                name,
                properties,
                unresolved,
                secure,
            })
        })
        .collect()
}

/// The paths of the strings that a secure parameter fills.
fn secure_paths(
    context: &Template,
    value: &Value,
    path: &mut String,
    found: &mut Vec<String>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    let len = path.len();
    match value {
        Value::String(s) if context.is_secure_parameter(s) => found.push(path.clone()),
        Value::Object(o) => {
            for (key, child) in o {
                path.push('.');
                path.push_str(key);
                secure_paths(context, child, path, found, depth + 1);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                secure_paths(context, child, path, found, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The text between the brackets of an expression, or `None` for a literal (`[[` escapes a literal).
fn expression_body(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    if trimmed.starts_with("[[") {
        return None;
    }
    trimmed.strip_prefix('[')?.strip_suffix(']')
}

/// A literal string: `[[x]` is written for `[x]`.
fn unescape(text: &str) -> String {
    match text.strip_prefix("[[") {
        Some(rest) => format!("[{rest}"),
        None => text.to_string(),
    }
}

fn find<'a>(map: Option<&'a Map<String, Value>>, name: &str) -> Option<&'a Value> {
    // ARM parameter and variable names are case-insensitive.
    map?.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn single_literal(function: &str, args: &[Node]) -> Result<String, String> {
    match args {
        [Node::Literal(name)] => Ok(name.clone()),
        _ => Err(format!(
            "`{function}()` with a computed name is not evaluated offline"
        )),
    }
}

/// The parsed form of a template expression.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(String),
    Call(String, Vec<Node>),
    /// A property or index access on a call's result: not evaluated.
    Accessor(String),
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn whole(mut self) -> Result<Node, String> {
        let node = self.expression(0)?;
        self.skip_spaces();
        if self.pos != self.text.len() {
            return Err(format!("cannot parse the expression `[{}]`", self.text));
        }
        Ok(node)
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn expression(&mut self, depth: usize) -> Result<Node, String> {
        let text = self.text;
        let unparsable = move || format!("cannot parse the expression `[{text}]`");
        if depth > 32 {
            return Err(unparsable());
        }
        self.skip_spaces();
        let rest = self.rest();
        if rest.starts_with('\'') {
            return self.literal().ok_or_else(unparsable);
        }
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        if number_len > 0 {
            self.pos += number_len;
            return Ok(Node::Literal(rest[..number_len].to_string()));
        }
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        if name_len == 0 {
            return Err(unparsable());
        }
        let name = rest[..name_len].to_string();
        self.pos += name_len;
        self.skip_spaces();
        if !self.rest().starts_with('(') {
            return Err(unparsable());
        }
        self.pos += 1;
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if self.rest().starts_with(')') {
                self.pos += 1;
                break;
            }
            args.push(self.expression(depth + 1)?);
            self.skip_spaces();
            if self.rest().starts_with(',') {
                self.pos += 1;
            } else if !self.rest().starts_with(')') {
                return Err(unparsable());
            }
        }
        self.skip_spaces();
        if self.rest().starts_with(['.', '[']) {
            // `parameters('x').property` or `[0]`: keep the text for the message, do not evaluate.
            let start = self.text.len() - self.rest().len();
            self.pos = self.text.len();
            return Ok(Node::Accessor(format!(
                "{name}(…){}",
                self.text.get(start..).unwrap_or_default()
            )));
        }
        Ok(Node::Call(name, args))
    }

    /// `'text'`, where `''` stands for one quote.
    fn literal(&mut self) -> Option<Node> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                self.pos += i + 1;
                return Some(Node::Literal(out));
            }
            out.push(c);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "parameters": {
                "factoryName": {"type": "string", "defaultValue": "contoso-adf"},
                "vaultUrl": {"type": "string"},
                "fromDefault": {"type": "string", "defaultValue": "[concat('https://', 'dflt-kv', '.vault.azure.net/')]"},
                "missing": {"type": "string"},
                "password": {"type": "secureString"}
            },
            "variables": {"factoryId": "[concat('Microsoft.DataFactory/factories/', parameters('factoryName'))]"},
            "resources": []
        })
    }

    fn parameters() -> Value {
        json!({"parameters": {
            "factoryName": {"value": "sales-adf"},
            "VAULTURL": {"value": "https://contoso-kv.vault.azure.net/"},
            "password": {"value": "FAKE-TEST-ONLY-never-read"}
        }})
    }

    #[test]
    fn parameters_come_from_the_file_then_the_default() {
        let (t, p) = (template(), parameters());
        let ctx = Template::new(&t, Some(&p));
        assert_eq!(
            ctx.evaluate("[parameters('vaultUrl')]"),
            Some(Ok("https://contoso-kv.vault.azure.net/".into()))
        );
        assert_eq!(
            ctx.evaluate("[parameters('fromDefault')]"),
            Some(Ok("https://dflt-kv.vault.azure.net/".into()))
        );
        assert_eq!(
            ctx.evaluate("[concat(variables('factoryId'), '/linkedServices/KV')]"),
            Some(Ok(
                "Microsoft.DataFactory/factories/sales-adf/linkedServices/KV".into()
            ))
        );
        let without_file = Template::new(&t, None);
        assert_eq!(
            without_file.evaluate("[parameters('factoryName')]"),
            Some(Ok("contoso-adf".into()))
        );
    }

    #[test]
    fn what_cannot_be_evaluated_says_why() {
        let (t, p) = (template(), parameters());
        let ctx = Template::new(&t, Some(&p));
        let why = |e: &str| ctx.evaluate(e).and_then(Result::err).unwrap_or_default();
        assert!(why("[parameters('missing')]").contains("no value in the parameters file"));
        assert!(why("[parameters('nope')]").contains("not declared"));
        assert!(why("[parameters('password')]").contains("secure"));
        assert!(!why("[parameters('password')]").contains("FAKE-TEST-ONLY"));
        assert!(why("[resourceGroup().location]").contains("not evaluated offline"));
        assert!(why("[format('{0}', 'x')]").contains("`format()`"));
        assert!(why("[concat('a']").contains("cannot parse"));
    }

    #[test]
    fn literals_and_escapes() {
        let t = template();
        let ctx = Template::new(&t, None);
        assert_eq!(ctx.evaluate("plain"), None);
        assert_eq!(ctx.evaluate("[[not an expression]"), None);
        assert_eq!(
            ctx.evaluate("[concat('it''s', ' ', 'x')]"),
            Some(Ok("it's x".into()))
        );
        let (v, unresolved) =
            ctx.resolve_tree(&json!({"a": "[[literal]", "b": ["[parameters('missing')]"]}));
        assert_eq!(v["a"], "[literal]");
        assert_eq!(unresolved.len(), 1);
        assert_eq!(unresolved[0].0, "b[0]");
    }

    #[test]
    fn resources_get_their_child_names_and_resolved_properties() {
        let mut t = template();
        t["resources"] = json!([
            {"name": "[concat(parameters('factoryName'), '/KeyVault')]", "type": "Microsoft.DataFactory/factories/linkedServices",
             "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "[parameters('vaultUrl')]"}}},
            {"name": "[concat(parameters('missing'), '/Orphan')]", "type": "Microsoft.DataFactory/factories/linkedServices",
             "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "[parameters('missing')]"}}},
            {"name": "[concat(parameters('factoryName'), '/pipeline1')]", "type": "Microsoft.DataFactory/factories/pipelines", "properties": {}}
        ]);
        let p = parameters();
        let found = resources(&t, Some(&p));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "KeyVault");
        assert_eq!(
            found[0].properties["typeProperties"]["baseUrl"],
            "https://contoso-kv.vault.azure.net/"
        );
        assert_eq!(found[1].name, "Orphan");
        assert!(found[0].secure.is_empty());
        assert_eq!(
            found[1].unresolved[0].0,
            "properties.typeProperties.baseUrl"
        );
    }

    #[test]
    fn hostile_expressions_do_not_panic() {
        let t = template();
        let ctx = Template::new(&t, None);
        for e in [
            "[",
            "[]",
            "[(]",
            "[concat(]",
            "['unterminated]",
            "[a(b(c(d(",
            "[ü('x')]",
            "[concat('é',)]",
        ] {
            let _ = ctx.evaluate(e);
        }
        let deep = format!("[{}'x'{}]", "concat(".repeat(200), ")".repeat(200));
        assert!(matches!(ctx.evaluate(&deep), Some(Err(_))));
        let mut looping = template();
        looping["variables"] = json!({"a": "[variables('b')]", "b": "[variables('a')]"});
        let ctx = Template::new(&looping, None);
        assert!(matches!(ctx.evaluate("[variables('a')]"), Some(Err(_))));
    }
}
