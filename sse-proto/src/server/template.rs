//! RFC 6570 URI templates as topic selectors: the parser and the matcher.
//!
//! A template selects a topic when some expansion of it, for some values
//! of its variables, equals the topic. The set of such topics is a regular
//! language: the parser compiles the template to a small nondeterministic
//! automaton, and [`Template::matches`] runs it over the topic once, byte
//! by byte, keeping the set of states it may be in (no backtracking, so
//! the time is linear in the topic's length times the automaton's size).
//!
//! What each part of a template accepts:
//!
//! * literal text: itself, byte for byte;
//! * a variable of a simple (`{var}`), label (`{.var}`) or path
//!   (`{/var}`) expression: a run of unreserved characters (`A-Z a-z 0-9
//!   - . _ ~`) and `%XX` escapes, commas included (a list's items); never a
//!   `/`, `?` or `#` that is not escaped;
//! * a variable of a reserved (`{+var}`) or fragment (`{#var}`)
//!   expression: the same with the reserved characters (`: / ? # [ ] @ ! $
//!   & ' ( ) * + , ; =`) too;
//! * a named variable (`{;var}`, `{?var}`, `{&var}`): `var=` and such a
//!   run (`{;var}` also accepts `var` alone, for an empty value);
//! * an exploded variable (`{var*}`): such runs joined by the
//!   expression's separator, with `=` (a list's items or a map's pairs);
//! * a prefix (`{var:3}`): at most that many characters, each one an
//!   unreserved character or one UTF-8 character escaped as `%XX`
//!   triplets;
//! * an expression: any of its variables may be left undefined, so it
//!   accepts its leading character (`.`, `/`, `;`, `?`, `&`, `#`) and the
//!   values of the defined ones joined by its separator, or nothing at
//!   all.
//!
//! A variable named twice is matched independently at each place (the
//! language of "the same value twice" is not regular).

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::selector::SelectorError;

/// The most characters a prefix modifier (`{var:N}`) may keep.
const MAX_PREFIX: u16 = 9999;

/// Whether byte `b` is unreserved ([`U`]) or reserved ([`R`]) in RFC
/// 3986's sense, or neither (0).
#[inline]
fn class(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => U,
        b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' | b'!' | b'$' | b'&' | b'\'' | b'('
        | b')' | b'*' | b'+' | b',' | b';' | b'=' => R,
        _ => 0,
    }
}
/// Unreserved.
const U: u8 = 1;
/// Reserved.
const R: u8 = 2;

/// The bytes a run of value characters may hold besides `%XX` escapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chars {
    /// [`U`], or [`U`] | [`R`].
    classes: u8,
    /// Up to three more bytes (separators); 0 for none.
    extra: [u8; 3],
}

impl Chars {
    #[inline]
    fn allows(self, b: u8) -> bool {
        class(b) & self.classes != 0 || (b != 0 && self.extra.contains(&b))
    }
}

/// One state of the automaton.
#[derive(Clone, Copy, Debug)]
enum Node {
    /// Takes this byte, then goes on at `next`.
    Byte { byte: u8, next: u32 },
    /// Goes on at both, taking nothing.
    Fork { a: u32, b: u32 },
    /// A run of value characters (and `%XX` escapes), then `next`. With a
    /// `max` (not 0), at most that many characters, counted as UTF-8
    /// characters.
    Run { chars: Chars, max: u16, next: u32 },
    /// Accepts nothing (an expression's leading character with none of
    /// its variables after it).
    Fail,
    /// The end: the topic matches when the input ends here.
    Match,
}

// Where a thread is inside a `Run` (its substate). `IDLE + p`: between
// characters, with `p` continuation bytes of an escaped UTF-8 character
// still to come (0 outside a bounded run); `PCT + p`: after a `%`; then
// after the first hex digit of an escape: an ASCII byte, the lead byte of
// a 2, 3 or 4 byte character, or (`CONT + p - 1`) a continuation byte;
// `ANY`: after the first hex digit in an unbounded run.
const IDLE: u8 = 0;
const PCT: u8 = 4;
const HEX_ASCII: u8 = 8;
const HEX_LEAD2: u8 = 9;
const HEX_LEAD3: u8 = 10;
const HEX_LEAD4: u8 = 11;
const HEX_CONT: u8 = 12;
const HEX_ANY: u8 = 15;
/// Substates of a bounded run.
const BOUNDED_SUBSTATES: u32 = 16;
/// Substates of an unbounded run: `IDLE`, `PCT`, `HEX_ANY`.
const UNBOUNDED_SUBSTATES: u32 = 3;

