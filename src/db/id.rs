//! UUID ids stored natively on PostgreSQL (`uuid`) and as hyphenated text on SQLite.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{SqlType, Text};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};

/// The SQL type of id columns: `uuid` on PostgreSQL, `TEXT` on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, diesel::query_builder::QueryId)]
#[diesel(postgres_type(name = "uuid"))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbUuid;

/// An entity id: a UUID, rendered hyphenated and lower case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow, Serialize, Deserialize)]
#[diesel(sql_type = DbUuid)]
#[serde(transparent)]
pub struct Id(pub uuid::Uuid);

impl Id {
    /// A new time-ordered (v7) UUID: rows inserted later sort later, which keeps listings
    /// stable when timestamps tie and index inserts local on PostgreSQL.
    pub fn new() -> Self {
        Id(uuid::Uuid::now_v7())
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Id)
    }
}

impl<'a> rocket::request::FromParam<'a> for Id {
    type Error = uuid::Error;
    fn from_param(param: &'a str) -> Result<Self, Self::Error> {
        param.parse()
    }
}

impl ToSql<DbUuid, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Pg> for Id {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(Id(uuid::Uuid::from_slice(value.as_bytes())?))
    }
}

impl ToSql<DbUuid, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Id {
    fn from_sql(value: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(text.parse()?)
    }
}
