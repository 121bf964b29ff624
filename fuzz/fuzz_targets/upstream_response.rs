//! Upstream answers are untrusted too: any bytes as an upstream response to a fixed question
//! must index without panicking, and what we send on to the client must decode.
#![no_main]

use dns::answer::Transport;
use dns::forward::{reply, reply_chase, Cached};
use dns::wire::Question;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x07example\x03com\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
    let q = Question::parse(req).unwrap();
    // The fuzzer's bytes after our header and question, as an upstream would send them.
    let mut msg = req[..q.end].to_vec();
    msg[2] |= 0x80;
    if data.len() >= 8 {
        msg[4..12].copy_from_slice(&[0, 1, data[0], data[1], data[2], data[3], data[4], data[5]]);
    }
    msg.extend_from_slice(data.get(6..).unwrap_or(&[]));
    if let Some(c) = Cached::parse(msg, q.end, std::time::Instant::now()) {
        let mut out = Vec::new();
        for t in [Transport::Udp, Transport::Tcp] {
            reply(req, &q, Some(&c), t, &mut out);
            assert_eq!(out[..2], req[..2]);
            reply_chase(req, &q, b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x05\x00\x01\x00", Some(&c), t, &mut out);
            hickory_proto::op::Message::from_vec(&out).expect("chase answers decode");
        }
    }
});
