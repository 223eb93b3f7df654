//! What a GraphQL document may cost, measured before anything else looks at it.
//!
//! Fragments make a document's size a poor measure of its cost: ten fragments
//! that each spread the next one ten times are under 1 KB and expand to ten
//! billion fields. async-graphql's own passes (recursion depth, directives,
//! validation, execution) walk the document *expanded*, so they must never see
//! such a document. These checks are linear in the document's text: tokens are
//! counted before parsing, and fields after fragment expansion are counted with
//! each fragment's size computed once and an early exit at the limit.
//!
//! Pure: no async-graphql schema, no I/O.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};

/// Limits on one document (a batch's documents share `fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Lexical tokens in the document's text.
    pub tokens: usize,
    /// Selections (fields, fragment spreads, inline fragments) after fragment expansion.
    pub fields: usize,
    /// Fragment definitions.
    pub fragments: usize,
    /// Aliased fields, as written.
    pub aliases: usize,
    /// Directives, as written.
    pub directives: usize,
    /// Nesting of selection sets, fragments included (async-graphql's recursion depth).
    pub nesting: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            tokens: 10_000,
            fields: 2_000,
            fragments: 64,
            aliases: 64,
            directives: 64,
            nesting: 32,
        }
    }
}

/// Which limit a document broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Tokens,
    Fields,
    Fragments,
    Aliases,
    Directives,
    Nesting,
    BatchOperations,
}

impl Limit {
    /// What is limited, for the client's error message.
    pub const fn describes(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::Fields => "fields after fragment expansion",
            Self::Fragments => "fragment definitions",
            Self::Aliases => "aliases",
            Self::Directives => "directives",
            Self::Nesting => "levels of nested selections",
            Self::BatchOperations => "operations in one batch",
        }
    }

    /// The setting that raises it.
    pub const fn setting(self) -> &'static str {
        match self {
            Self::Tokens => "VOLTGATE_MAX_QUERY_TOKENS",
            Self::Fields => "VOLTGATE_MAX_QUERY_FIELDS",
            Self::Fragments => "VOLTGATE_MAX_QUERY_FRAGMENTS",
            Self::Aliases => "VOLTGATE_MAX_QUERY_ALIASES",
            Self::Directives => "VOLTGATE_MAX_QUERY_DIRECTIVES",
            Self::Nesting => "VOLTGATE_MAX_QUERY_NESTING",
            Self::BatchOperations => "VOLTGATE_MAX_BATCH_OPERATIONS",
        }
    }
}

/// A document over a limit; its message names the limit and its setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    pub max: usize,
}

impl LimitExceeded {
    pub fn message(&self) -> String {
        format!(
            "the request exceeds the limit of {} {} ({})",
            self.max,
            self.limit.describes(),
            self.limit.setting()
        )
    }
}

/// Why a document was refused before execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Limit(LimitExceeded),
    Syntax(String),
}

/// What a document that passed costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocumentCost {
    pub tokens: usize,
    pub fields: usize,
}

/// Counts tokens, parses, then measures the parsed document.
///
/// # Errors
/// [`Refusal::Limit`] for the first limit exceeded, [`Refusal::Syntax`] when the
/// text is not a GraphQL document.
pub fn check(
    query: &str,
    limits: &DocumentLimits,
) -> Result<(ExecutableDocument, DocumentCost), Refusal> {
    let tokens = count_tokens(query, limits.tokens).map_err(Refusal::Limit)?;
    let document = parse_query(query).map_err(|err| Refusal::Syntax(err.to_string()))?;
    let fields = measure(&document, limits).map_err(Refusal::Limit)?;
    Ok((document, DocumentCost { tokens, fields }))
}

/// Counts the lexical tokens of `text` (GraphQL's punctuators, names, numbers and
/// strings; whitespace, commas and comments are ignored), stopping past `max`.
/// Characters that are not GraphQL count as one token each: the parser rejects them.
///
/// # Errors
/// When there are more than `max` tokens.
pub fn count_tokens(text: &str, max: usize) -> Result<usize, LimitExceeded> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut count = 0_usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            // A byte-order mark is ignored like whitespace.
            0xEF if bytes[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                i += 3;
                continue;
            }
            _ => {
                // One token per character, whatever its UTF-8 length.
                i += 1;
                while i < bytes.len() && (bytes[i] & 0xC0) == 0x80 {
                    i += 1;
                }
            }
        }
        count += 1;
        if count > max {
            return Err(LimitExceeded {
                limit: Limit::Tokens,
                max,
            });
        }
    }
    Ok(count)
}

