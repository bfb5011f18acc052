//! A PostgreSQL transaction that sea-orm queries and raw sqlx operations
//! (COPY) can share: sea-orm does not hand out the connection under its own
//! transactions, so this one implements `ConnectionTrait` over an sqlx
//! transaction, binding values the way sea-orm does (sea-query-sqlx).
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, Statement};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

pub struct PgTx {
    tx: Mutex<sqlx::Transaction<'static, Postgres>>,
}

/// Keeps the sqlx error itself, so its kind (a lost connection, a unique
/// violation) can still be told.
fn db_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e)))
}

fn query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt
        .values
        .clone()
        .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

impl PgTx {
    pub async fn begin(pool: &sqlx::PgPool) -> Result<Self, DbErr> {
        Ok(PgTx {
            tx: Mutex::new(pool.begin().await.map_err(db_err)?),
        })
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.into_inner().commit().await.map_err(db_err)
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.tx.into_inner().rollback().await.map_err(db_err)
    }

    /// `COPY … FROM STDIN` of `chunks` (in the statement's format), in this
    /// transaction.
    /// A row refused by a unique index is told apart from other failures,
    /// so that a caller holding a savepoint can retry without it.
    pub async fn copy_in(
        &self,
        statement: &str,
        mut chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    ) -> Result<u64, CopyInError> {
        let mut tx = self.tx.lock().await;
        let mut copy = tx.copy_in_raw(statement).await.map_err(copy_err)?;
        while let Some(chunk) = chunks.recv().await {
            if let Err(e) = copy.send(chunk).await {
                let _ = copy.abort("send failed").await;
                return Err(copy_err(e));
            }
        }
        copy.finish().await.map_err(copy_err)
    }
}

/// Why a COPY FROM failed.
#[derive(Debug)]
pub enum CopyInError {
    /// A row collided with a stored one on a unique index (SQLSTATE 23505).
    UniqueViolation(DbErr),
    Other(DbErr),
}

impl From<CopyInError> for DbErr {
    fn from(e: CopyInError) -> Self {
        match e {
            CopyInError::UniqueViolation(e) | CopyInError::Other(e) => e,
        }
    }
}

fn copy_err(e: sqlx::Error) -> CopyInError {
    let unique = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505");
    if unique {
        CopyInError::UniqueViolation(db_err(e))
    } else {
        CopyInError::Other(db_err(e))
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for PgTx {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut tx = self.tx.lock().await;
        query(&stmt)
            .execute(&mut **tx)
            .await
            .map(Into::into)
            .map_err(db_err)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut tx = self.tx.lock().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut **tx)
            .await
            .map(Into::into)
            .map_err(db_err)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut tx = self.tx.lock().await;
        query(&stmt)
            .fetch_optional(&mut **tx)
            .await
            .map(|r| r.map(Into::into))
            .map_err(db_err)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut tx = self.tx.lock().await;
        query(&stmt)
            .fetch_all(&mut **tx)
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .map_err(db_err)
    }
}
