//! Unit tests of `channel.rs` written for mutation testing (issue 17, `make mutants`):
//! each asserts what the mutated code promises where the other tests would not notice
//! (docs/VERIFICATION.md, "Mutation testing").

use super::*;

use super::tests::{frame, header, CAP};

/// Sends whatever `tx` has in one datagram; returns the number of frames.
fn transmit(tx: &mut SendWindow, store: &[u8], now: Time) -> usize {
    let mut buf = [0u8; 1400];
    let mut w = Writer::new(&mut buf, &header()).unwrap();
    tx.fill(now, store, CAP, &mut w);
    usize::from(w.frames())
}

/// Catches `seq < self.una` -> `seq <= self.una` in `SendWindow::on_ack`: a selective
/// ack carried by an older cumulative ack (reordered acks) may name the first frame
/// still unacknowledged (`una`); it counts as progress, and that frame is not resent
/// when the retransmission timer fires.
#[test]
fn a_selective_ack_of_the_first_unacked_frame_counts() {
    let mut tx = SendWindow::new(8);
    let mut store = vec![0u8; 8 * CAP];
    for _ in 0..4 {
        assert!(tx.push(&mut store, CAP, &[1; 10]));
    }
    assert_eq!(transmit(&mut tx, &store, Time(10)), 4);
    let out = tx.on_ack(Time(20), 2, 0, 0);
    assert!(out.advanced);
    // The older ack (next expected 1) arrives late: bit 0 is frame 1 + 1 + 0 = 2 = una.
    let out = tx.on_ack(Time(30), 1, 0, 1);
    assert!(!out.advanced);
    assert!(out.progress, "frame 2 is newly acknowledged");
    // On timeout only frame 3 is resent.
    tx.on_timeout();
    assert_eq!(transmit(&mut tx, &store, Time(40)), 1);
}

/// Catches `seq - self.deliver_seq < len` -> `<=` in `RecvWindow::present`: the
/// selective ack names only frames inside the receive window; the slot one past the
/// window is the ring's first slot again (here holding frame 0, not yet delivered),
/// and must not be reported as frame 4.
#[test]
fn the_selective_ack_stops_at_the_end_of_the_receive_window() {
    let mut rx = RecvWindow::new(4);
    let mut store = vec![0u8; 4 * CAP];
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(0, false, b"a")),
        Accept::New
    );
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(2, false, b"c")),
        Accept::New
    );
    assert_eq!(rx.expected(), 1);
    assert!(rx.has_gap());
    // Bit 0 is frame expected + 1 = 2; frames 3 and beyond are not buffered.
    assert_eq!(rx.sack(), (0, 0b1));
}

/// Catches `first - base0 < SACK_BITS` -> `first / base0` in `RecvWindow::sack`: when
/// the first buffered frame lies beyond the bitmap's reach from `expected + 1`, the
/// bitmap is centred on it (offset > 0), so the sender learns what is missing below it.
#[test]
fn a_selective_ack_beyond_the_bitmap_reach_is_centred_on_the_first_buffered_frame() {
    let mut rx = RecvWindow::new(256);
    let mut store = vec![0u8; 256 * CAP];
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(0, true, b"a")),
        Accept::New
    );
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(100, true, b"b")),
        Accept::New
    );
    assert_eq!(rx.expected(), 1);
    // base0 = expected + 1 = 2; frame 100 is 98 frames on: centred, base 100 - 32 = 68.
    assert_eq!(rx.sack(), (66, 1 << 32));
}

/// Catches `buf.len() - copied` -> `+` in `RecvWindow::deliver`: a message of several
/// frames delivered into a buffer too short for it is cut at the buffer's end (its
/// full length still reported); a later frame is copied only as far as it fits.
#[test]
fn a_message_of_several_frames_is_cut_to_the_buffer() {
    let mut rx = RecvWindow::new(4);
    let mut store = vec![0u8; 4 * CAP];
    let first = vec![1u8; CAP];
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(0, false, &first)),
        Accept::New
    );
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(1, true, &[2u8; 10])),
        Accept::New
    );
    let mut buf = vec![0u8; CAP + 5];
    assert_eq!(rx.deliver(&store, CAP, &mut buf), Some((CAP + 5, CAP + 10)));
    assert!(buf[..CAP].iter().all(|&b| b == 1));
    assert_eq!(buf[CAP..], [2u8; 5]);
    assert!(!rx.has_message());
}

/// Catches `first - base0 < SACK_BITS` -> `<=` in `RecvWindow::sack`: a first buffered
/// frame exactly `SACK_BITS` past `expected + 1` is just out of the plain bitmap's
/// reach (bit 63 is the last), so the bitmap is centred on it.
#[test]
fn a_first_buffered_frame_just_out_of_reach_centres_the_bitmap() {
    let mut rx = RecvWindow::new(256);
    let mut store = vec![0u8; 256 * CAP];
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(0, true, b"a")),
        Accept::New
    );
    // base0 = 2; frame 66 is SACK_BITS on: centred, base 66 - 32 = 34.
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(2 + SACK_BITS, true, b"b")),
        Accept::New
    );
    assert_eq!(rx.sack(), (32, 1 << 32));
    // One frame nearer, it is bit 63 of the plain bitmap.
    let mut rx = RecvWindow::new(256);
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(0, true, b"a")),
        Accept::New
    );
    assert_eq!(
        rx.accept(&mut store, CAP, &frame(1 + SACK_BITS, true, b"b")),
        Accept::New
    );
    assert_eq!(rx.sack(), (0, 1 << 63));
}
