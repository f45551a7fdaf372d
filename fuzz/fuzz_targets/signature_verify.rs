//! Receiver-side verification of any request, for every scheme: never
//! panics, and always accepts what hookbus itself signs.

#![no_main]

use arbitrary::Arbitrary;
use hookbus::fuzz_api;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Name {
    Id,
    Timestamp,
    Signature,
    Hex,
    Secret,
    Other(String),
}

impl Name {
    fn render(&self) -> String {
        match self {
            Name::Id => "webhook-id".into(),
            Name::Timestamp => "webhook-timestamp".into(),
            Name::Signature => "webhook-signature".into(),
            Name::Hex => fuzz_api::HEX_HEADER.into(),
            Name::Secret => fuzz_api::SECRET_HEADER.to_ascii_lowercase(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: u8,
    secrets: Vec<String>,
    headers: Vec<(Name, String)>,
    body: Vec<u8>,
    /// Offset of the receiver's clock from `VERIFY_NOW`, in seconds.
    skew: i16,
    msg_id: String,
    timestamp: u32,
}

fuzz_target!(|input: Input| {
    let headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| (n.render(), v.clone()))
        .collect();
    let now = fuzz_api::VERIFY_NOW.saturating_add_signed(i64::from(input.skew));
    let _ = fuzz_api::verify(input.scheme, &input.secrets, &headers, &input.body);
    let _ = fuzz_api::verify_at(input.scheme, &input.secrets, &headers, &input.body, now);

    // What hookbus signs verifies (the secret-in-body scheme is signed by
    // its envelope, not here).
    let scheme = input.scheme % fuzz_api::SIGNING_SCHEMES;
    if scheme == 3 || input.secrets.is_empty() {
        return;
    }
    let ts = u64::from(input.timestamp);
    if let Some(signed) = fuzz_api::sign(scheme, &input.secrets, &input.msg_id, ts, &input.body) {
        assert_eq!(
            fuzz_api::verify_at(scheme, &input.secrets, &signed, &input.body, ts),
            Ok(()),
            "scheme {scheme}: signed headers {signed:?} do not verify"
        );
    }
});
