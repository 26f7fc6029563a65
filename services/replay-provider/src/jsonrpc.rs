//! The JSON-RPC 2.0 envelope: parsing single and batch requests, and
//! shaping answers and errors.
//!
//! Method logic lives in [`crate::methods`]; this module only decides what
//! is a well-formed call and how every answer is framed, so that batch and
//! single requests behave the same way.

use serde_json::{Value, json};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The parameters are not what the method takes.
pub const INVALID_PARAMS: i64 = -32602;
/// What was asked for was not recorded.
pub const NOT_RECORDED: i64 = -32001;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// A message for the caller.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `-32602`: the parameters are wrong.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// `-32001`: the thing asked for was not recorded.
    pub fn not_recorded(message: impl Into<String>) -> Self {
        Self::new(NOT_RECORDED, message)
    }
}

/// One well-formed call.
#[derive(Debug)]
pub struct Call {
    /// The request id; `None` for a notification, which gets no answer.
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// The parameters, `[]` when absent.
    pub params: Value,
}

/// Answers a request body: `None` when nothing is to be sent back (only
/// notifications), otherwise the single answer or the batch array.
pub fn handle_body(
    body: &[u8],
    mut answer: impl FnMut(&Call) -> Result<Value, RpcError>,
) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return Some(error_response(
                Value::Null,
                &RpcError::new(PARSE_ERROR, "parse error"),
            ));
        }
    };
    match parsed {
        Value::Array(items) if items.is_empty() => Some(error_response(
            Value::Null,
            &RpcError::new(INVALID_REQUEST, "empty batch"),
        )),
        Value::Array(items) => {
            let answers: Vec<Value> = items
                .into_iter()
                .filter_map(|item| handle_one(item, &mut answer))
                .collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        single => handle_one(single, &mut answer),
    }
}

fn handle_one(
    item: Value,
    answer: &mut impl FnMut(&Call) -> Result<Value, RpcError>,
) -> Option<Value> {
    let call = match parse_call(item) {
        Ok(call) => call,
        Err((id, err)) => return Some(error_response(id, &err)),
    };
    let result = answer(&call);
    let id = call.id?;
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(err) => error_response(id, &err),
    })
}

/// Checks the shape of one request object.
pub fn parse_call(item: Value) -> Result<Call, (Value, RpcError)> {
    let Value::Object(mut obj) = item else {
        return Err((
            Value::Null,
            RpcError::new(INVALID_REQUEST, "a request must be an object"),
        ));
    };
    let id = obj.remove("id");
    let reply_id = id.clone().unwrap_or(Value::Null);
    if !matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    ) {
        let err = RpcError::new(INVALID_REQUEST, "`id` must be a number, a string or null");
        return Err((Value::Null, err));
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let err = RpcError::new(INVALID_REQUEST, "`jsonrpc` must be \"2.0\"");
        return Err((reply_id, err));
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err((
            reply_id,
            RpcError::new(INVALID_REQUEST, "`method` must be a string"),
        ));
    };
    let params = obj.remove("params").unwrap_or(Value::Array(Vec::new()));
    if !params.is_array() && !params.is_object() {
        let err = RpcError::new(INVALID_REQUEST, "`params` must be an array or an object");
        return Err((reply_id, err));
    }
    Ok(Call { id, method, params })
}

/// An error answer for `id`.
pub fn error_response(id: Value, err: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": err.code, "message": err.message}})
}
