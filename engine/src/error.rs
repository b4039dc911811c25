//! Typed errors. Each kind maps to one SQLSTATE in the extension's `src/error.rs`.
use std::fmt;

/// What kind of mistake an input made. One variant per SQLSTATE the extension raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 22023 invalid_parameter_value: a value of the right type that is not allowed.
    InvalidParameter,
    /// 22P02 invalid_text_representation: text that does not parse as the expected type.
    InvalidText,
    /// 22007 invalid_datetime_format: a timestamp in no accepted form.
    InvalidDatetime,
    /// 22008 datetime_field_overflow: a well-formed but impossible date or time.
    DatetimeOverflow,
    /// 22003 numeric_value_out_of_range.
    OutOfRange,
    /// 42704 undefined_object: an unknown channel, category, time zone ...
    UndefinedObject,
    /// 54000 program_limit_exceeded: a payload too large or too deep.
    LimitExceeded,
    /// 42501 insufficient_privilege: a customer-scoped session naming another customer.
    InsufficientPrivilege,
    /// 55000 object_not_in_prerequisite_state: e.g. demo data already loaded.
    NotInPrerequisiteState,
    /// 28000 invalid_authorization_specification: a customer token that is forged or expired.
    InvalidAuthorization,
    /// 22004 null_value_not_allowed: a NULL where a value is required.
    NullValue,
    /// 57014 query_canceled: a long run stopped by a cancel request or statement_timeout.
    QueryCanceled,
    /// 42601 syntax_error: a template that does not parse.
    Syntax,
    /// XX001 data_corrupted: a shared model image that does not read back.
    DataCorrupted,
}

impl ErrorKind {
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "22023",
            ErrorKind::InvalidText => "22P02",
            ErrorKind::InvalidDatetime => "22007",
            ErrorKind::DatetimeOverflow => "22008",
            ErrorKind::OutOfRange => "22003",
            ErrorKind::UndefinedObject => "42704",
            ErrorKind::LimitExceeded => "54000",
            ErrorKind::InsufficientPrivilege => "42501",
            ErrorKind::NotInPrerequisiteState => "55000",
            ErrorKind::InvalidAuthorization => "28000",
            ErrorKind::NullValue => "22004",
            ErrorKind::QueryCanceled => "57014",
            ErrorKind::Syntax => "42601",
            ErrorKind::DataCorrupted => "XX001",
        }
    }
}

/// An error with the offending value in its message, where it was found, and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// JSON path (`$.line_items[2].quantity`) or argument name, when known.
    pub path: Option<String>,
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), path: None, hint: None }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Sets the path where the error was found, unless a deeper one is already set.
    pub fn at(mut self, path: impl Into<String>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.into());
        }
        self
    }
    /// Prefixes the message with its context, e.g. the channel it came from.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
    pub fn sqlstate(&self) -> &'static str {
        self.kind.sqlstate()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) if p.starts_with('$') => write!(f, "{} (at {p})", self.message),
            Some(p) => write!(f, "{} (argument {p})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Shortens a user value for an error message, so a 5 MB string does not become a 5 MB message.
pub fn show(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        format!("\"{value}\"")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("\"{head}…\" ({} bytes)", value.len())
    }
}
