//! `sgmp-sim`: runs many S-GMP engines over simulated links and checks the Strong GMP spec.
fn main() {
    eprintln!("sgmp-sim: not built yet");
    std::process::exit(2);
}
