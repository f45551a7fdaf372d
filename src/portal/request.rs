//! Reading a request strictly: the JSON body field by field (an unknown
//! field, a missing one or a value of the wrong type is an error naming
//! the field, before anything is written), and the query string.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::errors::ApiError;

/// The fields of a JSON object body, taken one by one; [`Fields::finish`]
/// refuses any left over. The request types of the API are the sequences
/// of `take` calls in `api/`, and the OpenAPI document lists the same
/// fields with `additionalProperties: false`.
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// The path of this object in the body, for nested objects' errors.
    at: String,
}

impl Fields {
    /// Parses a body that must be a JSON object. No body at all reads as
    /// `{}` (actions without a required field need none); anything else,
    /// blanks included, must be JSON.
    pub(crate) fn parse(body: &[u8]) -> Result<Fields, ApiError> {
        if body.is_empty() {
            return Ok(Fields {
                map: Map::new(),
                at: String::new(),
            });
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                at: String::new(),
            }),
            _ => Err(ApiError::invalid_json("the body must be a JSON object")),
        }
    }

    fn path(&self, name: &str) -> String {
        if self.at.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.at)
        }
    }

    /// The value of `name`, if given and not `null`.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Whether `name` was given (even as `null`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::wrong_type(&self.path(name), "a string")),
        }
    }

    pub(crate) fn required_string(&mut self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .ok_or_else(|| ApiError::missing_field(&self.path(name)))
    }

    pub(crate) fn bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ApiError::wrong_type(&self.path(name), "true or false")),
        }
    }

    /// A whole number within `min..=max`.
    pub(crate) fn u64_in(
        &mut self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ApiError> {
        let path = self.path(name);
        match self.take(name) {
            None => Ok(None),
            Some(v) => match whole_number(&v) {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                Some(_) => Err(ApiError::invalid_field(
                    &path,
                    format!("{path} must be between {min} and {max}"),
                )),
                None => Err(ApiError::wrong_type(&path, "a whole number")),
            },
        }
    }

    pub(crate) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let path = self.path(name);
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::wrong_type(&format!("{path}[{i}]"), "a string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::wrong_type(&path, "an array of strings")),
        }
    }

    /// An array of objects, each read by `item` from its own [`Fields`].
    pub(crate) fn objects<T>(
        &mut self,
        name: &str,
        mut item: impl FnMut(&mut Fields) -> Result<T, ApiError>,
    ) -> Result<Option<Vec<T>>, ApiError> {
        let path = self.path(name);
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let at = format!("{path}[{i}]");
                    let Value::Object(map) = v else {
                        return Err(ApiError::wrong_type(&at, "an object"));
                    };
                    let mut fields = Fields { map, at };
                    let value = item(&mut fields)?;
                    fields.finish()?;
                    Ok(value)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::wrong_type(&path, "an array of objects")),
        }
    }

    /// Refuses the fields nobody took.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            Some(unknown) => Err(ApiError::unknown_field(&self.path(unknown))),
            None => Ok(()),
        }
    }
}

/// A JSON number that is a whole number, as JSON Schema's `integer` has it
/// (`5` and `5.0` alike).
fn whole_number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        // Below 2^53 every whole f64 is exact.
        (f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
    })
}

/// The query string, decoded; a parameter given twice is an error (its
/// meaning would be unclear). Parameters are taken by the routes, and
/// [`Query::finish`] refuses unknown ones.
pub(crate) struct Query {
    params: BTreeMap<String, String>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut params = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_component(k, true)
                .ok_or_else(|| ApiError::invalid_query(k, "malformed percent-encoding"))?;
            let v = decode_component(v, true)
                .ok_or_else(|| ApiError::invalid_query(&k, "malformed percent-encoding"))?;
            if params.insert(k.clone(), v).is_some() {
                return Err(ApiError::invalid_query(&k, format!("{k} given twice")));
            }
        }
        Ok(Query { params })
    }

    /// A parameter's value. An empty value is a value (`tenant=` names no
    /// valid tenant): leave a filter out to not filter.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.params.remove(name)
    }

    /// A parameter parsed by `parse`; a value it refuses is an error
    /// naming the parameter.
    pub(crate) fn parsed<T>(
        &mut self,
        name: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => parse(&v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_query(name, format!("{name} must be {what}"))),
        }
    }

    /// A whole number within `min..=max`.
    pub(crate) fn u64_in(
        &mut self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ApiError> {
        self.parsed(name, &format!("a whole number from {min} to {max}"), |v| {
            canonical_u64(v).filter(|n| (min..=max).contains(n))
        })
    }

    /// Refuses parameters nobody took.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.params.keys().next() {
            Some(unknown) => Err(ApiError::invalid_query(
                unknown,
                format!("unknown query parameter {unknown:?}"),
            )),
            None => Ok(()),
        }
    }
}

/// A decimal number without sign or leading zeros.
pub(crate) fn canonical_u64(v: &str) -> Option<u64> {
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    (digits && (v == "0" || !v.starts_with('0')))
        .then(|| v.parse().ok())
        .flatten()
}

/// Percent-decodes one path segment or query component (`+` is a space in
/// a query); `None` if an escape is malformed or the result is not UTF-8.
pub(crate) fn decode_component(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_name_what_is_wrong() {
        let mut f = Fields::parse(br#"{"name": 3, "extra": true}"#).unwrap();
        assert_eq!(f.string("name").unwrap_err().field.as_deref(), Some("name"));
        assert_eq!(f.finish().unwrap_err().code, "unknown_field");
        let mut f = Fields::parse(br#"{"headers": [{"name": "a", "value": 1}]}"#).unwrap();
        let err = f
            .objects("headers", |h| {
                Ok((h.required_string("name")?, h.required_string("value")?))
            })
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("headers[0].value"));
        assert_eq!(Fields::parse(b"[1]").err().unwrap().code, "invalid_json");
        assert_eq!(Fields::parse(b"{").err().unwrap().code, "invalid_json");
        Fields::parse(b"").unwrap().finish().unwrap();
        assert_eq!(Fields::parse(b" ").err().unwrap().code, "invalid_json");
    }

    #[test]
    fn queries_decode_and_refuse_repeats_and_unknowns() {
        let mut q = Query::parse(Some("a=x%3Ay&b=1+2&limit=07")).unwrap();
        assert_eq!(q.take("a").as_deref(), Some("x:y"));
        assert_eq!(q.take("b").as_deref(), Some("1 2"));
        assert!(q.u64_in("limit", 1, 100).is_err());
        assert!(Query::parse(Some("a=1&a=2")).is_err());
        assert!(Query::parse(Some("a=%zz")).is_err());
        let mut q = Query::parse(Some("z=1")).unwrap();
        assert!(q.take("y").is_none());
        assert_eq!(q.finish().unwrap_err().field.as_deref(), Some("z"));
    }
}