/// A compiled URI template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    /// The literal text before the first expression.
    prefix: Box<[u8]>,
    /// The literal text after the last expression.
    suffix: Box<[u8]>,
    /// The automaton for what lies between them.
    nodes: Box<[Node]>,
    /// `slots[i]`: where node `i`'s states start in a state set.
    slots: Box<[u32]>,
    /// The number of states (slots) in all.
    states: u32,
    start: u32,
    /// The fewest bytes a matching topic has (its literal text).
    min_len: usize,
}

/// The parts of a template, as parsed.
enum Part {
    Literal(Vec<u8>),
    Expression(Expression),
}

/// One `{...}` expression.
struct Expression {
    op: Op,
    vars: Vec<VarSpec>,
}

/// A variable of an expression.
struct VarSpec {
    name: Vec<u8>,
    modifier: Modifier,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Modifier {
    None,
    /// `:N`.
    Prefix(u16),
    /// `*`.
    Explode,
}

/// An expression's operator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParam,
    Query,
    QueryCont,
}

impl Op {
    /// The character written before the first defined variable.
    fn first(self) -> Option<u8> {
        match self {
            Op::Simple | Op::Reserved => None,
            Op::Fragment => Some(b'#'),
            Op::Label => Some(b'.'),
            Op::Path => Some(b'/'),
            Op::PathParam => Some(b';'),
            Op::Query => Some(b'?'),
            Op::QueryCont => Some(b'&'),
        }
    }

    /// The separator between defined variables (and exploded items).
    fn sep(self) -> u8 {
        match self {
            Op::Simple | Op::Reserved | Op::Fragment => b',',
            Op::Label => b'.',
            Op::Path => b'/',
            Op::PathParam => b';',
            Op::Query | Op::QueryCont => b'&',
        }
    }

    /// Whether variables are written as `name=value`.
    fn named(self) -> bool {
        matches!(self, Op::PathParam | Op::Query | Op::QueryCont)
    }

    /// Which characters a value keeps unescaped.
    fn classes(self) -> u8 {
        match self {
            Op::Reserved | Op::Fragment => U | R,
            _ => U,
        }
    }
}

impl Template {
    /// Parses and compiles `source`; `Ok(None)` when it holds no
    /// expression (a plain string, selected exactly).
    pub(crate) fn parse(source: &str) -> Result<Option<Template>, SelectorError> {
        let parts = parse_parts(source.as_bytes())?;
        let first_expr = parts.iter().position(|p| matches!(p, Part::Expression(_)));
        let Some(first_expr) = first_expr else {
            return Ok(None);
        };
        let last_expr = parts
            .iter()
            .rposition(|p| matches!(p, Part::Expression(_)))
            .unwrap_or(first_expr);
        let literal = |part: Option<&Part>| match part {
            Some(Part::Literal(text)) => text.clone().into_boxed_slice(),
            _ => Box::default(),
        };
        let prefix = if first_expr > 0 {
            literal(parts.first())
        } else {
            Box::default()
        };
        let suffix = if last_expr + 1 < parts.len() {
            literal(parts.last())
        } else {
            Box::default()
        };
        let min_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.len(),
                Part::Expression(_) => 0,
            })
            .sum();
        let middle = parts.get(first_expr..=last_expr).unwrap_or(&[]);
        let mut builder = Builder { nodes: Vec::new() };
        let mut next = builder.push(Node::Match);
        for part in middle.iter().rev() {
            next = match part {
                Part::Literal(text) => builder.bytes(text, next),
                Part::Expression(e) => builder.expression(e, next),
            };
        }
        let mut slots = Vec::with_capacity(builder.nodes.len());
        let mut states: u32 = 0;
        for node in &builder.nodes {
            slots.push(states);
            states += match node {
                Node::Run { max: 0, .. } => UNBOUNDED_SUBSTATES,
                Node::Run { .. } => BOUNDED_SUBSTATES,
                _ => 1,
            };
        }
        Ok(Some(Template {
            prefix,
            suffix,
            nodes: builder.nodes.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            states,
            start: next,
            min_len,
        }))
    }

    /// About how many bytes of memory the compiled template holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.prefix.len()
            + self.suffix.len()
            + self.nodes.len() * core::mem::size_of::<Node>()
            + self.slots.len() * core::mem::size_of::<u32>()
    }

    /// Whether some expansion of the template equals `topic`.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        let topic = topic.as_bytes();
        if topic.len() < self.min_len {
            return false;
        }
        let Some(rest) = topic.strip_prefix(&*self.prefix) else {
            return false;
        };
        let Some(middle) = rest.strip_suffix(&*self.suffix) else {
            return false;
        };
        self.run(middle)
    }

    /// Runs the automaton over `input`: whether it ends in the match
    /// state.
    fn run(&self, input: &[u8]) -> bool {
        let size = self.states as usize;
        let mut current = StateSet::new(size);
        let mut next = StateSet::new(size);
        let mut stack = Vec::new();
        self.add(&mut current, &mut stack, self.start, IDLE, 0);
        for &b in input {
            if current.is_empty() {
                return false;
            }
            next.clear();
            for i in 0..current.len() {
                let Some(&Thread { node, sub, count }) = current.entries.get(i) else {
                    break;
                };
                self.step(&mut next, &mut stack, node, sub, count, b);
            }
            core::mem::swap(&mut current, &mut next);
        }
        current
            .entries
            .iter()
            .any(|t| matches!(self.nodes.get(t.node as usize), Some(Node::Match)))
    }

    /// The slot of substate `sub` of `node`.
    #[inline]
    fn slot(&self, node: u32, sub: u8) -> Option<usize> {
        let base = *self.slots.get(node as usize)?;
        let local = match self.nodes.get(node as usize)? {
            Node::Run { max: 0, .. } => match sub {
                IDLE => 0,
                PCT => 1,
                _ => 2,
            },
            Node::Run { .. } => u32::from(sub),
            _ => 0,
        };
        Some((base + local) as usize)
    }

    /// Adds a thread and everything it reaches without input.
    fn add(&self, set: &mut StateSet, stack: &mut Vec<Thread>, node: u32, sub: u8, count: u16) {
        stack.push(Thread { node, sub, count });
        while let Some(thread) = stack.pop() {
            let Some(slot) = self.slot(thread.node, thread.sub) else {
                continue;
            };
            if !set.insert(slot, thread) {
                continue;
            }
            match self.nodes.get(thread.node as usize) {
                Some(&Node::Fork { a, b }) => {
                    stack.push(Thread::at(b));
                    stack.push(Thread::at(a));
                }
                Some(&Node::Run { next, .. }) if thread.sub == IDLE => {
                    stack.push(Thread::at(next));
                }
                _ => {}
            }
        }
    }

    /// Moves one thread over byte `b`.
    fn step(
        &self,
        set: &mut StateSet,
        stack: &mut Vec<Thread>,
        node: u32,
        sub: u8,
        count: u16,
        b: u8,
    ) {
        match self.nodes.get(node as usize) {
            Some(&Node::Byte { byte, next }) if byte == b => self.add(set, stack, next, IDLE, 0),
            Some(&Node::Run { chars, max, .. }) => {
                if let Some((sub, count)) = run_step(chars, max, sub, count, b) {
                    self.add(set, stack, node, sub, count);
                }
            }
            _ => {}
        }
    }
}

