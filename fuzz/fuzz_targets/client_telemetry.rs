//! Fuzzes what PushTelemetry reads from clients: a payload in any codec is decompressed
//! under the size cap and decoded as OTLP metrics, and the pushed points render as
//! Prometheus text; none of it may panic. Client-metrics settings (operator input that
//! reaches the metadata) are checked with the same input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::log::batch::decompress;
use weir::telemetry::{check_setting, otlp, ClientInfo, ClientTelemetry};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codec = i16::from(mode % 5);
    if let Ok(plain) = decompress(codec, rest, 1 << 20) {
        assert!(plain.len() <= 1 << 20);
        let _ = otlp::decode(&plain);
    }
    if otlp::decode(rest).is_ok() {
        // Accepted points survive a push and a render.
        let t = ClientTelemetry::default();
        let mut image = weir::cluster::MetadataImage::default();
        image.client_metrics.insert(
            "all".into(),
            [("metrics".to_string(), "*".to_string())].into(),
        );
        let (id, sel) = t.subscribe(&image, uuid::Uuid::nil(), ClientInfo::default());
        t.push(id, sel.subscription_id, false, rest).expect("decodable push");
        let _ = t.render();
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        for name in ["metrics", "interval.ms", "match"] {
            let _ = check_setting(name, text);
        }
    }
});
