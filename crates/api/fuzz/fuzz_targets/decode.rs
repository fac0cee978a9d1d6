//! Everything the API decodes from a request before the engine sees it: JSON bodies into
//! the engine's request types, query strings, `filters`, and paths into routes. Besides "no
//! panic": every refusal is a 400 (a 404 for a path) with a message that says what was
//! wrong, and a body that decodes re-encodes to one that decodes the same.

#![no_main]

use gorae_api::decode::{decode_json, Empty};
use gorae_api::query::{parse_filters, Query};
use gorae_api::router;
use gorae_engine::types::{CreateRequest, ExecConfig, ExecStartConfig, UpdateRequest};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => body::<CreateRequest>(rest, Empty::Refused),
        1 => body::<ExecConfig>(rest, Empty::Refused),
        2 => body::<UpdateRequest>(rest, Empty::Refused),
        3 => body::<ExecStartConfig>(rest, Empty::IsDefault),
        4 => filters(rest),
        5 => query(rest),
        _ => route(selector, rest),
    }
});

fn body<T>(bytes: &[u8], empty: Empty)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match decode_json::<T>(bytes, empty) {
        Ok(value) => {
            let again = serde_json::to_vec(&value).expect("a decoded request encodes");
            let back: T = decode_json(&again, Empty::Refused).expect("re-encoded decodes");
            if back != value {
                // serde_json's float parsing is not exact: opaque JSON fields
                // (NetworkingConfig...) may move in the last digit, nothing else may.
                let (a, b) = (to_value(&back), to_value(&value));
                assert!(same(&a, &b), "{a} != {b}");
            }
        }
        Err(e) => {
            assert_eq!(e.status, 400);
            assert!(e.message.starts_with("invalid JSON: "), "{}", e.message);
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("a decoded request encodes")
}

/// Equal, except floats within a relative 1e-12.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn filters(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Err(e) = parse_filters(&text) {
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("invalid filter"), "{}", e.message);
    }
}

fn query(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let q = Query::parse(&text);
    for key in ["all", "t", "h", "filters", "tail", "since", "names"] {
        let _ = q.flag(key);
        let _ = q.all(key);
        for e in [
            q.number::<i64>(key).err(),
            q.number::<u16>(key).err(),
            q.number::<f64>(key).err(),
            q.filters().err(),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(e.status, 400);
            assert!(!e.message.is_empty());
        }
    }
}

fn route(selector: u8, bytes: &[u8]) {
    let method = match selector % 5 {
        0 => hyper::Method::GET,
        1 => hyper::Method::POST,
        2 => hyper::Method::DELETE,
        3 => hyper::Method::PUT,
        _ => hyper::Method::HEAD,
    };
    let path = String::from_utf8_lossy(bytes);
    if let Err(e) = router::route(&method, &path) {
        assert!(e.status == 400 || e.status == 404, "{e}");
    }
}