/// The move of a thread inside a run over byte `b`: its new substate and
/// count, or `None` when the byte cannot come there.
#[inline]
fn run_step(chars: Chars, max: u16, sub: u8, count: u16, b: u8) -> Option<(u8, u16)> {
    let bounded = max != 0;
    // A new character starts: counted against the prefix's length.
    let counted = || {
        if !bounded {
            Some(0)
        } else if count < max {
            Some(count + 1)
        } else {
            None
        }
    };
    match sub {
        IDLE if b == b'%' => Some((PCT, count)),
        IDLE if chars.allows(b) => Some((IDLE, counted()?)),
        // Inside an escaped UTF-8 character: only its next escape.
        1..=3 if b == b'%' => Some((PCT + sub, count)),
        PCT => {
            let digit = hex(b)?;
            if !bounded {
                return Some((HEX_ANY, 0));
            }
            let kind = match digit {
                0..=7 => HEX_ASCII,
                0xC | 0xD => HEX_LEAD2,
                0xE => HEX_LEAD3,
                0xF => HEX_LEAD4,
                // A continuation byte with no lead byte before it.
                _ => return None,
            };
            Some((kind, counted()?))
        }
        5..=7 => match hex(b)? {
            0x8..=0xB => Some((HEX_CONT + (sub - PCT) - 1, count)),
            _ => None,
        },
        HEX_ANY | HEX_ASCII => hex(b).map(|_| (IDLE, count)),
        HEX_LEAD2 => hex(b).map(|_| (IDLE + 1, count)),
        HEX_LEAD3 => hex(b).map(|_| (IDLE + 2, count)),
        HEX_LEAD4 => match hex(b)? {
            0..=7 => Some((IDLE + 3, count)),
            _ => None,
        },
        // A continuation byte: one fewer to come.
        12..=14 => hex(b).map(|_| (sub - HEX_CONT, count)),
        _ => None,
    }
}

/// The value of a hex digit.
#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A thread of the automaton: a node, its substate (in a run) and how
/// many characters the run has taken (in a bounded run).
#[derive(Clone, Copy, Debug)]
struct Thread {
    node: u32,
    sub: u8,
    count: u16,
}

impl Thread {
    fn at(node: u32) -> Thread {
        Thread {
            node,
            sub: IDLE,
            count: 0,
        }
    }
}

