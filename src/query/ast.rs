//! The syntax tree of a filter. It records what the user wrote, nothing more:
//! no schema knowledge, no SQL. Identifiers are split into path segments and
//! an optional trailing modifier so resolvers can work on structure, not text.

/// A boolean filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All children must hold (`&&`). Always two or more children.
    And(Vec<Expr>),
    /// At least one child must hold (`||`). Always two or more children.
    Or(Vec<Expr>),
    /// `left op right`.
    Compare(Comparison),
}

/// One `left op right` comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub left: Operand,
    pub op: Op,
    pub right: Operand,
}

/// A comparison operator. `any` is set for the `?` variants (`?=`, `?~`, ...),
/// which ask for at-least-one instead of every element of a multi-valued operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `~` (contains / LIKE)
    Like,
    /// `!~` (does not contain / NOT LIKE)
    NotLike,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl Op {
    /// Every operator spelling of the grammar, longest first is not needed:
    /// the lexer reads a whole run of operator characters and looks it up here.
    pub(crate) fn from_symbol(symbol: &str) -> Option<Op> {
        let (any, plain) = match symbol.strip_prefix('?') {
            Some(rest) => (true, rest),
            None => (false, symbol),
        };
        let kind = match plain {
            "=" => OpKind::Eq,
            "!=" => OpKind::Neq,
            "~" => OpKind::Like,
            "!~" => OpKind::NotLike,
            "<" => OpKind::Lt,
            "<=" => OpKind::Lte,
            ">" => OpKind::Gt,
            ">=" => OpKind::Gte,
            _ => return None,
        };
        Some(Op { kind, any })
    }
}

/// One side of a comparison, or a function argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A field path, `@request.*`, `@collection.*` or a datetime macro such as `@now`.
    Identifier(Identifier),
    /// A quoted string, escapes already applied.
    Text(String),
    /// A number literal (integers and decimals; the reference binds them all as floats).
    Number(f64),
    /// `true` / `false` (any letter case).
    Bool(bool),
    /// `null` (any letter case).
    Null,
    /// `name(arg, ...)`.
    Function(FunctionCall),
}

/// A function call such as `geoDistance(lon, lat, 1, 2)`. The grammar accepts any
/// name; the compiler decides which functions exist.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    pub args: Vec<Operand>,
}

/// A dotted identifier: `author.name`, `tags:length`, `@request.auth.id`,
/// `@collection.posts:p.title`, `meta.arr.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    /// The identifier exactly as written, for messages and macro lookup.
    pub raw: String,
    /// The dot-separated segments, without the trailing modifier. A segment can
    /// still hold a `:` that is not a modifier, e.g. the alias in `posts:p`.
    pub path: Vec<String>,
    /// A known `:modifier` at the very end, if any.
    pub modifier: Option<Modifier>,
}

/// The modifiers a field path may end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `:length` — number of elements of a multi-valued field.
    Length,
    /// `:each` — compare every element of a multi-valued field.
    Each,
    /// `:lower` — compare the lower-cased value.
    Lower,
    /// `:isset` — whether `@request.body.x` was sent.
    Isset,
    /// `:changed` — whether `@request.body.x` differs from the stored value.
    Changed,
}

impl Modifier {
    fn from_name(name: &str) -> Option<Modifier> {
        match name {
            "length" => Some(Modifier::Length),
            "each" => Some(Modifier::Each),
            "lower" => Some(Modifier::Lower),
            "isset" => Some(Modifier::Isset),
            "changed" => Some(Modifier::Changed),
            _ => None,
        }
    }
}

impl Identifier {
    /// Splits a lexically valid identifier into segments and a known trailing
    /// modifier. Returns `None` when a segment is empty (`a..b`, `.a`), which the
    /// grammar's character rules alone do not exclude.
    pub(crate) fn from_raw(raw: &str) -> Option<Identifier> {
        let mut path: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let mut modifier = None;
        if let Some(last) = path.last_mut() {
            if let Some((field, suffix)) = last.rsplit_once(':') {
                // An unknown suffix stays in the segment: the resolver will
                // reject it as an unknown field, which is the reference's answer too.
                if let Some(known) = Modifier::from_name(suffix) {
                    modifier = Some(known);
                    *last = field.to_owned();
                }
            }
        }
        if path
            .iter()
            .any(|segment| segment.is_empty() || segment.starts_with(':'))
        {
            return None;
        }
        Some(Identifier {
            raw: raw.to_owned(),
            path,
            modifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(raw: &str) -> Identifier {
        Identifier::from_raw(raw).unwrap()
    }

    #[test]
    fn identifier_splits_path_and_known_modifier() {
        let id = ident("tags:length");
        assert_eq!(id.path, vec!["tags"]);
        assert_eq!(id.modifier, Some(Modifier::Length));

        let id = ident("@request.body.title:changed");
        assert_eq!(id.path, vec!["@request", "body", "title"]);
        assert_eq!(id.modifier, Some(Modifier::Changed));

        let id = ident("author.name:lower");
        assert_eq!(id.path, vec!["author", "name"]);
        assert_eq!(id.modifier, Some(Modifier::Lower));
    }

    #[test]
    fn identifier_keeps_collection_alias_inside_its_segment() {
        let id = ident("@collection.posts:p.title");
        assert_eq!(id.path, vec!["@collection", "posts:p", "title"]);
        assert_eq!(id.modifier, None);
    }

    #[test]
    fn identifier_leaves_unknown_suffix_for_the_resolver() {
        let id = ident("title:excerpt");
        assert_eq!(id.path, vec!["title:excerpt"]);
        assert_eq!(id.modifier, None);
    }

    #[test]
    fn identifier_with_numeric_segment() {
        assert_eq!(ident("meta.arr.0").path, vec!["meta", "arr", "0"]);
    }

    #[test]
    fn identifier_rejects_empty_segments() {
        assert!(Identifier::from_raw("a..b").is_none());
        assert!(Identifier::from_raw("a.:length").is_none());
    }

    #[test]
    fn op_symbols_round_trip() {
        let cases = [
            ("=", OpKind::Eq, false),
            ("!=", OpKind::Neq, false),
            ("~", OpKind::Like, false),
            ("!~", OpKind::NotLike, false),
            ("<", OpKind::Lt, false),
            ("<=", OpKind::Lte, false),
            (">", OpKind::Gt, false),
            (">=", OpKind::Gte, false),
            ("?=", OpKind::Eq, true),
            ("?!=", OpKind::Neq, true),
            ("?~", OpKind::Like, true),
            ("?!~", OpKind::NotLike, true),
            ("?<", OpKind::Lt, true),
            ("?<=", OpKind::Lte, true),
            ("?>", OpKind::Gt, true),
            ("?>=", OpKind::Gte, true),
        ];
        for (symbol, kind, any) in cases {
            assert_eq!(Op::from_symbol(symbol), Some(Op { kind, any }), "{symbol}");
        }
        for bad in ["==", "=!", "<>", "??=", "?", "!", "=<", "~="] {
            assert_eq!(Op::from_symbol(bad), None, "{bad}");
        }
    }
}