/// Checks a parsed document's shape: fragments, aliases, directives and nesting
/// as written, then selections after fragment expansion. Returns that count.
///
/// # Errors
/// The first limit exceeded.
pub fn measure(
    document: &ExecutableDocument,
    limits: &DocumentLimits,
) -> Result<usize, LimitExceeded> {
    let exceeded = |limit, max| Err(LimitExceeded { limit, max });
    if document.fragments.len() > limits.fragments {
        return exceeded(Limit::Fragments, limits.fragments);
    }
    let mut written = Written::default();
    for (_, operation) in document.operations.iter() {
        written.directives += operation.node.directives.len();
        for variable in &operation.node.variable_definitions {
            written.directives += variable.node.directives.len();
        }
        written.visit(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        written.directives += fragment.node.directives.len();
        written.visit(&fragment.node.selection_set.node);
    }
    if written.aliases > limits.aliases {
        return exceeded(Limit::Aliases, limits.aliases);
    }
    if written.directives > limits.directives {
        return exceeded(Limit::Directives, limits.directives);
    }

    let mut expansion = Expansion {
        fragments: &document.fragments,
        sizes: HashMap::new(),
        limits,
    };
    let mut total = 0_usize;
    for (_, operation) in document.operations.iter() {
        // Depth 0 at the operation, as async-graphql counts its recursion depth.
        total += expansion.size(&operation.node.selection_set, 0)?;
        if total > limits.fields {
            return exceeded(Limit::Fields, limits.fields);
        }
    }
    Ok(total)
}

/// Counts of what the document spells out, each selection set visited once.
#[derive(Default)]
struct Written {
    aliases: usize,
    directives: usize,
}

impl Written {
    fn visit(&mut self, set: &SelectionSet) {
        // An explicit stack: a document nested thousands deep must not exhaust ours.
        let mut stack = vec![set];
        while let Some(set) = stack.pop() {
            for selection in &set.items {
                match &selection.node {
                    Selection::Field(field) => {
                        self.aliases += usize::from(field.node.alias.is_some());
                        self.directives += field.node.directives.len();
                        stack.push(&field.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        self.directives += spread.node.directives.len();
                    }
                    Selection::InlineFragment(inline) => {
                        self.directives += inline.node.directives.len();
                        stack.push(&inline.node.selection_set.node);
                    }
                }
            }
        }
    }
}

/// Sizes of selection sets after expansion; each fragment's size is computed once.
struct Expansion<'d> {
    fragments: &'d HashMap<async_graphql::Name, Positioned<FragmentDefinition>>,
    /// `None` while a fragment is being sized: meeting it again is a cycle.
    sizes: HashMap<&'d str, Option<usize>>,
    limits: &'d DocumentLimits,
}

impl<'d> Expansion<'d> {
    /// Selections under `set` after expansion, at nesting `depth`. Stops as soon
    /// as the count passes the limit, so the count itself stays cheap.
    fn size(
        &mut self,
        set: &'d Positioned<SelectionSet>,
        depth: usize,
    ) -> Result<usize, LimitExceeded> {
        let limits = self.limits;
        if depth > limits.nesting {
            return Err(LimitExceeded {
                limit: Limit::Nesting,
                max: limits.nesting,
            });
        }
        let over = || LimitExceeded {
            limit: Limit::Fields,
            max: limits.fields,
        };
        let mut total = 0_usize;
        for selection in &set.node.items {
            let size = match &selection.node {
                Selection::Field(field) => {
                    let children = &field.node.selection_set;
                    1 + if children.node.items.is_empty() {
                        0
                    } else {
                        self.size(children, depth + 1)?
                    }
                }
                Selection::InlineFragment(inline) => {
                    1 + self.size(&inline.node.selection_set, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    1 + self.fragment(spread.node.fragment_name.node.as_str(), depth + 1)?
                }
            };
            total = total.checked_add(size).ok_or_else(over)?;
            if total > limits.fields {
                return Err(over());
            }
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &str, depth: usize) -> Result<usize, LimitExceeded> {
        let Some((name, fragment)) = self.fragments.get_key_value(name) else {
            // Unknown fragments are validation's to report.
            return Ok(0);
        };
        match self.sizes.get(name.as_str()) {
            Some(Some(size)) => {
                // Known size; its nesting still counts from here.
                if depth > self.limits.nesting {
                    return Err(LimitExceeded {
                        limit: Limit::Nesting,
                        max: self.limits.nesting,
                    });
                }
                Ok(*size)
            }
            // A cycle expands forever: it is over every limit (validation would
            // name it, but only after walking it).
            Some(None) => Err(LimitExceeded {
                limit: Limit::Fields,
                max: self.limits.fields,
            }),
            None => {
                self.sizes.insert(name.as_str(), None);
                let size = self.size(&fragment.node.selection_set, depth)?;
                self.sizes.insert(name.as_str(), Some(size));
                Ok(size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `levels` fragments, each spreading the next `fan_out` times.
    fn fan_out(levels: usize, fan_out: usize) -> String {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..levels {
            let spreads = format!("...F{} ", level + 1).repeat(fan_out);
            query.push_str(&format!("fragment F{level} on Query {{ {spreads}}}\n"));
        }
        query.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
        query
    }

    fn refused(query: &str, limits: &DocumentLimits) -> Limit {
        match check(query, limits) {
            Err(Refusal::Limit(exceeded)) => exceeded.limit,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_fragment_fan_out_is_refused_without_expanding_it() {
        let query = fan_out(10, 10);
        assert!(query.len() < 1100, "the attack is about 1 KB");
        let started = std::time::Instant::now();
        assert_eq!(refused(&query, &DocumentLimits::default()), Limit::Fields);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn shared_fragments_are_counted_once_per_spread() {
        // 3 levels of 2 spreads: 2 + 4 + 8 spreads and 8 leaves, plus the root spread.
        let (_, cost) = check(&fan_out(3, 2), &DocumentLimits::default()).expect("within limits");
        assert_eq!(cost.fields, 1 + 2 + 4 + 8 + 8);
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let query = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(refused(query, &DocumentLimits::default()), Limit::Fields);
    }

    #[test]
    fn each_written_limit_is_enforced() {
        let limits = DocumentLimits {
            tokens: 50,
            fields: 100,
            fragments: 1,
            aliases: 2,
            directives: 2,
            nesting: 2,
        };
        assert_eq!(refused(&"{ a }".repeat(20), &limits), Limit::Tokens);
        assert_eq!(
            refused(
                "{ ...A ...B } fragment A on Q { a } fragment B on Q { b }",
                &limits
            ),
            Limit::Fragments
        );
        assert_eq!(refused("{ x: a y: a z: a }", &limits), Limit::Aliases);
        assert_eq!(
            refused(
                "{ a @skip(if: true) b @skip(if: true) c @skip(if: true) }",
                &limits
            ),
            Limit::Directives
        );
        assert_eq!(refused("{ a { b { c { d } } } }", &limits), Limit::Nesting);
        assert!(check("{ a { b { c } } }", &limits).is_ok());
    }

    #[test]
    fn tokens_are_counted_like_graphql_does() {
        let count = |text| count_tokens(text, usize::MAX).expect("unbounded");
        assert_eq!(count("query Q($a: Int = -1.5e3) { f(s: \"a, b\") }"), 18);
        assert_eq!(count("# a comment\n{ a, b }"), 4);
        assert_eq!(count("{ f(s: \"\"\"block \\\"\"\" \"\"\" ) ...F }"), 10);
        assert_eq!(count("\u{feff}{ é }"), 3);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn syntax_errors_are_reported_as_such() {
        assert!(matches!(
            check("{ a ", &DocumentLimits::default()),
            Err(Refusal::Syntax(_))
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_text_is_measured_or_refused_without_panicking(text in "\\PC{0,400}") {
                let _ = check(&text, &DocumentLimits::default());
            }

            #[test]
            fn graphql_like_text_is_measured_or_refused_without_panicking(
                text in "[{}()\\[\\]. a-z:@$!#\"\\\\,0-9\n-]{0,300}"
            ) {
                let _ = check(&text, &DocumentLimits::default());
            }

            #[test]
            fn token_counts_stop_at_the_limit(text in "\\PC{0,200}", max in 0..20_usize) {
                match count_tokens(&text, max) {
                    Ok(count) => prop_assert!(count <= max),
                    Err(exceeded) => prop_assert_eq!(exceeded.max, max),
                }
            }
        }
    }
}