/// A set of threads, at most one per slot (the one with the smallest
/// count: it can do all that the others can), as a sparse set: cleared in
/// constant time.
struct StateSet {
    /// The threads, in the order they were added.
    entries: Vec<Thread>,
    /// `index[slot]`: where the slot's thread is in `entries` (valid only
    /// when that entry is at the same slot).
    index: Vec<u32>,
    /// `owner[i]`: the slot of `entries[i]`.
    owner: Vec<u32>,
}

impl StateSet {
    fn new(slots: usize) -> StateSet {
        StateSet {
            entries: Vec::with_capacity(slots.min(64)),
            index: alloc::vec![0; slots],
            owner: Vec::with_capacity(slots.min(64)),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.owner.clear();
    }

    /// Adds `thread` at `slot`; `true` when the slot was empty (its
    /// moves without input are then to be followed). A thread already
    /// there keeps the smaller count.
    fn insert(&mut self, slot: usize, thread: Thread) -> bool {
        let Some(at) = self.index.get_mut(slot) else {
            return false;
        };
        let i = *at as usize;
        if self.owner.get(i).is_some_and(|&o| o as usize == slot) {
            if let Some(existing) = self.entries.get_mut(i) {
                existing.count = existing.count.min(thread.count);
            }
            return false;
        }
        // Slots are fewer than `u32::MAX` (templates are short).
        *at = self.entries.len() as u32;
        self.entries.push(thread);
        self.owner.push(slot as u32);
        true
    }
}

/// Builds the automaton from the end backwards: each construct is given
/// the node it goes on to and returns its entry node.
struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    fn push(&mut self, node: Node) -> u32 {
        // A template of at most a few KiB has far fewer nodes.
        let index = self.nodes.len() as u32;
        self.nodes.push(node);
        index
    }

    fn bytes(&mut self, text: &[u8], mut next: u32) -> u32 {
        for &byte in text.iter().rev() {
            next = self.push(Node::Byte { byte, next });
        }
        next
    }

    fn fork(&mut self, a: u32, b: u32) -> u32 {
        self.push(Node::Fork { a, b })
    }

    /// An expression: nothing, or its leading character and the defined
    /// variables' values joined by its separator.
    fn expression(&mut self, e: &Expression, next: u32) -> u32 {
        let sep = e.op.sep();
        // Going backwards: `after_some` is where variable `i + 1` is
        // considered once some variable was defined, `after_none` where
        // it is while none was yet.
        let mut after_some = next;
        let mut after_none = self.push(Node::Fail);
        for var in e.vars.iter().rev() {
            let value = self.variable(e.op, var, after_some);
            let separated = self.push(Node::Byte {
                byte: sep,
                next: value,
            });
            after_some = self.fork(separated, after_some);
            after_none = self.fork(value, after_none);
        }
        let first = match e.op.first() {
            Some(byte) => self.push(Node::Byte {
                byte,
                next: after_none,
            }),
            None => after_none,
        };
        self.fork(first, next)
    }

    /// One defined variable's value.
    fn variable(&mut self, op: Op, var: &VarSpec, next: u32) -> u32 {
        let classes = op.classes();
        let sep = op.sep();
        let (extra, max) = match var.modifier {
            Modifier::None => ([b',', 0, 0], 0),
            Modifier::Prefix(n) => ([0; 3], n),
            // A list's items, or a map's `key=value` pairs.
            Modifier::Explode => ([sep, b'=', b','], 0),
        };
        let chars = Chars { classes, extra };
        let run = |b: &mut Builder, next: u32| b.push(Node::Run { chars, max, next });
        if !op.named() || var.modifier == Modifier::Explode {
            // An exploded map names its keys, not the variable.
            return run(self, next);
        }
        let value = run(self, next);
        let equals = self.push(Node::Byte {
            byte: b'=',
            next: value,
        });
        let after_name = if op == Op::PathParam {
            // `;name` alone for an empty value.
            self.fork(equals, next)
        } else {
            equals
        };
        self.bytes(&var.name, after_name)
    }
}

