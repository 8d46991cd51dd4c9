//! Topic selectors: 10,000 topics matched against 1,000 mixed selectors
//! (exact topics, RFC 6570 URI templates, WHATWG URL Patterns and `*`).
//!
//! * `selectors/each-pair`: every selector's `matches` on every topic, one
//!   pair at a time: 10,000,000 matches per iteration (criterion's
//!   throughput is matches per second; 1e9 / it is ns per match).
//! * `selectors/router`: the same selectors held by 1,000 subscribers of a
//!   `Router`, and each topic routed as an update: exact selectors are one
//!   index lookup, patterns are matched once per routed topic (the URL
//!   parsed once for all URL patterns); throughput is topics per second.
//!
//! Before timing, both ways are checked to agree on how many
//! (topic, selector) pairs match.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use sse_proto::server::{Router, Selector, Subscription};

const TOPICS: usize = 10_000;
const SELECTORS: usize = 1_000;

/// The selectors: 500 exact, 340 templates of several shapes, 150 URL
/// patterns and 10 `*`.
fn selectors() -> Vec<Selector> {
    let mut out = Vec::with_capacity(SELECTORS);
    for i in 0..500 {
        out.push(Selector::exact(format!("https://example.com/books/{i}")));
    }
    for i in 0..340 {
        let source = match i % 5 {
            0 => format!("https://example.com/shelf{i}/{{id}}"),
            1 => format!("https://example.com/authors/{i}/{{+rest}}"),
            2 => format!("https://example.com/s{i}{{/a,b}}{{?q,page}}"),
            3 => format!("https://example.com/users/{i}{{;v,w}}{{.format}}"),
            _ => format!("https://{{host}}.example.com/t{i}/{{x:8}}{{#frag}}"),
        };
        out.push(Selector::topic(&source).expect("a valid template"));
    }
    for i in 0..150 {
        let source = match i % 3 {
            0 => format!("https://example.com/shelf{i}/:id"),
            1 => format!("https://example.com/authors/{i}/*"),
            _ => format!("https://:sub.example.com/t{i}/:id(\\d+)"),
        };
        out.push(Selector::url_pattern(&source).expect("a valid URL pattern"));
    }
    out.extend((0..10).map(|_| Selector::Any));
    assert_eq!(out.len(), SELECTORS);
    out
}

/// The topics: URLs some exact selector, template or pattern matches, and
/// some that nothing but `*` does.
fn topics() -> Vec<String> {
    (0..TOPICS)
        .map(|i| match i % 8 {
            0 => format!("https://example.com/books/{}", i % 700),
            1 => format!("https://example.com/shelf{}/{}", i % 400, i),
            2 => format!("https://example.com/authors/{}/posts/{}", i % 400, i),
            3 => format!("https://example.com/s{}/x/y?q=a&page=2", i % 400),
            4 => format!("https://example.com/users/{};v=1.json", i % 400),
            5 => format!("https://www.example.com/t{}/{}#top", i % 400, i),
            6 => format!("https://example.org/elsewhere/{i}"),
            _ => format!("urn:uuid:{i:08x}-0000-0000-0000-000000000000"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let selectors = selectors();
    let topics = topics();

    let pairs = |selectors: &[Selector]| -> usize {
        topics
            .iter()
            .map(|t| selectors.iter().filter(|s| s.matches(t)).count())
            .sum()
    };
    let mut router = Router::new();
    for s in &selectors {
        router.insert(Subscription::new([s.clone()]), 0usize);
    }
    let route_all = |router: &mut Router<usize>| -> usize {
        topics
            .iter()
            .map(|t| {
                router.route(
                    std::slice::from_ref(t),
                    false,
                    |_, _| true,
                    |_, _, _| unreachable!("nobody is removed"),
                )
            })
            .sum()
    };
    let matched = pairs(&selectors);
    assert_eq!(
        route_all(&mut router),
        matched,
        "the router and the pairs disagree"
    );
    let kinds = |pick: fn(&Selector) -> bool| {
        let chosen: Vec<Selector> = selectors.iter().filter(|s| pick(s)).cloned().collect();
        (chosen.len(), pairs(&chosen))
    };
    let template = |s: &Selector| s.pattern().is_some_and(|p| p.as_str().contains('{'));
    let url = |s: &Selector| s.pattern().is_some_and(|p| !p.as_str().contains('{'));
    eprintln!(
        "selectors: {matched} of {} (topic, selector) pairs match; templates {:?}, URL patterns {:?} (selectors, matches)",
        TOPICS * SELECTORS,
        kinds(template),
        kinds(url),
    );

    let mut group = c.benchmark_group("selectors");
    group.sample_size(10);
    group.throughput(Throughput::Elements((TOPICS * SELECTORS) as u64));
    group.bench_function("each-pair", |b| {
        b.iter(|| black_box(pairs(black_box(&selectors))));
    });
    group.throughput(Throughput::Elements(TOPICS as u64));
    group.bench_function("router", |b| {
        b.iter(|| black_box(route_all(&mut router)));
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
