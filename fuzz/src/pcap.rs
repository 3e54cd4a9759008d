//! The pcap/pcapng reader: any bytes either fail with an error or give records that
//! all lie inside the input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(cap) = popgo::io::pcap::Capture::from_bytes(data.to_vec()) {
            let mut sum = 0usize;
            for i in 0..cap.len() {
                sum = sum.wrapping_add(cap.packet(i).len());
            }
            assert!(cap.records().iter().all(|r| (r.offset as usize + r.caplen as usize) <= cap.data().len()));
            std::hint::black_box(sum);
        }
    });
}