/// Splits a template into literal text and expressions, checking its
/// syntax.
fn parse_parts(src: &[u8]) -> Result<Vec<Part>, SelectorError> {
    let mut parts = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        match b {
            b'{' => {
                let body_start = i + 1;
                let rest = src.get(body_start..).unwrap_or(&[]);
                let close = rest.iter().position(|&c| c == b'}' || c == b'{');
                let end = match close {
                    Some(n) if rest.get(n) == Some(&b'}') => body_start + n,
                    Some(n) => {
                        return Err(SelectorError::NestedBrace { at: body_start + n });
                    }
                    None => return Err(SelectorError::UnclosedBrace { at: i }),
                };
                let body = src.get(body_start..end).unwrap_or(&[]);
                if !literal.is_empty() {
                    parts.push(Part::Literal(core::mem::take(&mut literal)));
                }
                parts.push(Part::Expression(parse_expression(body, i)?));
                i = end + 1;
            }
            b'}' => return Err(SelectorError::UnopenedBrace { at: i }),
            _ => {
                literal.push(b);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// Parses the inside of an expression whose `{` is at byte `open`.
fn parse_expression(body: &[u8], open: usize) -> Result<Expression, SelectorError> {
    let Some(&first) = body.first() else {
        return Err(SelectorError::EmptyExpression { at: open });
    };
    let op = match first {
        b'+' => Some(Op::Reserved),
        b'#' => Some(Op::Fragment),
        b'.' => Some(Op::Label),
        b'/' => Some(Op::Path),
        b';' => Some(Op::PathParam),
        b'?' => Some(Op::Query),
        b'&' => Some(Op::QueryCont),
        b'=' | b',' | b'!' | b'@' | b'|' => {
            return Err(SelectorError::ReservedOperator {
                at: open + 1,
                operator: char::from(first),
            });
        }
        _ => None,
    };
    let list_start = usize::from(op.is_some());
    let list = body.get(list_start..).unwrap_or(&[]);
    if list.is_empty() {
        return Err(SelectorError::EmptyExpression { at: open });
    }
    let mut vars = Vec::new();
    let mut offset = open + 1 + list_start;
    for spec in list.split(|&c| c == b',') {
        vars.push(parse_varspec(spec, offset)?);
        offset += spec.len() + 1;
    }
    Ok(Expression {
        op: op.unwrap_or(Op::Simple),
        vars,
    })
}

/// Parses `name`, `name*` or `name:N`, which starts at byte `at`.
fn parse_varspec(spec: &[u8], at: usize) -> Result<VarSpec, SelectorError> {
    let name_len = spec
        .iter()
        .position(|&c| c == b':' || c == b'*')
        .unwrap_or(spec.len());
    let (name, modifier) = spec.split_at(name_len);
    check_name(name, at)?;
    let modifier = match modifier {
        [] => Modifier::None,
        [b'*'] => Modifier::Explode,
        [b':', digits @ ..] => {
            let valid = (1..=4).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
                && digits.first() != Some(&b'0');
            let n = digits.iter().fold(0u16, |n, &d| {
                n.saturating_mul(10)
                    .saturating_add(u16::from(d.wrapping_sub(b'0')))
            });
            if !valid || n > MAX_PREFIX {
                return Err(SelectorError::BadPrefix { at: at + name_len });
            }
            Modifier::Prefix(n)
        }
        _ => {
            return Err(SelectorError::BadModifier { at: at + name_len });
        }
    };
    Ok(VarSpec {
        name: name.to_vec(),
        modifier,
    })
}

/// Checks a variable name (RFC 6570's `varname`): letters, digits, `_`
/// and `%XX` escapes, with single dots between them.
fn check_name(name: &[u8], at: usize) -> Result<(), SelectorError> {
    if name.is_empty() {
        return Err(SelectorError::EmptyVariable { at });
    }
    let mut i = 0;
    let mut after_dot = true;
    while let Some(&c) = name.get(i) {
        match c {
            b'%' => {
                let escaped = name
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                if !escaped {
                    return Err(SelectorError::BadVariable {
                        at: at + i,
                        found: '%',
                    });
                }
                i += 3;
                after_dot = false;
                continue;
            }
            b'.' if !after_dot => after_dot = true,
            c if c.is_ascii_alphanumeric() || c == b'_' => after_dot = false,
            _ => {
                let found = core::str::from_utf8(name.get(i..).unwrap_or(&[]))
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(SelectorError::BadVariable { at: at + i, found });
            }
        }
        i += 1;
    }
    if after_dot {
        // A trailing dot (a leading one was caught above).
        return Err(SelectorError::BadVariable {
            at: at + name.len() - 1,
            found: '.',
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use proptest::prelude::*;

    fn template(s: &str) -> Template {
        Template::parse(s).unwrap().expect("an expression")
    }

    /// Checks which of `topics` the template matches.
    #[track_caller]
    fn check(source: &str, yes: &[&str], no: &[&str]) {
        let t = template(source);
        for topic in yes {
            assert!(t.matches(topic), "{source} should match {topic:?}");
        }
        for topic in no {
            assert!(!t.matches(topic), "{source} should not match {topic:?}");
        }
    }

    #[test]
    fn simple_variables_stop_at_reserved_characters() {
        check(
            "https://example.com/books/{id}",
            &[
                "https://example.com/books/1",
                "https://example.com/books/",
                "https://example.com/books/a-b.c_d~e",
                "https://example.com/books/caf%C3%A9",
                "https://example.com/books/1,2,3",
            ],
            &[
                "https://example.com/books/1/reviews",
                "https://example.com/authors/1",
                "https://example.com/books",
                "https://example.com/books/1?x",
                "https://example.com/books/1#x",
                "https://example.com/books/%C",
                "https://example.com/books/%GG",
                "https://example.com/books/caf\u{e9}",
                "https://example.com/books/a b",
                "http://example.com/books/1",
            ],
        );
    }

    #[test]
    fn literals_are_taken_literally() {
        // `.`, `?`, `+`, `*`, `(`, `[` and `$` mean nothing special.
        check(
            "a.b?c+d*e(f)[g]$/{x}",
            &["a.b?c+d*e(f)[g]$/1"],
            &[
                "aXb?c+d*e(f)[g]$/1",
                "a.bc+d*e(f)[g]$/1",
                "a.b?cc+d*e(f)[g]$/1",
            ],
        );
        check(
            "{x}.json",
            &["1.json", ".json", "a.b.json"],
            &["1xjson", "1.jso"],
        );
        // A near miss at the end.
        check(
            "https://example.com/books/{id}/reviews",
            &["https://example.com/books/1/reviews"],
            &[
                "https://example.com/books/1/review",
                "https://example.com/books/1/reviewss",
            ],
        );
    }

    #[test]
    fn reserved_and_fragment_expansion_take_slashes() {
        check(
            "https://example.com/{+path}",
            &[
                "https://example.com/a/b/c",
                "https://example.com/a?b=c#d",
                "https://example.com/",
                "https://example.com/%20",
            ],
            &[
                "https://example.com",
                "https://example.com/a b",
                "https://example.com/{x}",
            ],
        );
        check("/x{#frag}", &["/x", "/x#a/b", "/x#"], &["/xa", "/x/a"]);
    }

    #[test]
    fn label_and_path_segments() {
        check(
            "/file{.ext}",
            &["/file", "/file.txt", "/file.tar.gz"],
            &["/filetxt", "/file/txt"],
        );
        check(
            "/root{/a,b}",
            &["/root", "/root/1", "/root/1/2"],
            &["/root/1/2/3", "/root1", "/root/1?"],
        );
        check(
            "/root{/segments*}",
            &["/root/1/2/3/4", "/root"],
            &["/root/1?x"],
        );
    }

    #[test]
    fn named_parameters() {
        check(
            "/map{;x,y}",
            &[
                "/map",
                "/map;x=1",
                "/map;y=2",
                "/map;x=1;y=2",
                "/map;x",
                "/map;x;y",
            ],
            &[
                "/map;y=2;x=1",
                "/map;z=1",
                "/map;x=1;x=2",
                "/map;",
                "/map;x=a/b",
            ],
        );
        check(
            "/search{?q,lang}",
            &[
                "/search",
                "/search?q=cat",
                "/search?lang=fr",
                "/search?q=cat&lang=fr",
                "/search?q=",
            ],
            &[
                "/search?",
                "/search?lang=fr&q=cat",
                "/search?q",
                "/search?q=a&b",
                "/search?x=1",
            ],
        );
        check(
            "/search?fixed=1{&page}",
            &["/search?fixed=1", "/search?fixed=1&page=2"],
            &["/search?fixed=1&page", "/search?fixed=1&pages=2"],
        );
        check(
            "/search{?params*}",
            &["/search?a=1&b=2", "/search?list=a&list=b", "/search"],
            &["/search?a=1/2", "/search&a=1"],
        );
    }

    #[test]
    fn several_expressions_and_variables() {
        check(
            "https://example.com/{collection}/{id}{?fields}",
            &[
                "https://example.com/books/1",
                "https://example.com/books/1?fields=title",
                "https://example.com//",
            ],
            &["https://example.com/books", "https://example.com/books/1/2"],
        );
        check("{a}{b}", &["", "ab", "a,b"], &["a/b"]);
        check("{x,y}", &["1,2", "1", ""], &["1/2"]);
        check("{+x,y}", &["1,2", "a/b,c/d"], &["a b"]);
    }

    #[test]
    fn prefixes_count_characters() {
        check(
            "/{id:3}",
            &[
                "/",
                "/a",
                "/abc",
                "/%C3%A9%C3%A9%C3%A9",
                "/%F0%9F%98%80",
                "/a%20b",
            ],
            &[
                "/abcd",
                "/%C3%A9%C3%A9%C3%A9a",
                "/a,b",
                "/%80",
                "/%C3",
                "/%C3a",
                "/%F8%80%80%80",
            ],
        );
        check("/{+path:2}/x", &["/a/x", "/ab/x", "/a//x"], &["/abc/x"]);
        check("{?q:2}", &["?q=ab", "?q="], &["?q=abc"]);
        check("{;q:2}", &["", ";q", ";q=ab"], &[";q=abc"]);
    }

    #[test]
    fn escapes_accept_either_case() {
        check("/{x}", &["/%2f", "/%2F", "/%aB"], &["/%", "/%2", "/%zz"]);
    }

    #[test]
    fn a_leading_operator_needs_a_variable() {
        // `/root/` is not an expansion of `/root{/a}`: the `/` only comes
        // with a value.
        check("/root{/a}", &["/root", "/root/"], &[]);
        check("x{?a}", &["x"], &["x?"]);
    }

    #[test]
    fn plain_strings_are_not_templates() {
        assert!(
            Template::parse("https://example.com/books/1")
                .unwrap()
                .is_none()
        );
        assert!(Template::parse("").unwrap().is_none());
    }

    #[test]
    fn malformed_templates_say_where() {
        use SelectorError as E;
        let cases: &[(&str, SelectorError)] = &[
            ("/a/{id", E::UnclosedBrace { at: 3 }),
            ("/a/id}", E::UnopenedBrace { at: 5 }),
            ("/{a{b}}", E::NestedBrace { at: 3 }),
            ("/{}", E::EmptyExpression { at: 1 }),
            ("/{+}", E::EmptyExpression { at: 1 }),
            (
                "/{=a}",
                E::ReservedOperator {
                    at: 2,
                    operator: '=',
                },
            ),
            (
                "/{|a}",
                E::ReservedOperator {
                    at: 2,
                    operator: '|',
                },
            ),
            ("/{a,}", E::EmptyVariable { at: 4 }),
            ("/{a,,b}", E::EmptyVariable { at: 4 }),
            // `,` first is one of the operators RFC 6570 reserves.
            (
                "/{,a}",
                E::ReservedOperator {
                    at: 2,
                    operator: ',',
                },
            ),
            ("/{a-b}", E::BadVariable { at: 3, found: '-' }),
            ("/{a b}", E::BadVariable { at: 3, found: ' ' }),
            ("/{.a..b}", E::BadVariable { at: 5, found: '.' }),
            ("/{a.}", E::BadVariable { at: 3, found: '.' }),
            ("/{%zz}", E::BadVariable { at: 2, found: '%' }),
            (
                "/{\u{e9}}",
                E::BadVariable {
                    at: 2,
                    found: '\u{e9}',
                },
            ),
            ("/{a:0}", E::BadPrefix { at: 3 }),
            ("/{a:10000}", E::BadPrefix { at: 3 }),
            ("/{a:}", E::BadPrefix { at: 3 }),
            ("/{a:x}", E::BadPrefix { at: 3 }),
            ("/{a:-1}", E::BadPrefix { at: 3 }),
            ("/{a:3 }", E::BadPrefix { at: 3 }),
            ("/{a*:3}", E::BadModifier { at: 3 }),
            ("/{a**}", E::BadModifier { at: 3 }),
        ];
        for (source, want) in cases {
            assert_eq!(
                Template::parse(source).err().as_ref(),
                Some(want),
                "{source}"
            );
            // Every message is a sentence with the position.
            let message = want.to_string();
            assert!(message.contains("byte"), "{message}");
        }
        assert!(Template::parse("/{a.b,c_d,%41:9999,e*}").is_ok());
    }

    /// A variable's value in a test expansion.
    #[derive(Clone, Debug)]
    enum Value {
        Undefined,
        Str(String),
        List(Vec<String>),
        Map(Vec<(String, String)>),
    }

    /// Percent-encodes what `op` does not keep as it is.
    fn escape(op: Op, s: &str, out: &mut String) {
        for c in s.chars() {
            let mut buf = [0; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            match bytes {
                [b] if class(*b) & op.classes() != 0 => out.push(char::from(*b)),
                _ => {
                    for b in bytes {
                        out.push_str(&alloc::format!("%{b:02X}"));
                    }
                }
            }
        }
    }

    /// RFC 6570 expansion (level 4), written from the RFC's algorithm.
    fn expand(source: &str, values: &[Value]) -> String {
        let parts = parse_parts(source.as_bytes()).unwrap();
        let mut out = String::new();
        let mut next_value = values.iter().cycle();
        for part in parts {
            let e = match part {
                Part::Literal(text) => {
                    out.push_str(core::str::from_utf8(&text).unwrap());
                    continue;
                }
                Part::Expression(e) => e,
            };
            let mut first = true;
            for var in &e.vars {
                let value = next_value.next().cloned().unwrap_or(Value::Undefined);
                let name = core::str::from_utf8(&var.name).unwrap();
                let defined = match &value {
                    Value::Undefined => false,
                    Value::List(l) => !l.is_empty(),
                    Value::Map(m) => !m.is_empty(),
                    Value::Str(_) => true,
                };
                if !defined {
                    continue;
                }
                if first {
                    if let Some(c) = e.op.first() {
                        out.push(char::from(c));
                    }
                    first = false;
                } else {
                    out.push(char::from(e.op.sep()));
                }
                let ifemp = if e.op == Op::PathParam { "" } else { "=" };
                match (&value, var.modifier) {
                    (Value::Str(s), modifier) => {
                        let s: String = match modifier {
                            Modifier::Prefix(n) => s.chars().take(usize::from(n)).collect(),
                            _ => s.clone(),
                        };
                        if e.op.named() {
                            out.push_str(name);
                            out.push_str(if s.is_empty() { ifemp } else { "=" });
                        }
                        escape(e.op, &s, &mut out);
                    }
                    (Value::List(items), Modifier::Explode) => {
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                out.push(char::from(e.op.sep()));
                            }
                            if e.op.named() {
                                out.push_str(name);
                                out.push_str(if item.is_empty() { ifemp } else { "=" });
                            }
                            escape(e.op, item, &mut out);
                        }
                    }
                    (Value::Map(pairs), Modifier::Explode) => {
                        for (i, (k, v)) in pairs.iter().enumerate() {
                            if i > 0 {
                                out.push(char::from(e.op.sep()));
                            }
                            escape(e.op, k, &mut out);
                            if e.op.named() && v.is_empty() {
                                out.push_str(ifemp);
                            } else {
                                out.push('=');
                            }
                            escape(e.op, v, &mut out);
                        }
                    }
                    (Value::List(_) | Value::Map(_), _) => {
                        if e.op.named() {
                            out.push_str(name);
                            out.push('=');
                        }
                        let items: Vec<&String> = match &value {
                            Value::List(items) => items.iter().collect(),
                            Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
                            _ => Vec::new(),
                        };
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            escape(e.op, item, &mut out);
                        }
                    }
                    (Value::Undefined, _) => {}
                }
            }
        }
        out
    }

    /// Templates for the expansion property: every operator and modifier.
    const TEMPLATES: &[&str] = &[
        "https://example.com/books/{id}",
        "/{a}/{b}{.ext}",
        "{+path}/here{#frag}",
        "/x{/segs*}{?q,lang}{&page}",
        "/m{;a,b*,c:3}",
        "{?list*}",
        "{x:2}{y}{z*}",
        "a.b?c+d*e/{v}",
        "{#a,b:5}",
        "/{.a*,b}",
    ];

    fn text() -> impl Strategy<Value = String> {
        // Mostly plain, sometimes any character (escaped on expansion).
        prop_oneof![
            "[a-z0-9]{0,6}",
            any::<String>().prop_map(|s| s.chars().take(6).collect()),
            "[/?#&=,.;:@ %]{0,4}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Undefined),
            text().prop_map(Value::Str),
            prop::collection::vec(text(), 0..4).prop_map(Value::List),
            prop::collection::vec((text(), text()), 0..3).prop_map(Value::Map),
        ]
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(512))]

        /// Whatever the variables hold, a template matches its expansion.
        #[test]
        fn a_template_matches_its_expansions(
            which in 0..TEMPLATES.len(),
            values in prop::collection::vec(value(), 1..8),
        ) {
            let source = TEMPLATES[which];
            // Prefix modifiers apply to strings only (RFC 6570, 2.4.1).
            let values: Vec<Value> = values;
            let topic = expand(source, &values);
            let t = template(source);
            let prefixed = source.contains(':');
            if !prefixed || !values.iter().any(|v| matches!(v, Value::List(_) | Value::Map(_))) {
                prop_assert!(t.matches(&topic), "{} does not match its expansion {:?} of {:?}", source, topic, values);
            }
        }

        /// A topic that differs from every expansion in its literal text is
        /// not matched.
        #[test]
        fn a_changed_literal_does_not_match(id in "[a-z0-9]{0,8}") {
            let t = template("https://example.com/books/{id}/reviews");
            let topic = alloc::format!("https://example.com/books/{id}/reviews");
            prop_assert!(t.matches(&topic));
            prop_assert!(!t.matches(&topic.replace("books", "b00ks")));
            let longer = alloc::format!("{topic}/1");
            prop_assert!(!t.matches(&longer));
            prop_assert!(!t.matches(&topic.replacen('/', "", 1)));
        }
    }

    #[test]
    fn long_topics_and_many_states_stay_bounded() {
        // Every run accepts everything: the state set holds every run at
        // once, and the match still ends in one pass.
        let n = if cfg!(miri) { 6 } else { 40 };
        let source: String = (0..n).map(|i| alloc::format!("{{+v{i}}}")).collect();
        let t = template(&source);
        let topic = "a/".repeat(if cfg!(miri) { 20 } else { 5000 });
        assert!(t.matches(&topic));
        assert!(!t.matches(&(topic.clone() + " ")));
    }
}
