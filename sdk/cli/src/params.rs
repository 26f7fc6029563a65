//! `--param key=value` arguments: values stay strings unless they are plainly
//! a boolean or a 64-bit integer, so that 256-bit amounts keep every digit.

use crate::Error;

/// Builds the JSON object of job parameters.
pub fn parse(pairs: &[String]) -> Result<serde_json::Value, Error> {
    let mut map = serde_json::Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("parameter `{pair}` must be `key=value`")))?;
        map.insert(key.to_string(), value_of(value));
    }
    Ok(serde_json::Value::Object(map))
}

/// A query parameter or job parameter value.
pub fn value_of(text: &str) -> serde_json::Value {
    match text {
        "true" => true.into(),
        "false" => false.into(),
        _ => match text.parse::<i64>() {
            Ok(n) => n.into(),
            Err(_) => text.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_stay_strings_and_small_ones_become_numbers() {
        let params = parse(&[
            "threshold=1000000000000000000000000000".into(),
            "n=7".into(),
            "flag=true".into(),
            "name=usdc".into(),
        ])
        .unwrap();
        assert_eq!(
            params,
            serde_json::json!({
                "threshold": "1000000000000000000000000000",
                "n": 7, "flag": true, "name": "usdc",
            })
        );
    }

    #[test]
    fn a_parameter_without_equals_is_refused() {
        assert!(parse(&["oops".into()]).is_err());
    }
}
