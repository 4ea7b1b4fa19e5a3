//! A fixed-count loop over the core for instruction counting under callgrind, which is
//! repeatable on a loaded machine where wall-clock timings are not:
//!
//! ```text
//! cargo build --release --example core_loop
//! valgrind --tool=callgrind target/release/examples/core_loop handle invite_sdp 20000
//! ```
//! Instructions per message = (total at N) - (total at 0), divided by N.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use ferrovia::proxy::OUTPUT_BUFFER_SIZE;
use ferrovia::sip::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: core_loop scan|handle VECTOR COUNT";
    let (mode, name, count) = match args.as_slice() {
        [_, mode, name, count] => (
            mode.as_str(),
            name.as_str(),
            count.parse::<u64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let &(_, bytes, source) = common::VECTORS
        .iter()
        .find(|(n, ..)| *n == name)
        .expect("unknown vector");
    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = common::input(bytes, source, Instant::now());
    for _ in 0..count {
        match mode {
            "scan" => {
                black_box(
                    Message::scan(black_box(bytes), false)
                        .map(|m| m.headers().len())
                        .ok(),
                );
            }
            "handle" => {
                let outcome = core.handle(black_box(input), &mut out);
                let _ = black_box(outcome);
            }
            _ => panic!("{usage}"),
        }
    }
}
