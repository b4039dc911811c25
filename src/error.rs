//! Engine errors → PostgreSQL errors with SQLSTATE, message (naming value and path) and hint.
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use reco_engine::{Error, ErrorKind};

pub fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::InvalidText => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::InvalidDatetime => PgSqlErrorCode::ERRCODE_INVALID_DATETIME_FORMAT,
        ErrorKind::DatetimeOverflow => PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
        ErrorKind::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::UndefinedObject => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::LimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::NotInPrerequisiteState => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        ErrorKind::InvalidAuthorization => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        ErrorKind::NullValue => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        ErrorKind::QueryCanceled => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
        ErrorKind::Syntax => PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
        ErrorKind::DataCorrupted => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
    }
}

/// Raises `e` as an SQL ERROR. Never returns.
pub fn raise(e: Error) -> ! {
    let mut report = ErrorReport::new(sqlstate(e.kind), e.to_string(), "pg_reco");
    if let Some(p) = &e.path {
        let detail = if p.starts_with('$') { format!("JSON path: {p}") } else { format!("argument: {p}") };
        report = report.set_detail(detail);
    }
    if let Some(h) = e.hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) does not return")
}

/// `result.or_raise()`: the value, or the error raised in SQL.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for reco_engine::Result<T> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

/// A bug or a broken invariant, not bad input: raised as an internal error (XX000) that says
/// what failed.
pub fn internal(message: String) -> ! {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message, "pg_reco")
        .set_hint("this is a bug in pg_reco: please report it with the server log around this error")
        .report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) does not return")
}

/// An SPI failure is a bug or a broken invariant, not bad input.
impl<T> OrRaise<T> for Result<T, pgrx::spi::SpiError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| internal(format!("pg_reco: SPI failed: {e}")))
    }
}
