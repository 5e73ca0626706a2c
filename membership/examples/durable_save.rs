//! What a durable save costs (D22): `DirStorage::save` of a five-member state (one save
//! per process per view change), with and without fsync, on the machine's temporary
//! directory. `cargo run --release -p sgmp-membership --example durable_save [ROUNDS]`.

use std::time::Instant;

use sgmp_membership::node::durable::{Accepted, Ballot, DirStorage, Durable, Storage};
use sgmp_membership::{Member, ProcessId};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("sgmp-durable-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut st, _) = DirStorage::open(&dir, "n1", 1).expect("state directory");
    let mut d = Durable::fresh("n1", 1);
    for i in 0..5u16 {
        d.view.members.push(Member {
            id: ProcessId::named(&format!("n{}", i + 1), 1_796_000_000_000_000 + i as u64),
            addr: ([127, 0, 0, 1], 7401 + i).into(),
        });
    }
    let mut next = d.view.clone();
    next.members.pop();
    d.accepted = Some(Accepted {
        ballot: Ballot::sgmp(0),
        view: next,
    });
    for fsync in [true, false] {
        st.fsync = fsync;
        let mut us: Vec<u64> = Vec::with_capacity(rounds);
        for r in 0..rounds {
            d.view.version = r as u64 + 1;
            let t = Instant::now();
            st.save(&d).expect("save");
            us.push(t.elapsed().as_micros() as u64);
        }
        us.sort_unstable();
        let p = |q: f64| us[((us.len() as f64 - 1.0) * q) as usize];
        println!(
            "{{\"fsync\":{fsync},\"rounds\":{rounds},\"save_p50_us\":{},\"save_p99_us\":{},\"save_max_us\":{}}}",
            p(0.5),
            p(0.99),
            us[us.len() - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
