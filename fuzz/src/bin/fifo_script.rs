//! Fuzz target: `informer_sim::inputs::fifo_script` must not panic, and its error is one line.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        informer_sim::inputs::check(&informer_sim::inputs::fifo_script(data));
    });
}
